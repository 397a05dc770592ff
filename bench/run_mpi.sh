#!/usr/bin/env bash
# run_mpi.sh - `presso search` across MPI ranks, on this one machine (the MPI
# build: cmake -DPRESSO_MPI=ON).
#
#  1. speed: trials/min of one study (LeNet, $VALID validation images,
#     $TRIALS trials, hybrid, batches of 16) on 1, 2 and 3 ranks of one worker
#     each (rank 0 drives and evaluates), and, for comparison, one process
#     (no mpirun) with 1 and with $CORES workers. $REPEATS runs of each, the
#     median rate; then, for the median run of each MPI case, where each
#     rank's time went (the ranks' report lines: workers evaluating or idle,
#     the driver waiting, MPI calls, CPU, transit per job) and the summary's
#     share of worker time spent evaluating during the search loop.
#  2. the driver with 64 ranks: PRESSO_MPI_SIMULATE_TRIAL_S makes every
#     rank's worker sleep instead of evaluating (evaluators/pool_mpi.c), while
#     rank 0 runs the real driver and database on the MobileNetV2 search space
#     (its 50 layers make the policies, commits and state of a real study).
#     The sleep is a trial time measured here (the median trial of a
#     one-worker MobileNetV2 search on 5,000 validation images), then shorter
#     ones down to 0 (the driver's ceiling). For each: the trials/s the driver
#     sustained in its search loop against 64 workers / sleep (what the ranks
#     could do if the driver took no time).
#
# Usage: bash bench/run_mpi.sh [BUILD_DIR]      (default build-mpi)
#   VALID=1000 TRIALS=64 REPEATS=3 SIM_TRIALS=640 SIM_TIMES="0.1 0.03 0" PARTS="1 2"
#   OUT=bench/results_mpi.txt
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-mpi}
PRESSO=$PWD/$BUILD/presso
VALID=${VALID:-1000}
TRIALS=${TRIALS:-64}
REPEATS=${REPEATS:-3}
SIM_TRIALS=${SIM_TRIALS:-640}
SIM_TIMES=${SIM_TIMES:-"0.1 0.03 0"}
OUT=${OUT:-bench/results_mpi.txt}
PARTS=${PARTS:-"1 2"}
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
if [[ " $PARTS " == *" 1 "* ]]; then
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
echo "## trials/min: LeNet, $VALID validation images, $TRIALS trials, hybrid, batches of 16 ($REPEATS runs each, median)"
echo
} | tee -a "$OUT"
# plain NAME WORKERS -> the rate of one process without mpirun
plain() {
	rm -f "$WORK/$1.db"*
	"$PRESSO" search --quiet --config "$LENET" --db "$WORK/$1.db" --workers "$2" \
		--max-trials "$TRIALS" >"$WORK/$1.out" 2>"$WORK/$1.err"
	sed -n 's/.* \([0-9.]*\) trials\/min$/\1/p' "$WORK/$1.out"
}
for case in "plain 1" "plain $CORES" "mpi 1" "mpi 2" "mpi 3"; do
	set -- $case
	rates=()
	for k in $(seq 1 "$REPEATS"); do
		if [ "$1" = plain ]; then rates+=("$(plain "p$2-$k" "$2")"); else rates+=("$(run "r$2-$k" "$2" 1)"); fi
	done
	median=$(printf '%s\n' "${rates[@]}" | sort -g | sed -n "$(((REPEATS + 1) / 2))p")
	pick=1
	for k in $(seq 1 "$REPEATS"); do [ "${rates[$((k - 1))]}" = "$median" ] && pick=$k; done
	{
	if [ "$1" = plain ]; then
		echo "one process, $2 worker(s), no mpirun: $median trials/min (runs: ${rates[*]})"
		grep -h '^workers:' "$WORK/p$2-$pick.out" | sed 's/^/    /'
	else
		echo "$2 rank(s) x 1 worker: $median trials/min (runs: ${rates[*]})"
		grep -h '^workers:' "$WORK/r$2-$pick.out" | sed 's/^/    /'
		grep -h '^presso: rank\|^presso: ranks ' "$WORK/r$2-$pick.err" | sed 's/^/    /' || true
	fi
	} | tee -a "$OUT"
done

fi

# --- 2. 64 ranks, simulated -------------------------------------------------------
if [[ " $PARTS " == *" 2 "* ]]; then
MOBILE=$(config configs/mobilenetv2-search.json mobilenetv2 5000)
"$PRESSO" search --quiet --config "$MOBILE" --db "$WORK/trial.db" --workers 1 --max-trials 12 \
	>/dev/null 2>&1
MEASURED=$(sqlite3 "$WORK/trial.db" "select ended_at - started_at from trials where state = 'complete'" |
	python3 -c 'import statistics, sys; print("%.3f" % statistics.median(float(x) for x in sys.stdin))')
SIM_CONFIG=$(config configs/mobilenetv2-search.json sim 500)
{
echo
echo "## the driver with 64 ranks (64 simulated workers, rank 0 on the MobileNetV2 space, $SIM_TRIALS trials, batches of 64)"
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
ideal = "unbounded" if t == 0 else "%.0f" % (64 / t)
busy = re.search(r"workers:\s+evaluating ([0-9.]+)%", out)
r0 = re.search(r"the driver waiting for results ([0-9.]+)%, in MPI calls ([0-9.]+)% of ([0-9.]+) s", err)
cpu = re.search(r"the driver: ([0-9.]+) ms of CPU per trial", out)
print(f"sleep {t:g} s: {n / secs:.0f} trials/s sustained (64 workers could do {ideal}/s); "
      f"workers sleeping {busy.group(1) if busy else '?'}% of the loop; "
      f"the driver: {cpu.group(1)} ms of CPU per trial, waiting for results {r0.group(1)}% "
      f"and in MPI calls {r0.group(2)}% of rank 0's {r0.group(3)} s")
EOF
done
fi
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT"
