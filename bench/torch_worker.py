#!/usr/bin/python3
"""PyTorch's worker for bench/bench.py (same protocol as kiln_time.c).

    /usr/bin/python3 bench/torch_worker.py MODEL_NAME

Rebuilds MODEL_NAME with models/export.py's build() (the torchvision
architecture with the same seeded weights as models/out/NAME.onnx, so all
three runtimes compute the same function; a plain torchvision classifier if
export.py cannot be imported), prints "ready BUILD_MS 0", then answers:

    setup THREADS NAME:DTYPE:D0xD1x...:RAWFILE...
               torch.set_num_threads(THREADS) and, where PyTorch's BLAS is
               OpenBLAS (Debian's), openblas_set_num_threads(THREADS): its
               pthreads ignore torch.set_num_threads, so a "1 thread" row ran
               its matrix products on every core (ViT-B/16 at 257 GFLOP/s,
               above one core's peak); read the inputs; print "ok"
    run N      N runs under torch.inference_mode(); "ok T1 ... TN" (ms each)
    dump DIR   one run; output K to DIR/out_K.bin; "ok TYPE:DIMS ..."
    quit       exit
"""
import os
import sys
import time


def build(name, torch):
    """The model in eval mode."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "models"))
    try:
        import export
    except Exception as e:  # export.py is another owner's: degrade, do not fail
        print("torch_worker: cannot import models/export.py (%s): plain torchvision model" % e,
              file=sys.stderr)
        import torchvision
        torch.manual_seed(0)
        return getattr(torchvision.models, name)(weights=None).eval()
    return export.build(name, 0)[0].eval()


def openblas_threads_setter():
    """openblas_set_num_threads of the OpenBLAS this process loaded, or None."""
    import ctypes
    try:
        paths = {w for w in open("/proc/self/maps").read().split() if "openblas" in w and ".so" in w}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            f = getattr(ctypes.CDLL(path), "openblas_set_num_threads", None)
        except OSError:
            continue
        if f is not None:
            f.argtypes = [ctypes.c_int]
            f.restype = None
            return f
    return None


def main():
    import numpy as np
    import torch
    torch.set_num_interop_threads(1)
    t0 = time.perf_counter()
    model = build(sys.argv[1], torch)
    print("ready %.3f 0" % ((time.perf_counter() - t0) * 1e3), flush=True)
    inputs = []
    dtypes = {"float": np.float32, "int64": np.int64}
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "setup":
            torch.set_num_threads(int(words[1]))
            blas_threads = openblas_threads_setter()
            if blas_threads is not None:
                blas_threads(int(words[1]))
            inputs = []
            for spec in words[2:]:
                _, dt, dims, path = spec.split(":", 3)
                a = np.fromfile(path, dtype=dtypes[dt]).reshape([int(d) for d in dims.split("x")])
                inputs.append(torch.from_numpy(a))
            print("ok", flush=True)
        elif words[0] == "run":
            ms = []
            with torch.inference_mode():
                for _ in range(int(words[1])):
                    a = time.perf_counter()
                    model(*inputs)
                    ms.append((time.perf_counter() - a) * 1e3)
            print("ok " + " ".join("%.4f" % x for x in ms), flush=True)
        elif words[0] == "dump":
            with torch.inference_mode():
                ys = model(*inputs)
            if isinstance(ys, torch.Tensor):
                ys = (ys,)
            shapes = []
            for k, y in enumerate(ys):
                a = np.ascontiguousarray(y.numpy())
                a.tofile(os.path.join(words[1], "out_%d.bin" % k))
                shapes.append("%s:%s" % (a.dtype, "x".join(str(d) for d in a.shape)))
            print("ok " + " ".join(shapes), flush=True)
        elif words[0] == "quit":
            break
        else:
            print("error unknown command " + words[0], flush=True)
            return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:
        print("error %s: %s" % (type(e).__name__, str(e).replace("\n", " ")), flush=True)
        sys.exit(1)
