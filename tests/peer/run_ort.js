// run_ort.js — runs every case that gen_cases.py wrote with ONNX Runtime (CPU).
//
//   node tests/peer/run_ort.js CASES_DIR [ORT_MODULE_DIR]
//
// For each CASES_DIR/test_*/raw/manifest.json (written by gen_cases.py: the
// inputs as raw little-endian files plus their names, types and shapes), loads
// model.onnx into an onnxruntime-node InferenceSession (CPU, all graph
// optimizations), runs it and writes raw/out_K.bin and raw/result.json
// ({"ok": true, "outputs": [{name, type, dims, file}]} or {"ok": false,
// "error": "..."}).  gen_cases.py's "outputs" phase turns them into
// test_data_set_0/output_K.pb.  ORT_MODULE_DIR is the node_modules folder that
// holds onnxruntime-node (default: resolved the usual way).
'use strict';

const fs = require('fs');
const path = require('path');

const casesDir = process.argv[2];
if (!casesDir) {
    console.error('usage: node run_ort.js CASES_DIR [NODE_MODULES_DIR]');
    process.exit(2);
}
const modDir = process.argv[3];
const ort = require(modDir ? path.join(path.resolve(modDir), 'onnxruntime-node') : 'onnxruntime-node');
ort.env.logLevel = 'error'; // ORT's warnings (RoiAlign max mode...) are not results

// Typed array class for each ORT element type (string is a plain array).
const ARRAYS = {
    float32: Float32Array, float64: Float64Array, float16: Uint16Array,
    int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
    int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
    bool: Uint8Array,
};

// Tensor from one manifest entry {name, type, dims, file}.
function readInput(dir, inp) {
    const count = inp.dims.reduce((a, b) => a * b, 1);
    if (inp.type === 'string') {
        const strs = JSON.parse(fs.readFileSync(path.join(dir, inp.file), 'utf8'));
        return new ort.Tensor('string', strs, inp.dims);
    }
    const A = ARRAYS[inp.type];
    if (!A) throw new Error(`input ${inp.name}: unknown type ${inp.type}`);
    const buf = fs.readFileSync(path.join(dir, inp.file));
    if (buf.length !== count * A.BYTES_PER_ELEMENT)
        throw new Error(`input ${inp.name}: ${buf.length} bytes, expected ${count * A.BYTES_PER_ELEMENT}`);
    const ab = new ArrayBuffer(buf.length); // aligned copy
    new Uint8Array(ab).set(buf);
    return new ort.Tensor(inp.type, new A(ab, 0, count), inp.dims);
}

// Raw little-endian bytes (or JSON for strings) of an output tensor.
function outputBytes(t) {
    if (t.type === 'string') return Buffer.from(JSON.stringify(Array.from(t.data)), 'utf8');
    const d = t.data;
    return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

async function runCase(caseDir) {
    const raw = path.join(caseDir, 'raw');
    const man = JSON.parse(fs.readFileSync(path.join(raw, 'manifest.json'), 'utf8'));
    const feeds = {};
    for (const inp of man.inputs) feeds[inp.name] = readInput(raw, inp);
    const sess = await ort.InferenceSession.create(path.join(caseDir, 'model.onnx'), {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        logSeverityLevel: 4,
    });
    try {
        const res = await sess.run(feeds);
        const outs = [];
        sess.outputNames.forEach((name, k) => {
            const t = res[name];
            const file = `out_${k}.bin`;
            fs.writeFileSync(path.join(raw, file), outputBytes(t));
            outs.push({ name, type: t.type, dims: Array.from(t.dims, Number), file });
        });
        return { ok: true, outputs: outs };
    } finally {
        if (sess.release) await sess.release();
    }
}

async function main() {
    const names = fs.readdirSync(casesDir).filter((n) => n.startsWith('test_')).sort();
    let ok = 0, bad = 0;
    for (const n of names) {
        const dir = path.join(casesDir, n);
        if (!fs.existsSync(path.join(dir, 'raw', 'manifest.json'))) continue;
        let result;
        try {
            result = await runCase(dir);
            ok++;
        } catch (e) {
            result = { ok: false, error: String(e && e.message ? e.message : e) };
            bad++;
        }
        fs.writeFileSync(path.join(dir, 'raw', 'result.json'), JSON.stringify(result));
    }
    console.log(`run_ort: onnxruntime-node ${ort.env.versions ? ort.env.versions.node : '?'}: ` +
                `${ok} cases ran, ${bad} failed in ORT`);
}

main().catch((e) => {
    console.error('run_ort: ' + (e && e.stack ? e.stack : e));
    process.exit(1);
});
