#!/usr/bin/env bash
# fuzz.sh - builds presso's libFuzzer harnesses (tests/fuzz/) and runs them.
#
# Usage: bash scripts/fuzz.sh NAME SECONDS [LIBFUZZER_ARGS...]   one harness
#        bash scripts/fuzz.sh all SECONDS [LIBFUZZER_ARGS...]    every harness (as many at a time as cores)
#        bash scripts/fuzz.sh build                              build only
#        bash scripts/fuzz.sh list                               the harness names
#
# NAME is a harness without its prefix: onnx, presso, dataset, config, policy,
# expr (tests/fuzz/fuzz_NAME.c). The build goes to build-fuzz/ (clang,
# -DPRESSO_FUZZ=ON: ASan + UBSan + libFuzzer). A run reads the committed seeds
# in tests/fuzz/corpus/NAME and what earlier runs found in build-fuzz/corpus/NAME,
# and writes new inputs only to the latter, so the committed corpus never
# changes. It uses the dictionary tests/fuzz/NAME.dict when there is one.
#
# A finding (crash, sanitizer report, leak, timeout, out-of-memory) is saved
# as tests/fuzz/findings/NAME/crash-* (or leak-, timeout-, oom-; not under
# version control); the report is printed and the script exits non-zero. With
# `all`, every harness runs even after a finding and the exit status says
# whether any failed. Reproduce one with build-fuzz/fuzz_NAME FILE.
#
# Limits per run: -timeout=10 s for one input, -rss_limit_mb=2048 (and no
# single allocation above it), one process. Extra arguments go to libFuzzer,
# e.g. `-fork=1 -ignore_crashes=1` to keep going past a known crash.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=$ROOT/build-fuzz
HARNESSES=(onnx presso dataset config policy expr)
# the first line of a report: sanitizers, libFuzzer (leak, timeout, OOM,
# signal), a harness invariant, an always-on check of presso's
REPORT_RE='ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|fuzz: invariant failed|presso: internal error|ALARM: working on the last Unit'

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

build() {
	if ! command -v clang >/dev/null; then
		echo "fuzz: clang is missing (bash scripts/setup.sh installs it)" >&2
		exit 1
	fi
	cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DPRESSO_FUZZ=ON -DPRESSO_TESTS=OFF >/dev/null
	cmake --build "$BUILD" -j "$(nproc 2>/dev/null || echo 2)" --target fuzzers fuzz_make_seeds \
		>"$BUILD/build.log" 2>&1 || { cat "$BUILD/build.log" >&2; exit 1; }
}

# run NAME SECONDS ARGS...: 0 when the harness ran without a finding
run() {
	local name=$1 seconds=$2
	shift 2
	local bin=$BUILD/fuzz_$name seeds=$ROOT/tests/fuzz/corpus/$name
	local corpus=$BUILD/corpus/$name findings=$ROOT/tests/fuzz/findings/$name
	local log=$BUILD/logs/$name.log dict=()
	[ -x "$bin" ] || { echo "fuzz: no harness '$name' (known: ${HARNESSES[*]})" >&2; return 2; }
	mkdir -p "$corpus" "$findings" "$BUILD/logs"
	[ -f "$ROOT/tests/fuzz/$name.dict" ] && dict=(-dict="$ROOT/tests/fuzz/$name.dict")
	echo "== fuzz_$name: ${seconds}s on $(find "$seeds" -type f | wc -l) seeds + $(find "$corpus" -type f | wc -l) found before =="
	local rc=0
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" "$@" \
		"$corpus" "$seeds" >"$log" 2>&1 || rc=$?
	# with -fork=1 -ignore_crashes=1 libFuzzer may exit 0 after crashes
	if [ $rc -eq 0 ] && grep -qE "$REPORT_RE" "$log"; then rc=1; fi
	# the last status line: "#N DONE cov: C ft: F corp: ... exec/s: E rss: R"
	# (with -fork: "#N: cov: C ft: F corp: K exec/s E ...")
	local last runs cov ft eps
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
	runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	eps=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log")
	[ -n "$eps" ] || eps=$(sed -n 's/.* exec\/s:\{0,1\} \([0-9]*\).*/\1/p' <<<"$last")
	echo "fuzz_$name: ${runs:-?} runs, ${eps:-?} exec/s, cov: ${cov:-?} ft: ${ft:-?}," \
		"$(find "$corpus" -type f | wc -l) inputs in build-fuzz/corpus/$name"
	if [ $rc -ne 0 ]; then
		echo "fuzz_$name: FINDING (exit $rc); the first report (full log: build-fuzz/logs/$name.log):" >&2
		local report
		report=$(sed -n '/ERROR: \|runtime error\|fuzz: invariant\|internal error\|ALARM\|out-of-memory\|deadly signal/,/^SUMMARY/p' \
			"$log" | head -n 80)
		if [ -n "$report" ]; then echo "$report" >&2; else tail -n 60 "$log" >&2; fi
		echo "fuzz_$name: distinct reports (count, first line):" >&2
		grep -E "$REPORT_RE" "$log" |
			sed -E 's/0x[0-9a-f]+/0x.../g; s/[0-9]{3,}/N/g' | sort | uniq -c | sort -rn | head -n 20 >&2 || true
		echo "fuzz_$name: inputs saved in tests/fuzz/findings/$name/:" >&2
		ls -t "$findings" | head -n 20 | sed 's/^/  /' >&2
		return 1
	fi
}

[ $# -ge 1 ] || usage
case $1 in
build)
	build
	exit 0
	;;
list)
	printf '%s\n' "${HARNESSES[@]}"
	exit 0
	;;
-h | --help)
	usage
	;;
esac
[ $# -ge 2 ] || usage
name=$1 seconds=$2
shift 2
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz: SECONDS must be a whole number" >&2; exit 2; }
if [ "$name" != all ] && [[ " ${HARNESSES[*]} " != *" $name "* ]]; then
	echo "fuzz: no harness '$name' (known: ${HARNESSES[*]}, or all)" >&2
	exit 2
fi
build
if [ "$name" = all ]; then
	# as many harnesses at a time as there are cores (each is one process),
	# their reports printed in order
	failed=()
	slots=$(nproc 2>/dev/null || echo 2)
	mkdir -p "$BUILD/logs"
	for h in "${HARNESSES[@]}"; do
		while [ "$(jobs -rp | wc -l)" -ge "$slots" ]; do wait -n || true; done
		(
			rc=0
			run "$h" "$seconds" "$@" >"$BUILD/logs/$h.out" 2>&1 || rc=$?
			echo "$rc" >"$BUILD/logs/$h.rc"
		) &
	done
	wait || true
	for h in "${HARNESSES[@]}"; do
		cat "$BUILD/logs/$h.out"
		[ "$(cat "$BUILD/logs/$h.rc" 2>/dev/null || echo 1)" = 0 ] || failed+=("$h")
	done
	if [ ${#failed[@]} -gt 0 ]; then
		echo "fuzz: findings in: ${failed[*]} (inputs in tests/fuzz/findings/)" >&2
		exit 1
	fi
	echo "fuzz: no finding in ${HARNESSES[*]}"
else
	run "$name" "$seconds" "$@"
fi
