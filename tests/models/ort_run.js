// ort_run.js — runs one zoo model with ONNX Runtime (CPU), for zoo_check.
//
//   node tests/models/ort_run.js NODE_MODULES_DIR MODEL.onnx REF_DIR OUT_DIR
//
// Feeds REF_DIR/input_K.npy to the K-th graph input of MODEL.onnx, runs it
// in an onnxruntime-node InferenceSession (CPU, one thread, basic graph
// optimizations only, so results stay close to a plain evaluation) and
// writes the K-th output to OUT_DIR/output_K.npy.  NODE_MODULES_DIR is the
// folder holding onnxruntime-node.  Prints ORT's version on success; exits 1
// with a message on any error.
'use strict';

const fs = require('fs');
const path = require('path');

const [modDir, modelPath, refDir, outDir] = process.argv.slice(2);
if (!outDir) {
    console.error('usage: node ort_run.js NODE_MODULES_DIR MODEL.onnx REF_DIR OUT_DIR');
    process.exit(2);
}
const ort = require(path.join(path.resolve(modDir), 'onnxruntime-node'));

// numpy dtype string <-> ORT type and typed array.
const TYPES = {
    '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array],
    '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array],
    '|u1': ['uint8', Uint8Array], '|i1': ['int8', Int8Array], '|b1': ['bool', Uint8Array],
};

// Tensor from a .npy file (version 1 or 2 header, C order, little-endian).
function readNpy(file) {
    const buf = fs.readFileSync(file);
    if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
    const major = buf[6];
    const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
    const hstart = major === 1 ? 10 : 12;
    const header = buf.toString('latin1', hstart, hstart + hlen);
    const descr = /'descr':\s*'([^']+)'/.exec(header);
    const order = /'fortran_order':\s*(True|False)/.exec(header);
    const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
    if (!descr || !order || !shape || order[1] !== 'False') throw new Error(`${file}: unsupported header ${header}`);
    const t = TYPES[descr[1]];
    if (!t) throw new Error(`${file}: unsupported dtype ${descr[1]}`);
    const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
    const count = dims.reduce((a, b) => a * b, 1);
    const start = hstart + hlen;
    if (buf.length - start !== count * t[1].BYTES_PER_ELEMENT) throw new Error(`${file}: wrong data size`);
    const ab = new ArrayBuffer(buf.length - start); // aligned copy
    new Uint8Array(ab).set(buf.subarray(start));
    const data = new t[1](ab, 0, count);
    return new ort.Tensor(t[0], t[0] === 'bool' ? Uint8Array.from(data, (v) => (v ? 1 : 0)) : data, dims);
}

// Write an ORT tensor as a version-1 .npy file.
function writeNpy(file, tensor) {
    const descr = Object.keys(TYPES).find((k) => TYPES[k][0] === tensor.type);
    if (!descr) throw new Error(`${file}: cannot write type ${tensor.type}`);
    const dims = Array.from(tensor.dims, Number);
    const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
    let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
    header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
    const pre = Buffer.alloc(10);
    pre.write('\x93NUMPY', 0, 'latin1');
    pre[6] = 1;
    pre[7] = 0;
    pre.writeUInt16LE(header.length, 8);
    const d = tensor.data;
    fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'),
        Buffer.from(d.buffer, d.byteOffset, d.byteLength)]));
}

async function main() {
    const sess = await ort.InferenceSession.create(modelPath, {
        executionProviders: ['cpu'], graphOptimizationLevel: 'basic',
        intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3,
    });
    const feeds = {};
    sess.inputNames.forEach((name, k) => { feeds[name] = readNpy(path.join(refDir, `input_${k}.npy`)); });
    const res = await sess.run(feeds);
    fs.mkdirSync(outDir, { recursive: true });
    sess.outputNames.forEach((name, k) => writeNpy(path.join(outDir, `output_${k}.npy`), res[name]));
    console.log(`onnxruntime-node ${ort.env.versions ? ort.env.versions.node : '?'}`);
}

main().catch((e) => {
    console.error('ort_run: ' + (e && e.message ? e.message : e));
    process.exit(1);
});
