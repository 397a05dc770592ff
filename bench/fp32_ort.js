// FP32 throughput of an ONNX model in ONNX Runtime (onnxruntime-node), one thread:
// the best of BENCH_REPEAT (3) windows of BENCH_SECONDS (3) each.
// Part of bench/run_speed.sh. usage: node bench/fp32_ort.js MODEL.onnx [BATCH ...]
const ort = require('onnxruntime-node');
const path = require('path');
const { bestImagesPerSecond } = require('./ort_timing');

async function main() {
  const file = process.argv[2];
  const batches = process.argv.slice(3).map(Number);
  if (!batches.length) batches.push(1, 64);
  const seconds = Number(process.env.BENCH_SECONDS || 3);
  const repeat = Math.max(1, Number(process.env.BENCH_REPEAT || 3));
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const input = session.inputNames[0];
  for (const b of batches) {
    const data = new Float32Array(b * 28 * 28).map(() => Math.random() * 2 - 1);
    const feeds = { [input]: new ort.Tensor('float32', data, [b, 1, 28, 28]) };
    const best = await bestImagesPerSecond(session, feeds, b, seconds, repeat);
    console.log(`onnxruntime ${path.basename(file)} batch ${b} ${best.toFixed(1)}`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
