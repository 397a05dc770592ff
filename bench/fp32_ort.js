// FP32 throughput of an ONNX model in ONNX Runtime (onnxruntime-node), one thread.
// Part of bench/run_fp32.sh. usage: node bench/fp32_ort.js MODEL.onnx [BATCH ...]
const ort = require('onnxruntime-node');
const path = require('path');

async function main() {
  const file = process.argv[2];
  const batches = process.argv.slice(3).map(Number);
  if (!batches.length) batches.push(1, 64);
  const seconds = Number(process.env.BENCH_SECONDS || 3);
  const session = await ort.InferenceSession.create(file, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const input = session.inputNames[0];
  for (const b of batches) {
    const data = new Float32Array(b * 28 * 28).map(() => Math.random() * 2 - 1);
    const feeds = { [input]: new ort.Tensor('float32', data, [b, 1, 28, 28]) };
    await session.run(feeds);
    let runs = 0;
    const t0 = process.hrtime.bigint();
    let t;
    for (;;) {
      await session.run(feeds);
      runs++;
      t = Number(process.hrtime.bigint() - t0) / 1e9;
      if (t >= seconds && runs >= 5) break;
    }
    console.log(`onnxruntime ${path.basename(file)} batch ${b} ${(runs * b / t).toFixed(1)}`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
