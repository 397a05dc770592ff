#!/usr/bin/env bash
# compare_builds.sh - per-step time of one model in two builds of presso, for
# before/after comparisons of engine changes on a shared, noisy machine: runs
# bench_profile (batch 8, 60 runs) from each build ROUNDS times, alternating,
# and prints per step (matched by op, node and output, so a step one build
# fuses away shows as "-") the minimum over the rounds in each build and their ratio.
# usage: [ARGS_A=...] [ARGS_B=...] bash bench/compare_builds.sh MODEL ROUNDS BUILD_A BUILD_B
#   ARGS_A / ARGS_B: more bench_profile options for A / B, e.g. to compare the
#   requantization forms in one build: ARGS_A="--requant q31" ... build build
#   e.g. git worktree add /tmp/old HEAD~3 && cmake -S /tmp/old -B /tmp/build-old \
#        -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/build-old --target bench_profile
#        bash bench/compare_builds.sh mobilenetv2 3 /tmp/build-old build
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 4 ] || { sed -n 2,12p "$0"; exit 2; }
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
    # follow us/image (1 in older builds, 4 since the efficiency columns).
    # A step is keyed by its op, node and output (and which occurrence of
    # them it is), so that two builds whose step lists differ (a step fused
    # away) still line up.
    best, order, tail, seen = collections.defaultdict(lambda: float('inf')), [], 1, None
    for line in open(path):
        p = line.split()
        if p[0] == 'step':
            tail = len(p) - p.index('us/image') - 1
            seen = collections.Counter()
            continue
        us, name = float(p[-tail - 1]), ' '.join(p[1:-tail - 1])
        key = (name, seen[name])
        seen[name] += 1
        if key not in best:
            order.append(key)
        best[key] = min(best[key], us)
    return best, order
a, order_a = load(sys.argv[1])
b, order_b = load(sys.argv[2])
order = order_a + [k for k in order_b if k not in a]
fmt = lambda d, k: f"{d[k]:8.3f}" if k in d else f"{'-':>8s}"
print(f"{'step':>4} {'op node output':58s} {'A us':>8} {'B us':>8} {'A/B':>6}")
for i, k in enumerate(order):
    r = f"{a[k] / b[k]:6.2f}" if k in a and k in b and b[k] else f"{'':6s}"
    print(f"{i:4d} {k[0][:58]:58s} {fmt(a, k)} {fmt(b, k)} {r}")
ta, tb = sum(a.values()), sum(b.values())
print(f"{'':4s} {'total (sum of per-step minima, us/image)':58s} {ta:8.2f} {tb:8.2f} {ta / tb:6.2f}")
print(f"# A = {sys.argv[3]} {os.environ.get('ARGS_A', '')}, B = {sys.argv[4]} {os.environ.get('ARGS_B', '')}")
print("# steps are matched by op, node and output; '-': the step is not in that build")
PY
