#!/usr/bin/env bash
# run_qgemm.sh - INT8 GEMM MACs/cycle on one core: every presso path
# (bench_qgemm) and oneDNN's matmul (u8 x s8, per-channel scales, u8 out),
# oneDNN capped to each presso ISA and uncapped. ONEDNN_MAX_CPU_ISA is read at
# oneDNN's first call, so each cap is its own run of the binary:
#   run 1: presso paths + oneDNN capped to AVX2
#   run 2: (if the CPU has AVX-512 VNNI) presso's fastest path, in both
#          requantization forms, and oneDNN capped to AVX512_CORE_VNNI,
#          sampled in turn (bench_qgemm --versus): the presso / oneDNN ratios
#          come from samples taken side by side, and each is also given as a
#          fraction of the vpdpbusd peak loop sampled in the same turns
#   run 3: oneDNN uncapped
# usage: bash bench/run_qgemm.sh [--seconds S] [MxNxK ...]
# Needs libdnnl-dev for the oneDNN rows (a benchmark-only dependency; installed
# here with apt-get when run as root); without it only the presso rows print.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -e /usr/include/dnnl.h ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get install -y -qq libdnnl-dev >/dev/null 2>&1 ||
   (apt-get update -qq && apt-get install -y -qq libdnnl-dev)) >/dev/null 2>&1 || true
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bench_qgemm >/dev/null
export OMP_NUM_THREADS=1

echo "# $(date -u +%Y-%m-%d) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
ONEDNN_MAX_CPU_ISA=AVX2 build/bench_qgemm "$@"
if grep -qw avx512_vnni /proc/cpuinfo; then
  echo
  ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI build/bench_qgemm --versus "$@" | grep -v '^# core clock:\|^# measured peak: vpmaddwd'
fi
echo
env -u ONEDNN_MAX_CPU_ISA build/bench_qgemm --onednn-only "$@" | grep -v '^# core clock:\|^# measured peak: vpmaddwd'
