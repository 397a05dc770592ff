#!/usr/bin/env bash
# run_mpi.sh - `presso search` across MPI ranks, on this one machine (the MPI
# build: cmake -DPRESSO_MPI=ON).
#
#  1. speed: trials/min of one study (LeNet, $VALID validation images,
#     $TRIALS trials, hybrid, batches of 16) on 1, 2 and 3 ranks with the
#     machine's cores as workers in all: 1 rank = one process with $CORES
#     worker threads; 2 ranks = rank 0 drives, rank 1 has $CORES workers;
#     3 ranks = ranks 1 and 2 have $CORES/2 each. $REPEATS runs of each, the
#     median rate; then where each rank's time went in the median run of each
#     (the ranks' report lines: workers evaluating or idle, MPI calls, CPU,
#     transit per job) and the summary's share of worker time spent
#     evaluating during the search loop.
#  2. the driver with 64 ranks: PRESSO_MPI_SIMULATE_TRIAL_S makes ranks 1..63
#     sleep instead of evaluating (evaluators/pool_mpi.c), while rank 0 runs
#     the real driver and database on the MobileNetV2 search space (its 50
#     layers make the policies, commits and state of a real study). The sleep
#     is a trial time measured here (the median trial of a one-worker
#     MobileNetV2 search on 5,000 validation images), then shorter ones down to
#     0 (the driver's ceiling). For each: the trials/s the driver sustained in
#     its search loop against 63 workers / sleep (what the ranks could do if
#     the driver took no time).
#
# Usage: bash bench/run_mpi.sh [BUILD_DIR]      (default build-mpi)
#   VALID=1000 TRIALS=64 REPEATS=3 SIM_TRIALS=630 SIM_TIMES="0.1 0.03 0" OUT=bench/results_mpi.txt
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-mpi}
PRESSO=$PWD/$BUILD/presso
VALID=${VALID:-1000}
TRIALS=${TRIALS:-64}
REPEATS=${REPEATS:-3}
SIM_TRIALS=${SIM_TRIALS:-630}
SIM_TIMES=${SIM_TIMES:-"0.1 0.03 0"}
OUT=${OUT:-bench/results_mpi.txt}
CORES=$(nproc)
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
WORK=$(mktemp -d /tmp/presso-bench-mpi-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

[ -x "$PRESSO" ] || { echo "build the MPI variant first: cmake -S . -B $BUILD -DPRESSO_MPI=ON && cmake --build $BUILD" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "mpirun is missing (Debian: openmpi-bin)" >&2; exit 2; }

# config SHIPPED NAME VALID [POPULATION] -> a copy of configs/SHIPPED with
# absolute paths, the given validation split and a smaller calibration split
config() {
	python3 - "$1" "$WORK/$2.json" "$3" "${4:-}" <<'EOF'
import json, os, sys
src, dst, valid, pop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = json.load(open(src))
c["model"] = os.path.abspath(os.path.join(os.path.dirname(src), c["model"]))
c["data"]["splits"].update({"calibration": 500, "validation": valid, "test": 1000})
c["search"].pop("time_limit", None)
if pop:
    c["search"]["population"] = int(pop)
json.dump(c, open(dst, "w"), indent=1)
EOF
	echo "$WORK/$2.json"
}

{
echo "# bash bench/run_mpi.sh   ($(date -u '+%Y-%m-%d %H:%M UTC'), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $CORES cores, $(mpirun --version | head -1))"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT"

# --- 1. trials/min on 1, 2 and 3 ranks -------------------------------------------
LENET=$(config configs/lenet-search.json lenet "$VALID" 16)
# run NAME RANKS WORKERS -> the rate; the run's stderr and stdout in $WORK/NAME.{err,out}
run() {
	local name=$1 ranks=$2 workers=$3
	rm -f "$WORK/$name.db"*
	"${MPIRUN[@]}" -np "$ranks" "$PRESSO" search --quiet --config "$LENET" --db "$WORK/$name.db" \
		--workers "$workers" --max-trials "$TRIALS" >"$WORK/$name.out" 2>"$WORK/$name.err"
	sed -n 's/.* \([0-9.]*\) trials\/min$/\1/p' "$WORK/$name.out"
}
{
echo
echo "## trials/min: LeNet, $VALID validation images, $TRIALS trials, batches of 16, $CORES workers in all ($REPEATS runs each, median)"
echo
} | tee -a "$OUT"
for ranks in 1 2 3; do
	case $ranks in 1 | 2) workers=$CORES ;; 3) workers=$((CORES / 2 > 0 ? CORES / 2 : 1)) ;; esac
	rates=()
	for k in $(seq 1 "$REPEATS"); do rates+=("$(run "r$ranks-$k" "$ranks" "$workers")"); done
	median=$(printf '%s\n' "${rates[@]}" | sort -g | sed -n "$(((REPEATS + 1) / 2))p")
	for k in $(seq 1 "$REPEATS"); do [ "${rates[$((k - 1))]}" = "$median" ] && pick=$k; done
	{
	echo "$ranks rank(s), $workers worker(s) per evaluating process: $median trials/min (runs: ${rates[*]})"
	grep -h '^workers:' "$WORK/r$ranks-$pick.out" | sed 's/^/    /'
	grep -h '^presso: rank\|^presso: the ' "$WORK/r$ranks-$pick.err" | sed 's/^/    /' || true
	} | tee -a "$OUT"
done

# --- 2. 64 ranks, simulated -------------------------------------------------------
MOBILE=$(config configs/mobilenetv2-search.json mobilenetv2 5000)
"$PRESSO" search --quiet --config "$MOBILE" --db "$WORK/trial.db" --workers 1 --max-trials 12 \
	>/dev/null 2>&1
MEASURED=$(sqlite3 "$WORK/trial.db" "select ended_at - started_at from trials where state = 'complete'" |
	python3 -c 'import statistics, sys; print("%.3f" % statistics.median(float(x) for x in sys.stdin))')
SIM_CONFIG=$(config configs/mobilenetv2-search.json sim 500)
{
echo
echo "## the driver with 64 ranks (63 simulated workers, rank 0 on the MobileNetV2 space, $SIM_TRIALS trials, batches of 63)"
echo "   measured trial time: MobileNetV2, 5000 validation images, one worker, median of 12 trials: $MEASURED s"
echo
} | tee -a "$OUT"
for t in $MEASURED $SIM_TIMES; do
	rm -f "$WORK/sim.db"*
	PRESSO_MPI_SIMULATE_TRIAL_S=$t "${MPIRUN[@]}" -np 64 "$PRESSO" search --quiet --config "$SIM_CONFIG" \
		--db "$WORK/sim.db" --workers 1 --max-trials "$SIM_TRIALS" >"$WORK/sim.out" 2>"$WORK/sim.err"
	python3 - "$t" "$WORK/sim.out" "$WORK/sim.err" <<'EOF' | tee -a "$OUT"
import re, sys
t = float(sys.argv[1]); out = open(sys.argv[2]).read(); err = open(sys.argv[3]).read()
m = re.search(r"ended: .* (\d+) of \d+ trials .* in ([0-9.]+) s", out)
n, secs = int(m.group(1)), float(m.group(2))
ideal = "unbounded" if t == 0 else "%.0f" % (63 / t)
busy = re.search(r"workers:\s+evaluating ([0-9.]+)%", out)
r0 = re.search(r"rank 0 \(the driver\): ([0-9.]+) s; waiting for results ([0-9.]+)%.*CPU ([0-9.]+) s", err)
print(f"sleep {t:g} s: {n / secs:.0f} trials/s sustained (63 workers could do {ideal}/s); "
      f"workers sleeping {busy.group(1) if busy else '?'}% of the loop; "
      f"rank 0 waiting for results {r0.group(2)}% of its {r0.group(1)} s, CPU {r0.group(3)} s "
      f"({1e3 * float(r0.group(3)) / n:.2f} ms per trial)")
EOF
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
