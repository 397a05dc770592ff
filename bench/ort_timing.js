// ort_timing.js - images/s of an ONNX Runtime session on one input: after a
// warm-up run, the best of `rounds` windows of at least `seconds` (and 5 runs)
// each, so that a window another tenant of the machine disturbed does not count.
// Shared by fp32_ort.js and compress_ort.js.
async function bestImagesPerSecond(session, feeds, batch, seconds, rounds) {
  await session.run(feeds);
  let best = 0;
  for (let round = 0; round < Math.max(1, rounds); round++) {
    let runs = 0, t;
    const t0 = process.hrtime.bigint();
    for (;;) {
      await session.run(feeds);
      runs++;
      t = Number(process.hrtime.bigint() - t0) / 1e9;
      if (t >= seconds && runs >= 5) break;
    }
    best = Math.max(best, runs * batch / t);
  }
  return best;
}
module.exports = { bestImagesPerSecond };
