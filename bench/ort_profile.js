// ort_profile.js — ONNX Runtime's per-node profile of one model, for
// bench/layer_compare.py (kiln's per-layer profile beside the peer's):
//
//   node bench/ort_profile.js NODE_MODULES MODEL THREADS RUNS OUT.json [DIMS]
//
// DIMS: the first input's shape as JSON ('[8,3,224,224]'; default
// [1,3,224,224]), random values in [0, 1).  The session is the one
// bench/ort_worker.js times (CPU provider, all graph optimizations,
// sequential, intraOpNumThreads = THREADS); ORT's profiler writes a
// chrome-trace JSON, moved to OUT.json.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

async function main() {
    const [modDir, model, threadsS, runsS, out, dimsS] = process.argv.slice(2);
    if (!out) throw new Error('usage: ort_profile.js NODE_MODULES MODEL THREADS RUNS OUT.json [DIMS]');
    const ort = require(path.join(path.resolve(modDir), 'onnxruntime-node'));
    ort.env.logLevel = 'error';
    const prefix = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ortprof-')), 'p');
    const sess = await ort.InferenceSession.create(model, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: parseInt(threadsS, 10),
        interOpNumThreads: 1,
        logSeverityLevel: 3,
        enableProfiling: true,
        profileFilePrefix: prefix,
    });
    const dims = JSON.parse(dimsS || '[1,3,224,224]');
    const x = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < x.length; i++) x[i] = Math.random();
    const feeds = {[sess.inputNames[0]]: new ort.Tensor('float32', x, dims)};
    for (let k = 0; k < parseInt(runsS, 10); k++) await sess.run(feeds);
    sess.endProfiling();
    const dir = path.dirname(prefix);
    const f = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
    if (f.length !== 1) throw new Error('no profile written in ' + dir);
    fs.copyFileSync(path.join(dir, f[0]), out);
    fs.rmSync(dir, {recursive: true, force: true});
}

main().catch((e) => {
    process.stderr.write(String(e && e.message ? e.message : e) + '\n');
    process.exit(1);
});
