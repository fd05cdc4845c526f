#!/usr/bin/env python3
"""kiln on the GPU against PyTorch, side by side in one run.

For each model and batch: kiln's GPU compute time (kiln trtexec --fp16 or
FP32 --noDataTransfers, median of CUDA-event times) against PyTorch eager
FP16 channels_last, torch.compile(mode="reduce-overhead") (Inductor + CUDA
graphs) FP16 channels_last, and for FP32 eager at batch 32.  The models are
models/export.py's own (same architecture and weights as the ONNX files).
Prints one table and writes OUT/bench_gpu.json.
"""
import argparse, json, os, re, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models"))


def kiln_time(kiln, onnx, shape, fp16, iters, out_dir, tag, timeout_s=120):
    cmd = [kiln, "trtexec", "--onnx=" + onnx, "--shapes=input:" + "x".join(map(str, shape)),
           "--noDataTransfers", "--iterations=%d" % iters, "--duration=0", "--warmUp=300", "--useCudaGraph"]
    if fp16:
        cmd.append("--fp16")
    t0 = time.time()
    # a bounded wait: an engine gone wrong (ResNet-50 FP32 b32 once took 5.4 s an inference,
    # layers on the host) must cost a row, not the whole call
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None, "kiln timed out after %d s" % timeout_s
    open(os.path.join(out_dir, "trtexec_%s.txt" % tag), "w").write(p.stdout + p.stderr)
    m = re.search(r"GPU Compute Time: min = ([\d.e+-]+) ms, max = [\d.e+-]+ ms, mean = [\d.e+-]+ ms, median = ([\d.e+-]+) ms", p.stdout)
    b = re.search(r"Build time: ([\d.]+) s|built in ([\d.]+) ms", p.stdout)
    if p.returncode != 0 or not m:
        err = (p.stdout + p.stderr).strip().splitlines()[-3:]
        return None, "kiln failed: " + " | ".join(err)
    host = re.search(r"\[W\] (\d+) layers? of the GPU plan ran on the host CPU", p.stdout)
    return float(m.group(2)), "wall %.1f s%s" % (time.time() - t0,
                                                 "; %s layers on the host CPU" % host.group(1) if host else "")


def torch_time(model, x, iters, mode):
    import torch
    if mode in ("compiled", "autotune"):
        torch._dynamo.reset()
        f = torch.compile(model, mode="reduce-overhead" if mode == "compiled" else "max-autotune")
    else:
        f = model
    with torch.no_grad():
        for _ in range(5):
            y = f(x)
        torch.cuda.synchronize()
        ts = []
        for _ in range(iters):
            a = torch.cuda.Event(enable_timing=True)
            b = torch.cuda.Event(enable_timing=True)
            a.record()
            y = f(x)
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b))
    ts.sort()
    del y
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", required=True)
    ap.add_argument("--out", default="gpu-out")
    ap.add_argument("--models", default="resnet50,efficientnet_b0,vit_b_16,mobilenet_v2,yolov8n")
    ap.add_argument("--batches", default="1,256")
    ap.add_argument("--compiled", default="resnet50,efficientnet_b0,vit_b_16",
                    help="models timed with torch.compile (slow to compile)")
    ap.add_argument("--autotune", default="", help="models also timed with torch.compile(mode=max-autotune)")
    ap.add_argument("--fp32-batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--budget", type=float, default=420, help="seconds; compiled peers are skipped past it")
    a = ap.parse_args()
    import torch
    import export as zoo
    t_start = time.time()
    os.makedirs(a.out, exist_ok=True)
    dev = torch.cuda.get_device_name(0)
    print("GPU: %s; torch %s; cuda %s; cudnn %s" % (dev, torch.__version__, torch.version.cuda,
                                                   torch.backends.cudnn.version()), flush=True)
    rows = []
    for name in a.models.split(","):
        onnx = os.path.join("models", "out", name + ".onnx")
        if not os.path.exists(onnx):
            print("%s: no %s" % (name, onnx), flush=True)
            continue
        model, datasets, *_ = zoo.build(name, 0)
        x0 = datasets[0][0]
        model = model.eval().cuda()
        # --batches "" times FP32 alone, --fp32-batch 0 FP16 alone
        configs = [(int(b), "fp16") for b in a.batches.split(",") if b.strip()] + \
            ([(a.fp32_batch, "fp32")] if a.fp32_batch > 0 else [])
        for batch, prec in configs:
            shape = [batch] + list(x0.shape[1:])
            row = {"model": name, "batch": batch, "precision": prec}
            ms, note = kiln_time(a.kiln, onnx, shape, prec == "fp16", a.iters if batch < 64 else 50, a.out,
                                 "%s_b%d_%s" % (name, batch, prec))
            row["kiln_ms"] = ms
            row["kiln_note"] = note
            try:
                if x0.dtype in (torch.int64, torch.int32):  # token ids (text_encoder)
                    x = torch.randint(0, int(x0.max()) + 1, shape, device="cuda", dtype=x0.dtype)
                else:
                    x = torch.randn(*shape, device="cuda")
                if prec == "fp16":
                    m = model.half().to(memory_format=torch.channels_last) if x.dim() == 4 else model.half()
                    xx = x.half().contiguous(memory_format=torch.channels_last) if x.dim() == 4 else \
                        (x if not x.is_floating_point() else x.half())
                else:
                    m = model.float().to(memory_format=torch.contiguous_format)
                    xx = x
                if prec == "fp32":
                    # PyTorch's default lets cuDNN convolutions use TF32; time it both ways.
                    torch.backends.cudnn.allow_tf32 = False
                    torch.backends.cuda.matmul.allow_tf32 = False
                    row["eager_ms"] = torch_time(m, xx, a.iters, "eager")
                    torch.backends.cudnn.allow_tf32 = True
                    row["eager_tf32_ms"] = torch_time(m, xx, a.iters, "eager")
                else:
                    row["eager_ms"] = torch_time(m, xx, a.iters if batch < 64 else 30, "eager")
                if prec == "fp16" and name in a.compiled.split(",") and time.time() - t_start < a.budget:
                    row["compiled_ms"] = torch_time(m, xx, a.iters if batch < 64 else 30, "compiled")
                if prec == "fp16" and name in a.autotune.split(","):
                    t0 = time.time()
                    row["autotune_ms"] = torch_time(m, xx, a.iters if batch < 64 else 30, "autotune")
                    row["autotune_compile_s"] = round(time.time() - t0, 1)
                model = model.float()
            except Exception as e:  # a peer that fails is reported, not fatal
                row["peer_error"] = str(e)[:200]
                model = model.float()
            rows.append(row)
            print(json.dumps(row), flush=True)
    json.dump({"gpu": dev, "torch": torch.__version__, "rows": rows}, open(os.path.join(a.out, "bench_gpu.json"), "w"), indent=1)
    print("\n%-16s %5s %5s %10s %10s %10s %10s %9s %10s" % ("model", "batch", "prec", "kiln ms", "eager ms", "compiled", "autotune", "peer/kiln", "kiln img/s"))
    for r in rows:
        k, e, c, t = r.get("kiln_ms"), r.get("eager_ms"), r.get("compiled_ms"), r.get("autotune_ms")
        f = lambda v: ("%10.3f" % v) if v else "%10s" % "-"
        best = min(v for v in (e, c, t) if v) if (e or c or t) else None  # the faster peer (compiled can lose at b256)
        ratio = ("%9.2f" % (best / k)) if (k and best) else ("%9s" % "-")
        ips = ("%10.0f" % (r["batch"] * 1000.0 / k)) if k else "%10s" % "-"
        note = "" if k else r.get("kiln_note", "")
        if k and "host CPU" in r.get("kiln_note", ""):
            note = r["kiln_note"].split("; ", 1)[-1]
        if r.get("eager_tf32_ms"):
            note += " (eager with cuDNN TF32: %.3f ms)" % r["eager_tf32_ms"]
        if r.get("peer_error"):
            note += " peer error: " + r["peer_error"][:80]
        print("%-16s %5d %5s %s %s %s %s %s %s %s" % (r["model"], r["batch"], r["precision"], f(k), f(e), f(c), f(t), ratio, ips, note))


if __name__ == "__main__":
    main()
