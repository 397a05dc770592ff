#!/usr/bin/env bash
# run_search.sh - how good and how fast is `presso search`?
#
#  1. quality: the hypervolume (accuracy x size, as a percentage of the box
#     between the reference point - chance accuracy, FP32 size - and the ideal
#     one) reached after B1 and B2 trials by each strategy, over several seeds,
#     on each model. One run of B2 trials per (model, strategy, seed); the value
#     at B1 is that run's first B1 trials (`presso pareto --where 'trial <= B1'`),
#     which is what a run with budget B1 would have done (same seed, same batches).
#     With them, the share of distinct models among the trials (goal 100 %: a
#     trial is always a new model): distinct policy hashes - presso's identity
#     of the model a policy makes, its canonical form (transform.h) - and, as a
#     check that does not rest on that identity, distinct (accuracy, size,
#     BOPs) triples (two models may share them, so this one can be lower).
#  2. speed: trials per minute with 1 and 2 workers (hybrid, one model), and the
#     parallel efficiency rate(2) / (2 rate(1)); the share of a trial spent
#     outside inference (bench_search: quantized model build vs the accuracy
#     pass, and the driver's own time per trial).
#
# Usage: bash bench/run_search.sh [BUILD_DIR]    (environment knobs below)
#   MODELS="lenet mobilenetv2" (MODELS= for the speed part only)  SEEDS="1 2 3 4 5"  B1=100  B2=300
#   VALID_lenet=1000  VALID_mobilenetv2=500  WORKERS=2  OUT=bench/results_search.txt
#   SPACE=bits (the config's default space) or SPACE=full (bits 1..8, pruning
#   0/0.25/0.5 unstructured or structured, rank 0.25/0.5/1: where policies that
#   make one model are common)
#   SENSITIVITY=1: "search.sensitivity": true (per-layer sensitivity seeds the
#   first generation and the bandits' priors; search/README.md, "Sensitivity")
#   FIDELITIES="0 250": one run per value and seed: 0 single fidelity, N
#   "search.fidelity": {"images": N, "confidence": FIDELITY_CONFIDENCE (0.8)}
#   (multi-fidelity; search/README.md); the tables then have a row per
#   strategy and fidelity, with the full-fidelity trials and trials/min
#   TIME_LIMIT=60s: every run gets --time-limit (and a budget of B2_TIME,
#   default 1000000, trials): equal wall time instead of equal trials; the
#   HV columns are then of the first B1 trials and of the whole run
# Results go to $OUT (a table per model, then the speed figures) and the raw
# numbers to $OUT.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PRESSO=$BUILD/presso
MODELS=${MODELS-"lenet mobilenetv2"}
STRATEGIES=${STRATEGIES:-"random bandit evolution hybrid"}
SEEDS=${SEEDS:-"1 2 3 4 5"}
B1=${B1:-100}
B2=${B2:-300}
WORKERS=${WORKERS:-2}
OUT=${OUT:-bench/results_search.txt}
SPEED_TRIALS=${SPEED_TRIALS:-48}
SPACE=${SPACE:-bits}
SENSITIVITY=${SENSITIVITY:-0}
FIDELITIES=${FIDELITIES:-0}
FIDELITY_CONFIDENCE=${FIDELITY_CONFIDENCE:-0.8}
TIME_LIMIT=${TIME_LIMIT:-}
if [ -n "$TIME_LIMIT" ]; then B2=${B2_TIME:-1000000}; fi
WORK=$(mktemp -d /tmp/presso-bench-search-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

[ -x "$PRESSO" ] || { echo "build presso first: cmake --build $BUILD" >&2; exit 2; }

valid_for() { local v="VALID_$1"; echo "${!v:-$([ "$1" = lenet ] && echo 1000 || echo 500)}"; }

# config MODEL STRATEGY SEED [FIDELITY] -> path
config() {
	local model=$1 strategy=$2 seed=$3 fid=${4:-0} valid
	valid=$(valid_for "$model")
	local name="$model-$strategy-$seed" fidelity=""
	if [ "$fid" != 0 ]; then
		name="$name-f$fid"
		fidelity=", \"fidelity\": { \"images\": $fid, \"confidence\": $FIDELITY_CONFIDENCE }"
	fi
	local path="$WORK/$name.json" space=""
	[ "$SPACE" = full ] && space='"space": { "default": { "bits": [1, 2, 3, 4, 5, 6, 7, 8], "prune": [0, 0.25, 0.5], "prune_kind": ["unstructured", "structured"], "rank": [0.25, 0.5, 1] } },'
	cat >"$path" <<EOF
{
  "name": "$name",
  "model": "$PWD/models/$model.onnx",
  "data": {
    "format": "idx",
    "train_images": "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
    "train_labels": "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz",
    "test_images": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
    "test_labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
    "normalize": { "scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530] },
    "splits": { "seed": 1, "calibration": 500, "validation": $valid, "test": 1000 }
  },
  $space
  "objectives": { "maximize": "accuracy", "minimize": ["size"] },
  "search": { "strategy": "$strategy", "seed": $seed$([ "$SENSITIVITY" = 1 ] && echo ', "sensitivity": true')$fidelity }
}
EOF
	echo "$path"
}

# hv DB STUDY MAXTRIAL -> hypervolume ratio in percent
hv() {
	"$PRESSO" pareto --db "$1" --study "$2" --where "trial <= $3" --format json |
		python3 -c 'import json,sys; print("%.4f" % (100*json.load(sys.stdin)["hypervolume"]["ratio"]))'
}

# distinct DB STUDY -> "trials distinct_hashes distinct_metrics full_fidelity
# search_seconds" (trials that count: complete or failed, not lost; the
# seconds from the first trial's start to the last one's end)
distinct() {
	python3 - "$1" "$2" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
q = ("select count(*), count(distinct policy_sha256), "
     "count(distinct accuracy || ' ' || size_bytes || ' ' || bops), "
     "coalesce(sum(state = 'complete' and fidelity = 'full'), 0), "
     "round(max(ended_at) - min(started_at), 1) "
     "from trials t join studies s on s.id = t.study_id where s.name = ? and not t.lost")
print(*db.execute(q, (sys.argv[2],)).fetchone())
EOF
}

echo "model,strategy,fidelity,seed,hv_b1,hv_b2,seconds,trials,distinct,distinct_metrics,full_trials,search_seconds" >"$OUT.csv"
{
echo "# presso search benchmark ($(date -u +%Y-%m-%d), $(nproc) cores, $WORKERS workers)"
echo "# hypervolume of the accuracy x size front, % of the reference box;"
echo "# mean (min..max) over seeds $SEEDS; validation split per model below; space: $SPACE; sensitivity: $SENSITIVITY"
echo "# fidelities: $FIDELITIES (confidence $FIDELITY_CONFIDENCE); time limit: ${TIME_LIMIT:-none}; trials: B1=$B1 B2=$B2; validation: lenet $(valid_for lenet), mobilenetv2 $(valid_for mobilenetv2)"
} >"$OUT"

for model in $MODELS; do
	db="$WORK/$model.db"
	for strategy in $STRATEGIES; do
		for seed in $SEEDS; do
		# the fidelities of one seed back to back: they share the machine's load
		for fid in $FIDELITIES; do
			cfg=$(config "$model" "$strategy" "$seed" "$fid")
			t0=$(date +%s.%N)
			"$PRESSO" search --quiet --config "$cfg" --db "$db" --workers "$WORKERS" \
				--max-trials "$B2" ${TIME_LIMIT:+--time-limit "$TIME_LIMIT"} \
				>/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
			t1=$(date +%s.%N)
			study="$model-$strategy-$seed"
			if [ "$fid" != 0 ]; then study="$study-f$fid"; fi
			a=$(hv "$db" "$study" "$B1")
			b=$(hv "$db" "$study" "$B2")
			secs=$(python3 -c "print('%.1f' % ($t1 - $t0))")
			read -r n nd nm nf ss < <(distinct "$db" "$study")
			echo "$model,$strategy,$fid,$seed,$a,$b,$secs,$n,$nd,$nm,$nf,$ss" | tee -a "$OUT.csv" >&2
		done
		done
	done
done

python3 - "$OUT.csv" "$B1" "$B2" >>"$OUT" <<'EOF'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1])))
b1, b2 = sys.argv[2], sys.argv[3]
by = collections.defaultdict(list)
for r in rows:
    by[(r["model"], r["strategy"], r["fidelity"])].append(r)
fids = sorted({r["fidelity"] for r in rows}, key=int)
models = sorted({r["model"] for r in rows}, key=lambda m: [r["model"] for r in rows].index(m))
for m in models:
    print(f"\n## {m}\n")
    print(f"| strategy | fidelity | HV @ {b1} trials | HV @ {b2} trials | s per run | trials | full-fidelity trials | trials/min | full-fidelity/min |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in ["random", "bandit", "evolution", "hybrid"]:
      for f in fids:
        rs = by.get((m, s, f))
        if not rs:
            continue
        def stat(k):
            v = [float(r[k]) for r in rs]
            return f"{sum(v)/len(v):.2f} ({min(v):.2f}..{max(v):.2f})"
        def mean(k):
            return sum(float(r[k]) for r in rs) / len(rs)
        def per_min(k):
            return sum(60 * float(r[k]) / float(r["search_seconds"]) for r in rs) / len(rs)
        label = "single" if f == "0" else f + " images first"
        print(f"| {s} | {label} | {stat('hv_b1')} | {stat('hv_b2')} | {mean('seconds'):.0f} | "
              f"{mean('trials'):.0f} | {mean('full_trials'):.0f} | {per_min('trials'):.0f} | "
              f"{per_min('full_trials'):.0f} |")
    rs = [r for r in rows if r["model"] == m]
    n = sum(int(r["trials"]) for r in rs)
    nd = sum(int(r["distinct"]) for r in rs)
    nm = sum(int(r["distinct_metrics"]) for r in rs)
    print(f"\ndistinct models among the trials: {nd} of {n} ({100*nd/n:.1f} %) by policy hash; "
          f"{nm} ({100*nm/n:.1f} %) by (accuracy, size, BOPs)")
EOF

# --- speed: trials/min with 1 and 2 workers -------------------------------------
SPEED_MODEL=${SPEED_MODEL:-mobilenetv2}
rate() {
	local workers=$1 cfg out
	cfg=$(config "$SPEED_MODEL" hybrid 1)
	out=$("$PRESSO" search --quiet --config "$cfg" --db "$WORK/speed-$workers.db" \
		--workers "$workers" --max-trials "$SPEED_TRIALS" 2>/dev/null)
	echo "$out" | sed -n 's/.* \([0-9.]*\) trials\/min$/\1/p'
}
r1=$(rate 1)
r2=$(rate 2)
{
echo
echo "## speed ($SPEED_MODEL, validation $(valid_for "$SPEED_MODEL") images, $SPEED_TRIALS trials, hybrid)"
echo
python3 -c "r1, r2 = $r1, $r2; print(f'trials/min: 1 worker {r1:.1f}, 2 workers {r2:.1f}; parallel efficiency {100*r2/(2*r1):.0f} %')"
if [ -x "$BUILD/bench_search" ]; then
	# the build/run split of bits-only trials (a full-space trial may fail by design)
	"$BUILD/bench_search" "$(SPACE=bits config "$SPEED_MODEL" hybrid 1)"
fi
} | tee -a "$OUT"
