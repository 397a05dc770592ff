// A model written by `presso compress -o X.onnx`, run in ONNX Runtime (onnxruntime-node,
// one thread, all graph optimizations): top-1 accuracy on the study config's test set
// with presso's normalisation, then images/s per batch size (the best of
// BENCH_ROUNDS rounds of BENCH_SECONDS each; defaults 3 and 3).
// Part of bench/run_compress.sh.
// usage: node bench/compress_ort.js CONFIG.json MODEL.onnx [BATCH ...]
// prints "ort-accuracy <model> <percent> <n_images>" and
//        "onnxruntime-qdq <model> batch <b> <images/s>"
const ort = require('onnxruntime-node');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { bestImagesPerSecond } = require('./ort_timing');

// IDX file (raw or gzip) -> {dims, data: Uint8Array}
function readIdx(file) {
  let raw = fs.readFileSync(file);
  if (raw[0] === 0x1f && raw[1] === 0x8b) raw = zlib.gunzipSync(raw);
  const magic = raw.readUInt32BE(0);
  if (magic >> 8 !== 0x08) throw new Error(`${file}: not an unsigned-byte IDX file`);
  const nd = magic & 0xff;
  const dims = [];
  for (let i = 0; i < nd; i++) dims.push(raw.readUInt32BE(4 + 4 * i));
  const data = raw.subarray(4 + 4 * nd);
  if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${file}: truncated`);
  return { dims, data };
}

async function main() {
  const [configFile, modelFile] = process.argv.slice(2, 4);
  const batches = process.argv.slice(4).map(Number);
  if (!batches.length) batches.push(1, 64);
  const seconds = Number(process.env.BENCH_SECONDS || 3);
  const rounds = Number(process.env.BENCH_ROUNDS || 3);
  const cfg = JSON.parse(fs.readFileSync(configFile, 'utf8'));
  const dir = path.dirname(configFile);
  const d = cfg.data;
  if ((d.format || 'idx') !== 'idx') throw new Error('only IDX datasets are supported here');
  const images = readIdx(path.resolve(dir, d.test_images));
  const labels = readIdx(path.resolve(dir, d.test_labels)).data;
  const [n, h, w] = images.dims;
  const pix = h * w;
  // presso's normalisation in float32 arithmetic: (pixel * scale - mean) / std
  const f = Math.fround;
  const scale = f(d.normalize.scale), mean = f(d.normalize.mean[0]), std = f(d.normalize.std[0]);
  const x = new Float32Array(n * pix);
  for (let i = 0; i < n * pix; i++) x[i] = f(f(f(images.data[i] * scale) - mean) / std);

  const session = await ort.InferenceSession.create(modelFile, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const input = session.inputNames[0], output = session.outputNames[0];
  const name = path.basename(modelFile);

  const evalBatch = 100;
  let correct = 0;
  for (let i0 = 0; i0 < n; i0 += evalBatch) {
    const b = Math.min(evalBatch, n - i0);
    const t = new ort.Tensor('float32', x.subarray(i0 * pix, (i0 + b) * pix), [b, 1, h, w]);
    const y = (await session.run({ [input]: t }))[output];
    const k = y.dims[1];
    for (let r = 0; r < b; r++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (y.data[r * k + c] > y.data[r * k + best]) best = c;
      if (best === labels[i0 + r]) correct++;
    }
  }
  console.log(`ort-accuracy ${name} ${(100 * correct / n).toFixed(2)} ${n}`);

  // the best of BENCH_ROUNDS timed rounds per batch size (the machine is shared)
  for (const b of batches) {
    const feeds = { [input]: new ort.Tensor('float32', x.subarray(0, b * pix), [b, 1, h, w]) };
    const best = await bestImagesPerSecond(session, feeds, b, seconds, rounds);
    console.log(`onnxruntime-qdq ${name} batch ${b} ${best.toFixed(1)}`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
