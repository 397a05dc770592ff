#!/usr/bin/env bash
# run_rounding.sh - what data-aware rounding (GPTQ, `"quant": {"rounding": "gptq"}`,
# the default) is worth against rounding to nearest: test accuracy of uniform
# low-bit policies (first and last layer 8 bits) on each reference model, from
# `presso eval --policy --json` with the shipped config and only the rounding
# changed.
# usage: bash bench/run_rounding.sh [model ...]   (default: lenet mobilenetv2 resnet)
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

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $NCPU CPUs"
printf '| model | policy | FP32 acc | nearest acc | gptq acc | size_bytes | ratio |\n'
printf '|---|---|---:|---:|---:|---:|---:|\n'
for m in "${models[@]}"; do
  # the shipped config with two threads, its model path made absolute
  sed -e "s|\"\\.\\./models/|\"$PWD/models/|" -e 's|"threads": 1|"threads": 2|' "configs/$m.json" > "$tmp/$m.json"
  for r in nearest gptq; do
    sed -e "s|^  \"eval\"|  \"quant\": { \"rounding\": \"$r\" },\n  \"eval\"|" "$tmp/$m.json" > "$tmp/$m-$r.json"
  done
  ends=$(build/presso policy --config "$tmp/$m.json" | /usr/bin/env python3 -c 'import json,sys; l=list(json.load(sys.stdin)["layers"]); print(l[0]); print(l[-1])')
  f=$(echo "$ends" | sed -n 1p); l=$(echo "$ends" | sed -n 2p)
  for b in 4 3 2; do
    echo "{\"default\": {\"bits\": $b}, \"layers\": {\"$f\": {\"bits\": 8}, \"$l\": {\"bits\": 8}}}" > "$tmp/w$b.json"
    near=$(build/presso eval --config "$tmp/$m-nearest.json" --policy "$tmp/w$b.json" --json)
    gptq=$(build/presso eval --config "$tmp/$m-gptq.json" --policy "$tmp/w$b.json" --json)
    /usr/bin/env python3 - "$m" "w$b" "$near" "$gptq" <<'EOF'
import json, sys
m, p, n, g = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
q, f = g["quantized"], g["fp32"]
print(f"| {m} | {p} | {f['accuracy']:.2f} | {n['quantized']['accuracy']:.2f} | {q['accuracy']:.2f} | "
      f"{int(q['size_bytes'])} | {q['compression_ratio']:.2f}x |")
EOF
  done
done
