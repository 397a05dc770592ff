#!/usr/bin/env bash
# test.sh - the README's test command: installs what is missing, builds presso
# twice (Release with warnings as errors, presso-mpi beside presso:
# -DPRESSO_MPI_ALSO=ON compiles only evaluators/pool*.c again; AddressSanitizer
# + UndefinedBehaviorSanitizer) and runs the whole Criterion suite through
# ctest on each build (as many test programs at a time as there are cores; in
# the release build also the MPI test, alone: a search on 3 ranks of this
# machine checked against one process, and a worker rank killed and resumed,
# tests/test_search_mpi.c), the main commands under valgrind
# (scripts/valgrind_check.sh, beside the sanitizer build); then every
# libFuzzer harness for FUZZ_SECONDS
# (30 by default; 0 skips) on its seed corpus (scripts/fuzz.sh): a finding
# fails the command.
# The layer check (every include points down, scripts/check_layers.sh) runs
# first and again in every build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/check_layers.sh
JOBS=$(nproc 2>/dev/null || echo 2)

echo "== release build =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPRESSO_WERROR=ON -DPRESSO_MPI_ALSO=ON >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS"

# valgrind runs one thread at a time: beside the sanitizer build, which
# takes the cores it leaves idle; its report is printed after the build
bash scripts/valgrind_check.sh build >build/valgrind_check.log 2>&1 &
valgrind_pid=$!
trap 'kill "$valgrind_pid" 2>/dev/null || true' EXIT

echo "== sanitizer build (ASan + UBSan) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRESSO_WERROR=ON \
  -DPRESSO_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$JOBS"

echo "== valgrind: info, eval, search, pareto, report, export, compress =="
valgrind_status=0
wait "$valgrind_pid" || valgrind_status=$?
trap - EXIT
cat build/valgrind_check.log
if [ "$valgrind_status" -ne 0 ]; then
  echo "test: the valgrind check failed (exit $valgrind_status)" >&2
  exit 1
fi
echo "== sanitizer build: the tests =="
PRESSO_SANITIZED=1 ctest --test-dir build-asan --output-on-failure -j "$JOBS"

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
if [ "$FUZZ_SECONDS" -gt 0 ]; then
  echo "== fuzzing (clang, ASan + UBSan + libFuzzer), ${FUZZ_SECONDS}s per harness =="
  bash scripts/fuzz.sh all "$FUZZ_SECONDS"
fi
