#!/usr/bin/python3
"""Interleaved A/B of kiln sessions that differ only in environment variables, with ONNX Runtime
beside them: on this class of machine whole-model times drift by 10-40% within minutes, so two
configurations are only comparable when their runs alternate.

    /usr/bin/python3 bench/ab.py MODEL BATCH THREADS ROUNDS RUNS NAME:VAR=V,... [NAME:...]
    e.g. bench/ab.py resnet50 1 1 20 3 nchw: nchwc:KILN_LAYOUT=nchwc

Each configuration is one bench/kiln_time worker (build-bench/bench/kiln_time, built by
bench/run.sh) pinned like bench.py's (one thread: core 1); AB_ORT=0 leaves ORT out.  Each round
runs every worker RUNS times in a shuffled order; prints each one's median and minimum over all
runs and the median ratios against the first configuration.  AB_BIN=PATH in a configuration runs
that kiln_time binary (another build) instead: old:AB_BIN=/tmp/old/kiln_time new:"""
import os
import random
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench  # noqa: E402

if len(sys.argv) < 7:
    sys.exit(__doc__)
model, batch, nt, rounds, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
path = os.path.join(SRC, "models", "out", model + ".onnx")
inputs = bench.model_inputs(path, batch, 128)
if inputs is None:
    sys.exit("%s: the model's batch is fixed to another size" % model)
specs = bench.write_inputs(model, inputs, tempfile.mkdtemp(), 0)
cores = "1" if nt == 1 else ",".join(str(i) for i in range(nt))
kt = os.path.join(SRC, "build-bench", "bench", "kiln_time")
W = {}
for arg in sys.argv[6:]:
    name, _, kv = arg.partition(":")
    env = dict(os.environ)
    for p in filter(None, kv.split(",")):
        k, v = p.split("=", 1)
        env[k] = v
    binary = env.pop("AB_BIN", kt)  # another build's kiln_time, for an A/B of two builds
    W[name] = bench.Worker(name, ["taskset", "-c", cores, binary, path, str(nt)] + specs, env=env)
if os.environ.get("AB_ORT", "1") == "1":
    W["ort"] = bench.Worker("ort", ["taskset", "-c", cores, "node", os.path.join(HERE, "ort_worker.js"),
                                    os.path.join(SRC, ".ort", "node_modules"), path, str(nt)] + specs)
for w in W.values():
    w.run(3)
T = {k: [] for k in W}
for r in range(rounds):
    ks = list(W)
    random.shuffle(ks)
    for k in ks:
        T[k] += W[k].run(per)
names = list(W)
for k in names:
    print("%-8s median %9.3f ms  min %9.3f ms  (%d runs)" % (k, statistics.median(T[k]), min(T[k]), len(T[k])))
for k in names[1:]:
    print("%s/%s median ratio %.3f" % (k, names[0], statistics.median(T[k]) / statistics.median(T[names[0]])))
for w in W.values():
    w.close()
