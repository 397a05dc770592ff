// FP32 throughput of an ONNX model in ONNX Runtime (onnxruntime-node), one thread:
// the best of BENCH_REPEAT (3) windows of BENCH_SECONDS (3) each.
// Part of bench/run_speed.sh. usage: node bench/fp32_ort.js MODEL.onnx [BATCH ...]
const ort = require('onnxruntime-node');
const path = require('path');

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
    await session.run(feeds);
    let best = 0;
    for (let r = 0; r < repeat; r++) {
      let runs = 0;
      const t0 = process.hrtime.bigint();
      let t;
      for (;;) {
        await session.run(feeds);
        runs++;
        t = Number(process.hrtime.bigint() - t0) / 1e9;
        if (t >= seconds && runs >= 5) break;
      }
      best = Math.max(best, runs * b / t);
    }
    console.log(`onnxruntime ${path.basename(file)} batch ${b} ${best.toFixed(1)}`);
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
