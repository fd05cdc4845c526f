#!/usr/bin/python3
"""Time kiln, ONNX Runtime and PyTorch side by side on the model zoo.

    /usr/bin/python3 bench/bench.py --kiln-time BUILD/bench/kiln_time
        --ort-modules NODE_MODULES [--models a,b] [--batches 1,8]
        [--threads 1,2] [--rounds 5] [--segment 0.3] [--config-budget 45]
        [--seq 128] [--json FILE] [--md FILE]

(bench/run.sh builds the pieces and calls this.)  For each model, batch and
thread count, three worker processes hold the model loaded: kiln
(bench/kiln_time.c, through the public C API), ONNX Runtime
(bench/ort_worker.js, onnxruntime-node, CPU provider) and PyTorch
(bench/torch_worker.py, the same torchvision architecture and weights,
torch.inference_mode()).  Each is warmed up, their outputs are compared,
then R rounds run [kiln N_k runs, ORT N_o runs, torch N_t runs] (the order
rotates each round), where each N is chosen so that one runtime's turn lasts
about --segment seconds (at least 1 run).  Slow configurations get fewer
rounds (at least 3) so that one takes about --config-budget seconds.  The
reported latency of a runtime is the median of all its runs.  Only one
runtime runs at a time; the others wait, blocked on a pipe.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
DEFAULT_MODELS = ["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vit_b_16",
                  "ssdlite320_mobilenet_v3_large", "text_encoder"]
RUNTIMES = ["kiln", "ort", "torch"]
NAMES = {"kiln": "kiln", "ort": "ORT", "torch": "torch"}
TEXT_VOCAB = 1000  # models/export.py's text_encoder: token ids < 1000
PAUSE_S = 0.05     # between two runtimes' turns: lets spinning thread pools go to sleep


class WorkerError(RuntimeError):
    pass


class Worker:
    """A worker process speaking the line protocol of kiln_time.c."""

    def __init__(self, name, argv, env=None, log=None):
        self.name = name
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log or subprocess.DEVNULL, text=True, bufsize=1,
                                     env=env)
        self.ready = self._reply("ready")

    def _reply(self, want):
        line = self.proc.stdout.readline()
        if not line:
            rc = self.proc.wait()
            raise WorkerError("%s worker exited (status %s)" % (self.name, rc))
        words = line.split()
        if not words or words[0] != want:
            raise WorkerError("%s: %s" % (self.name, line.strip()))
        return words[1:]

    def ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._reply("ok")

    def run(self, n):
        return [float(x) for x in self.ask("run %d" % n)]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def model_inputs(path, batch, seq):
    """[(name, dtype, shape)] of the graph inputs for this batch, or None
    when the model's batch dimension is fixed to another size."""
    import onnx
    m = onnx.load(path, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    out = []
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        dtype = {onnx.TensorProto.FLOAT: "float", onnx.TensorProto.INT64: "int64"}.get(tt.elem_type)
        if dtype is None:
            raise RuntimeError("%s: input %s: only float and int64 inputs are supported"
                               % (path, vi.name))
        shape = []
        for axis, d in enumerate(tt.shape.dim):
            if d.HasField("dim_value"):
                if axis == 0 and d.dim_value != batch:
                    return None
                shape.append(d.dim_value)
            else:
                shape.append(batch if axis == 0 else seq)
        out.append((vi.name, dtype, shape))
    return out


def write_inputs(model, inputs, folder, seed):
    """Write each input as raw bytes; the model's reference input when one of
    models/out/NAME_ref has this shape, else seeded random data (floats in
    [0,1), integers in [0,TEXT_VOCAB)).  Returns the worker argument specs."""
    import numpy as np
    rng = np.random.default_rng(seed)
    ref = os.path.join(SRC, "models", "out", model + "_ref")
    specs = []
    for k, (name, dtype, shape) in enumerate(inputs):
        a = None
        if os.path.isdir(ref):
            for ds in sorted(os.listdir(ref)):
                p = os.path.join(ref, ds, "input_%d.npy" % k)
                if os.path.exists(p):
                    cand = np.load(p)
                    if list(cand.shape) == shape:
                        a = cand
                        break
        if a is None:
            a = (rng.random(shape, dtype=np.float32) if dtype == "float"
                 else rng.integers(0, TEXT_VOCAB, shape, dtype=np.int64))
        a = np.ascontiguousarray(a, dtype=np.float32 if dtype == "float" else np.int64)
        path = os.path.join(folder, "input_%d.bin" % k)
        a.tofile(path)
        specs.append("%s:%s:%s:%s" % (name, dtype, "x".join(map(str, shape)), path))
    return specs


def compare_outputs(dumps, folder):
    """Largest difference of each runtime's outputs from kiln's: relative L2
    for floats, 0/1 for other types; None where shapes differ."""
    import numpy as np
    dt = {"float": np.float32, "float32": np.float32, "int64": np.int64}
    arrays = {}
    for rt, shapes in dumps.items():
        arrays[rt] = []
        for k, s in enumerate(shapes):
            t, dims = s.split(":")
            a = np.fromfile(os.path.join(folder, rt, "out_%d.bin" % k), dtype=dt[t])
            arrays[rt].append(a.reshape([int(d) for d in dims.split("x")] if dims else []))
    diff = {}
    for rt in ("ort", "torch"):
        worst = 0.0
        if len(arrays[rt]) != len(arrays["kiln"]):
            diff[rt] = None
            continue
        for a, b in zip(arrays[rt], arrays["kiln"]):
            if a.shape != b.shape:
                worst = None
                break
            if a.dtype.kind == "f":
                a, b = a.astype(np.float64), b.astype(np.float64)
                n = float(np.linalg.norm(b))
                worst = max(worst, float(np.linalg.norm(a - b)) / (n if n > 0 else 1.0))
            else:
                worst = max(worst, 0.0 if np.array_equal(a, b) else 1.0)
        diff[rt] = worst
    return diff


def bench_config(workers, rounds, segment, budget, log):
    """Warm up, then alternate rounds; {runtime: [ms of each run]}."""
    est = {}
    for rt in RUNTIMES:
        ms = workers[rt].run(1)  # cold run: allocations, lazy initialisation
        if ms[-1] < 1000 * segment:
            ms = workers[rt].run(max(1, min(50, int(segment * 1000 / ms[-1]))))
        est[rt] = statistics.median(ms)
        time.sleep(PAUSE_S)
    n = {rt: max(1, min(200, int(round(segment * 1000 / est[rt])))) for rt in RUNTIMES}
    round_s = sum(n[rt] * est[rt] for rt in RUNTIMES) / 1000
    r = max(min(3, rounds), min(rounds, int(budget / round_s))) if round_s > 0 else rounds
    log("    warm: %s; %d rounds of %s" % (
        ", ".join("%s %.1f ms" % (NAMES[rt], est[rt]) for rt in RUNTIMES), r,
        " + ".join("%d" % n[rt] for rt in RUNTIMES)))
    samples = {rt: [] for rt in RUNTIMES}
    for i in range(r):
        order = RUNTIMES[i % 3:] + RUNTIMES[:i % 3]
        for rt in order:
            samples[rt] += workers[rt].run(n[rt])
            time.sleep(PAUSE_S)
    return samples


def git_commit():
    try:
        c = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, check=True).stdout.strip()
        # GIT_OPTIONAL_LOCKS=0: git status must not rewrite the index.
        dirty = subprocess.run(["git", "-C", SRC, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True,
                               env=dict(os.environ, GIT_OPTIONAL_LOCKS="0")).stdout.strip()
        return c + (" (+ uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt_ms(x):
    return "-" if x is None else ("%.2f" % x if x < 100 else "%.1f" % x)


def fmt_ratio(a, b):
    return "-" if a is None or b is None else "%.2f" % (a / b)


def fmt_gflops(r):
    """kiln's GFLOP/s at its median and the fraction of the measured peak, or "-"."""
    g = r.get("kiln_gflops")
    if g is None:
        return "-"
    s = "%.1f" % g
    if r.get("peak_fraction") is not None:
        s += " (%.0f%%)" % (100 * r["peak_fraction"])
    return s


def table(results):
    """The Markdown table of the results."""
    rows = ["| model | batch | threads | kiln ms | ORT ms | torch ms | ORT/kiln | torch/kiln "
            "| kiln GFLOP/s (% peak) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        med = r.get("median_ms", {})
        k, o, t = med.get("kiln"), med.get("ort"), med.get("torch")
        note = " (%s)" % r["note"] if r.get("note") else ""
        rows.append("| %s%s | %d | %d | %s | %s | %s | %s | %s | %s |" % (
            r["model"], note, r["batch"], r["threads"], fmt_ms(k), fmt_ms(o), fmt_ms(t),
            fmt_ratio(o, k), fmt_ratio(t, k), fmt_gflops(r)))
    return "\n".join(rows)


def measure_peaks(kiln_time, threads, log):
    """kiln's measured FP32 FMA peak (level in use) per thread count, before any worker starts."""
    peaks = {}
    for nt in threads:
        out = subprocess.run([kiln_time, "--peak", str(nt)], capture_output=True, text=True).stdout.split()
        if len(out) == 3 and out[0] == "peak":
            peaks[nt] = {"isa": out[1], "gflops": float(out[2])}
            log("bench: measured FP32 FMA peak, %s, %d thread%s: %.1f GFLOP/s" % (
                out[1], nt, "" if nt == 1 else "s", float(out[2])))
    return peaks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kiln-time", required=True, help="the kiln_time program")
    ap.add_argument("--ort-modules", required=True, help="node_modules holding onnxruntime-node")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--model-dir", default=os.path.join(SRC, "models", "out"))
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--segment", type=float, default=0.3,
                    help="seconds per runtime turn (at least one run)")
    ap.add_argument("--config-budget", type=float, default=45,
                    help="seconds per configuration past which rounds drop (to at least 3)")
    ap.add_argument("--seq", type=int, default=128, help="sequence length of text models")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--md", help="write a Markdown report (conditions + table) here")
    ap.add_argument("--log", help="workers' stderr goes here (default: discarded)")
    args = ap.parse_args()

    models = [m for m in args.models.split(",") if m]
    batches = [int(b) for b in args.batches.split(",") if b]
    threads = [int(t) for t in args.threads.split(",") if t]
    logf = open(args.log, "a") if args.log else None

    def log(msg):
        print(msg, flush=True)

    torch_env = dict(os.environ)
    # Set, these force OpenBLAS's 256-bit kernels at half speed (see the notes).
    torch_env.pop("OPENBLAS_CORETYPE", None)
    torch_env.pop("OPENBLAS_L2_SIZE", None)

    started = time.time()
    info = {"cpu": cpu_model(), "cores": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"), "commit": git_commit(),
            "loadavg_start": os.getloadavg(), "kernel": platform.release(),
            "settings": {"rounds": args.rounds, "segment_s": args.segment,
                         "config_budget_s": args.config_budget, "seq": args.seq}}
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = "missing"
    node_ver = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    info["node"] = node_ver
    log("bench: %s, %d cores, commit %s, load average %.2f %.2f %.2f" % (
        info["cpu"], info["cores"], info["commit"], *info["loadavg_start"]))

    peaks = measure_peaks(args.kiln_time, threads, log)
    info["peak_gflops"] = {str(k): v for k, v in peaks.items()}
    results = []
    tmp = tempfile.mkdtemp(prefix="kiln-bench.")
    try:
        for model in models:
            path = os.path.join(args.model_dir, model + ".onnx")
            if not os.path.exists(path):
                log("%s: %s is missing (run models/export.py --models %s)" % (model, path, model))
                continue
            torch_w = None
            try:
                t0 = time.time()
                torch_w = Worker("torch", ["/usr/bin/python3", os.path.join(HERE, "torch_worker.py"),
                                           model], env=torch_env, log=logf)
                log("%s: PyTorch model built in %.1f s" % (model, time.time() - t0))
            except WorkerError as e:
                log("%s: PyTorch failed: %s" % (model, e))
            for nt in threads:
                for b in batches:
                    res = {"model": model, "batch": b, "threads": nt}
                    results.append(res)
                    inputs = model_inputs(path, b, args.seq)
                    if inputs is None:
                        res["note"] = "fixed batch 1: skipped"
                        res["skipped"] = True
                        log("%s batch %d: the model's batch is fixed: skipped" % (model, b))
                        continue
                    folder = tempfile.mkdtemp(dir=tmp)
                    specs = write_inputs(model, inputs, folder, args.seed)
                    res["inputs"] = [{"name": n, "dtype": d, "shape": s} for n, d, s in inputs]
                    log("%s batch %d threads %d: inputs %s" % (
                        model, b, nt, ", ".join("%s %s%s" % (n, d, s) for n, d, s in inputs)))
                    workers = {}
                    try:
                        if torch_w is None:
                            raise WorkerError("torch: no worker")
                        workers["kiln"] = Worker("kiln", [args.kiln_time, path, str(nt)] + specs,
                                                 log=logf)
                        workers["ort"] = Worker("ORT", ["node", os.path.join(HERE, "ort_worker.js"),
                                                        args.ort_modules, path, str(nt)] + specs,
                                                log=logf)
                        torch_w.ask("setup %d %s" % (nt, " ".join(specs)))
                        workers["torch"] = torch_w
                        res["session_ms"] = {"kiln": float(workers["kiln"].ready[1]),
                                             "ort": float(workers["ort"].ready[1])}
                        dumps = {}
                        for rt in RUNTIMES:
                            os.makedirs(os.path.join(folder, rt))
                            dumps[rt] = workers[rt].ask("dump " + os.path.join(folder, rt))
                        res["output_diff_vs_kiln"] = compare_outputs(dumps, folder)
                        bad = {NAMES[rt]: d for rt, d in res["output_diff_vs_kiln"].items()
                               if d is None or d > 1e-3}
                        if bad:
                            res["note"] = "outputs differ"
                            log("    WARNING: outputs differ from kiln's: %s" % ", ".join(
                                "%s %s" % (k, "shape" if v is None else "%.2g" % v)
                                for k, v in bad.items()))
                        samples = bench_config(workers, args.rounds, args.segment,
                                               args.config_budget, log)
                        res["runs_ms"] = samples
                        res["median_ms"] = {rt: statistics.median(s) for rt, s in samples.items()}
                        res["min_ms"] = {rt: min(s) for rt, s in samples.items()}
                        ready = workers["kiln"].ready
                        if len(ready) >= 4 and int(ready[2]) > 0 and int(ready[3]) == 0:
                            res["macs"] = int(ready[2])
                            res["kiln_gflops"] = 2 * res["macs"] / (res["median_ms"]["kiln"] * 1e6)
                            if nt in peaks:
                                res["peak_gflops"] = peaks[nt]["gflops"]
                                res["peak_isa"] = peaks[nt]["isa"]
                                res["peak_fraction"] = res["kiln_gflops"] / peaks[nt]["gflops"]
                        med = res["median_ms"]
                        log("    median: kiln %s ms, ORT %s ms, torch %s ms; ORT/kiln %s, "
                            "torch/kiln %s" % (fmt_ms(med["kiln"]), fmt_ms(med["ort"]),
                                               fmt_ms(med["torch"]),
                                               fmt_ratio(med["ort"], med["kiln"]),
                                               fmt_ratio(med["torch"], med["kiln"])))
                    except WorkerError as e:
                        res["error"] = str(e)
                        res["note"] = "failed: " + str(e)[:80]
                        log("    FAILED: %s" % e)
                    finally:
                        for rt in ("kiln", "ort"):
                            if rt in workers:
                                workers[rt].close()
                        shutil.rmtree(folder, ignore_errors=True)
            if torch_w is not None:
                torch_w.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    info["loadavg_end"] = os.getloadavg()
    info["elapsed_s"] = round(time.time() - started, 1)
    md = table(results)
    print()
    print(md)
    print("\nbench: %.0f s; load average at the end %.2f %.2f %.2f" % (
        info["elapsed_s"], *info["loadavg_end"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results}, f, indent=1)
    if args.md:
        with open(args.md, "w") as f:
            f.write("- CPU: %s (%d cores online), Linux %s\n" % (info["cpu"], info["cores"],
                                                              info["kernel"]))
            f.write("- Date: %s; commit %s\n" % (info["date"], info["commit"]))
            f.write("- Load average (1/5/15 min): %.2f %.2f %.2f at the start, %.2f %.2f %.2f "
                    "at the end; %.0f s in all\n" % (*info["loadavg_start"], *info["loadavg_end"],
                                                     info["elapsed_s"]))
            f.write("- PyTorch %s, node %s, ONNX Runtime (onnxruntime-node) 1.30.0\n" % (
                info["torch"], info["node"]))
            if peaks:
                f.write("- kiln's measured FP32 FMA peak (%s): %s\n" % (
                    "/".join(sorted({p["isa"] for p in peaks.values()})),
                    ", ".join("%.1f GFLOP/s on %d thread%s" % (p["gflops"], nt, "" if nt == 1 else "s")
                              for nt, p in sorted(peaks.items()))))
            f.write("\n")
            f.write(md + "\n")
    failed = [r for r in results if r.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
