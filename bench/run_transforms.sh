#!/usr/bin/env bash
# run_transforms.sh - what pruning and low-rank do to each reference model, and
# what statistics repair is worth: test accuracy and size_bytes of a few policies
# with repair on (the default) and off, from `presso eval --policy --json`.
# Policies per model (written to a temporary folder):
#   struct50   50% structured pruning of one middle conv (the test suite's layer)
#   unstr50    50% unstructured pruning of every layer but the first and last
#   w4rank50   W4A8 (first and last layer 8 bits) with rank 0.5 everywhere
#   w4unstr30  W4A8 with bias correction and 30% unstructured pruning
# usage: bash bench/run_transforms.sh [model ...]   (default: lenet mobilenetv2 resnet)
set -euo pipefail
cd "$(dirname "$0")/.."
NCPU=$(nproc --all)
if [ ! -x build/presso ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$NCPU" --target presso >/dev/null
fi
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(lenet mobilenetv2 resnet)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

middle_of() {
  case "$1" in
    lenet) echo "/conv2/Conv" ;;
    mobilenetv2) echo "/blocks/blocks.4/body/body.0/body.0.0/Conv" ;;
    resnet) echo "/layers/layers.2/conv1/Conv" ;;
  esac
}

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $NCPU CPUs"
printf '| model | policy | FP32 acc | repair on: acc | size_bytes | ratio | repair off: acc |\n'
printf '|---|---|---:|---:|---:|---:|---:|\n'
for m in "${models[@]}"; do
  cfg="$tmp/$m.json"
  # the shipped config with two threads, its model path made absolute
  sed -e "s|\"\\.\\./models/|\"$PWD/models/|" -e 's|"threads": 1|"threads": 2|' "configs/$m.json" > "$cfg"
  sed -e 's|^  "eval"|  "quant": { "repair": false },\n  "eval"|' "$cfg" > "$tmp/$m-norepair.json"
  first=$(build/presso policy --config "$cfg" | /usr/bin/env python3 -c 'import json,sys; l=list(json.load(sys.stdin)["layers"]); print(l[0]); print(l[-1])')
  f=$(echo "$first" | sed -n 1p); l=$(echo "$first" | sed -n 2p)
  mid=$(middle_of "$m")
  echo "{\"layers\": {\"$mid\": {\"prune\": 0.5, \"prune_kind\": \"structured\"}}}" > "$tmp/struct50.json"
  echo "{\"default\": {\"prune\": 0.5}, \"layers\": {\"$f\": {\"prune\": 0}, \"$l\": {\"prune\": 0}}}" > "$tmp/unstr50.json"
  echo "{\"default\": {\"bits\": 4, \"rank\": 0.5}, \"layers\": {\"$f\": {\"bits\": 8}, \"$l\": {\"bits\": 8}}}" > "$tmp/w4rank50.json"
  echo "{\"default\": {\"bits\": 4, \"bias_correction\": true, \"prune\": 0.3}, \"layers\": {\"$f\": {\"bits\": 8, \"prune\": 0}, \"$l\": {\"bits\": 8, \"prune\": 0}}}" > "$tmp/w4unstr30.json"
  for p in struct50 unstr50 w4rank50 w4unstr30; do
    on=$(build/presso eval --config "$cfg" --policy "$tmp/$p.json" --json)
    off=$(build/presso eval --config "$tmp/$m-norepair.json" --policy "$tmp/$p.json" --json)
    python3 - "$m" "$p" "$on" "$off" <<'EOF'
import json, sys
m, p, on, off = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
q, f = on["quantized"], on["fp32"]
print(f"| {m} | {p} | {f['accuracy']:.2f} | {q['accuracy']:.2f} | {int(q['size_bytes'])} | "
      f"{q['compression_ratio']:.2f}x | {off['quantized']['accuracy']:.2f} |")
EOF
  done
done
