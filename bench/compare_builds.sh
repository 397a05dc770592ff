#!/usr/bin/env bash
# compare_builds.sh - per-step time of one model in two builds of presso, for
# before/after comparisons of engine changes on a shared, noisy machine: runs
# bench_profile (batch 8, 60 runs) from each build ROUNDS times, alternating,
# and prints per step the minimum over the rounds in each build and their ratio.
# usage: [ARGS_A=...] [ARGS_B=...] bash bench/compare_builds.sh MODEL ROUNDS BUILD_A BUILD_B
#   ARGS_A / ARGS_B: more bench_profile options for A / B, e.g. to compare the
#   requantization forms in one build: ARGS_A="--requant q31" ... build build
#   e.g. git worktree add /tmp/old HEAD~3 && cmake -S /tmp/old -B /tmp/build-old \
#        -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/build-old --target bench_profile
#        bash bench/compare_builds.sh mobilenetv2 3 /tmp/build-old build
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 4 ] || { sed -n 2,11p "$0"; exit 2; }
model=$1 rounds=$2 a=$3 b=$4
export OMP_NUM_THREADS=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for _ in $(seq "$rounds"); do
  # shellcheck disable=SC2086
  "$a/bench_profile" "models/$model.onnx" --batch 8 --runs 60 ${ARGS_A:-} | grep -E '^(step|[0-9])' >> "$out/a"
  # shellcheck disable=SC2086
  "$b/bench_profile" "models/$model.onnx" --batch 8 --runs 60 ${ARGS_B:-} | grep -E '^(step|[0-9])' >> "$out/b"
done
/usr/bin/python3 - "$out/a" "$out/b" "$a" "$b" <<'PY'
import collections, os, sys
def load(path):
    # columns are found from the end of the line: the header says how many
    # follow us/image (1 in older builds, 4 since the efficiency columns)
    best, name, tail = collections.defaultdict(lambda: float('inf')), {}, 1
    for line in open(path):
        p = line.split()
        if p[0] == 'step':
            tail = len(p) - p.index('us/image') - 1
            continue
        step, us = int(p[0]), float(p[-tail - 1])
        best[step] = min(best[step], us)
        name[step] = ' '.join(p[1:-tail - 1])[:58]
    return best, name
a, name = load(sys.argv[1])
b, _ = load(sys.argv[2])
print(f"{'step':>4} {'op node output':58s} {'A us':>8} {'B us':>8} {'A/B':>6}")
for k in sorted(a):
    print(f"{k:4d} {name[k]:58s} {a[k]:8.3f} {b[k]:8.3f} {a[k] / b[k] if b[k] else 0:6.2f}")
ta, tb = sum(a.values()), sum(b.values())
print(f"{'':4s} {'total (sum of per-step minima, us/image)':58s} {ta:8.2f} {tb:8.2f} {ta / tb:6.2f}")
print(f"# A = {sys.argv[3]} {os.environ.get('ARGS_A', '')}, B = {sys.argv[4]} {os.environ.get('ARGS_B', '')}")
PY
