#!/usr/bin/env bash
# valgrind_check.sh - runs `presso info`, `eval`, a short `search`, `pareto`
# (with --plot too), `report`, `export` and `compress` under valgrind's memcheck on the shipped LeNet with small splits and
# fails on any invalid read or write, use of uninitialised memory, or memory
# definitely or indirectly lost. ("Possibly lost" blocks are the OpenMP runtime's
# worker threads, alive until exit: not counted.) Called by scripts/test.sh.
#
# Usage: bash scripts/valgrind_check.sh [BUILD_DIR]   (default: build; a
# non-sanitizer build: valgrind and AddressSanitizer do not mix)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
PRESSO="$PWD/$BUILD/presso"
FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -x "$PRESSO" ]; then
	echo "valgrind_check: $PRESSO is not built" >&2
	exit 2
fi
if ! command -v valgrind >/dev/null; then
	echo "valgrind_check: valgrind is not installed (bash scripts/setup.sh)" >&2
	exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/vg.json" <<EOF
{
  "name": "vg",
  "model": "$PWD/models/lenet.onnx",
  "data": {
    "train_images": "$FMNIST/train-images-idx3-ubyte.gz",
    "train_labels": "$FMNIST/train-labels-idx1-ubyte.gz",
    "test_images": "$FMNIST/t10k-images-idx3-ubyte.gz",
    "test_labels": "$FMNIST/t10k-labels-idx1-ubyte.gz",
    "normalize": { "scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530] },
    "splits": { "seed": 1, "calibration": 64, "validation": 100, "test": 100 }
  },
  "space": { "default": { "bits": [2, 4, 8], "prune": [0, 0.5], "rank": [0.5, 1] } },
  "search": { "max_trials": 6, "seed": 3 }
}
EOF
VG=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
	--show-leak-kinds=definite,indirect -q)
status=0
check() {
	local name=$1
	shift
	if "${VG[@]}" "$@" >"$work/$name.out" 2>"$work/$name.err"; then
		echo "valgrind_check: $name clean"
	else
		echo "valgrind_check: $name failed (exit $?):" >&2
		grep -v '^presso' "$work/$name.err" >&2 || true
		status=1
	fi
}
cd "$work"
check info "$PRESSO" info --model "$OLDPWD/models/lenet.onnx"
check eval "$PRESSO" eval --config vg.json --policy int4 --split valid
check search "$PRESSO" search --config vg.json --db runs.db --workers 2 --quiet
check pareto "$PRESSO" pareto --db runs.db --study vg
check pareto-plot "$PRESSO" pareto --db runs.db --study vg --plot
check report "$PRESSO" report --db runs.db --study vg -o report.html --svg front.svg
check export "$PRESSO" export --db runs.db --study vg --pick 'max accuracy' -o best.json
check compress "$PRESSO" compress --config vg.json --policy best.json --split valid -o best.presso
check eval-presso "$PRESSO" eval --config vg.json --model best.presso --split valid
exit $status
