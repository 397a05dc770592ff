// ort_timing.js - images/s of an ONNX Runtime session on one input: after a
// warm-up run, the best of `rounds` windows of at least `seconds` (and 5 runs)
// each, so that a window another tenant of the machine disturbed does not count.
// Shared by fp32_ort.js and compress_ort.js.
// With BENCH_CLOCK=cpu the seconds are this process's CPU time (user + system,
// every thread of it) instead of wall time, as bench_compressed does, so that
// the time slices other processes take count for neither side.
const cpuClock = process.env.BENCH_CLOCK === 'cpu';
function nowSeconds() {
  if (cpuClock) {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
  return Number(process.hrtime.bigint()) / 1e9;
}
async function bestImagesPerSecond(session, feeds, batch, seconds, rounds) {
  await session.run(feeds);
  let best = 0;
  for (let round = 0; round < Math.max(1, rounds); round++) {
    let runs = 0, t;
    const t0 = nowSeconds();
    for (;;) {
      await session.run(feeds);
      runs++;
      t = nowSeconds() - t0;
      if (t >= seconds && runs >= 5) break;
    }
    best = Math.max(best, runs * batch / t);
  }
  return best;
}
module.exports = { bestImagesPerSecond };
