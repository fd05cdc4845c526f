#!/usr/bin/env python3
"""layer_compare.py: kiln's per-layer profile beside ONNX Runtime's, layer by layer.

    kiln build MODEL -o E.kiln --threads 1 --shapes input:1x3x224x224
    kiln profile E.kiln --warmup 5 --iterations 20 --export kiln.json
    node bench/ort_profile.js NODE_MODULES MODEL 1 25 ort.json
    python3 bench/layer_compare.py kiln.json ort.json [--top N]

Each kiln layer (a node after fusion) is matched with the ORT nodes whose
names are among the model nodes it absorbed (ORT names its NCHWc and fused
nodes after an original node's output: "_output_0_nchwc" and
"/QuickGeluFusion/" are stripped); ORT's times are medians over the runs
after the first three.  Prints the totals, the sums per kiln tactic with the
ratio ORT/kiln (below 1: kiln slower), and the N layers where kiln loses the
most.  ORT nodes no kiln layer claims (its layout reorders) are listed.
Measure both on the same core, one after the other (taskset -c N).
"""
import collections
import json
import statistics
import sys


def ort_nodes(path):
    ev = json.load(open(path))
    t = collections.defaultdict(list)
    for e in ev:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'):
            t[(e['name'][:-len('_kernel_time')], e['args'].get('op_name'))].append(e['dur'])
    out = {}
    for (name, op), d in t.items():
        key = name.replace('_output_0_nchwc', '').replace('/QuickGeluFusion/', '')
        d = d[3:] if len(d) > 3 else d
        out[key] = (statistics.median(d) / 1000.0, op)
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    top = 15
    if '--top' in argv:
        top = int(argv[argv.index('--top') + 1])
    ort = ort_nodes(argv[2])
    layers = json.load(open(argv[1]))['layers']
    claimed = set()
    cls = collections.defaultdict(lambda: [0.0, 0.0, 0])
    rows = []
    for L in layers:
        parts = set((L.get('fused_from') or L['name']).split('+'))
        keys = [k for k in ort if k in parts]
        claimed.update(keys)
        o = sum(ort[k][0] for k in keys)
        tp = L['tactic'].split('.')
        tac = tp[1] if len(tp) > 1 else tp[0]
        cls[tac][0] += L['average_ms']
        cls[tac][1] += o
        cls[tac][2] += 1
        rows.append((L['average_ms'] - o, L['average_ms'], o, L['tactic'], L['name']))
    print('kiln layers %.3f ms, ORT nodes %.3f ms' % (sum(r[1] for r in rows), sum(v[0] for v in ort.values())))
    print('%-14s %4s %10s %10s %8s' % ('tactic', 'n', 'kiln ms', 'ORT ms', 'ORT/kiln'))
    for k, (a, b, n) in sorted(cls.items(), key=lambda kv: -kv[1][0]):
        print('%-14s %4d %10.3f %10.3f %8.2f' % (k, n, a, b, b / a if a else 0.0))
    print('\nlayers where kiln loses most (kiln - ORT ms):')
    for r in sorted(rows, reverse=True)[:top]:
        print('%+8.3f  kiln %7.3f  ORT %7.3f  %-26s %s' % (r[0], r[1], r[2], r[3], r[4][:100]))
    rest = [(k, v) for k, v in ort.items() if k not in claimed]
    if rest:
        print('\nORT nodes no kiln layer claims: %.3f ms (%s)' % (
            sum(v[0] for _, v in rest), ', '.join(sorted(set(v[1] for _, v in rest)))))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
