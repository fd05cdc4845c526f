// ort_worker.js — ONNX Runtime's worker for bench/bench.py (same protocol as
// kiln_time.c): loads one model into an onnxruntime-node InferenceSession on
// the CPU provider (all graph optimizations, intraOpNumThreads = THREADS,
// interOpNumThreads = 1, sequential execution), then answers on stdin:
//
//   node ort_worker.js NODE_MODULES MODEL THREADS NAME:DTYPE:D0xD1x...:RAWFILE...
//
//   run N      run N times; print "ok T1 ... TN" (ms per run, each measured
//              around `await session.run(feeds)`)
//   dump DIR   run once; write output K as DIR/out_K.bin, print "ok TYPE:DIMS ..."
//   quit       exit
//
// Startup prints "ready LOAD_MS SESSION_MS" or "error MESSAGE".
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

function out(line) { process.stdout.write(line + '\n'); }

async function main() {
    const [modDir, model, threadsS, ...specs] = process.argv.slice(2);
    const ort = require(path.join(path.resolve(modDir), 'onnxruntime-node'));
    ort.env.logLevel = 'error';
    const threads = parseInt(threadsS, 10);
    const feeds = {};
    for (const spec of specs) {
        const [name, dtype, dims, file] = spec.split(':');
        const shape = dims.split('x').map(Number);
        const buf = fs.readFileSync(file);
        const ab = new ArrayBuffer(buf.length);
        new Uint8Array(ab).set(buf);
        if (dtype === 'float') feeds[name] = new ort.Tensor('float32', new Float32Array(ab), shape);
        else if (dtype === 'int64') feeds[name] = new ort.Tensor('int64', new BigInt64Array(ab), shape);
        else throw new Error('input dtype must be float or int64');
    }
    const t0 = process.hrtime.bigint();
    const sess = await ort.InferenceSession.create(model, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
    });
    const t1 = process.hrtime.bigint();
    out(`ready 0 ${(Number(t1 - t0) / 1e6).toFixed(3)}`);

    const rl = readline.createInterface({ input: process.stdin, terminal: false });
    for await (const line of rl) {
        if (line.startsWith('run ')) {
            const n = parseInt(line.slice(4), 10);
            const ms = [];
            for (let k = 0; k < n; k++) {
                const a = process.hrtime.bigint();
                await sess.run(feeds);
                ms.push(Number(process.hrtime.bigint() - a) / 1e6);
            }
            out('ok ' + ms.map((x) => x.toFixed(4)).join(' '));
        } else if (line.startsWith('dump ')) {
            const dir = line.slice(5);
            const res = await sess.run(feeds);
            const shapes = sess.outputNames.map((name, k) => {
                const t = res[name];
                const d = t.data;
                fs.writeFileSync(path.join(dir, `out_${k}.bin`), Buffer.from(d.buffer, d.byteOffset, d.byteLength));
                return `${t.type}:${Array.from(t.dims, Number).join('x')}`;
            });
            out('ok ' + shapes.join(' '));
        } else if (line === 'quit') {
            break;
        } else {
            throw new Error('unknown command: ' + line);
        }
    }
    rl.close();
    if (sess.release) await sess.release();
}

main().catch((e) => {
    out('error ' + String(e && e.message ? e.message : e).replace(/\n/g, ' '));
    process.exit(1);
});
