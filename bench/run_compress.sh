#!/usr/bin/env bash
# run_compress.sh - `presso compress -o X.onnx` end to end, per shipped model and
# policy: write the QDQ model, check it with onnx.checker, run it in ONNX Runtime
# (onnxruntime-node, one thread) on the 10,000 test images with presso's
# normalisation, and compare with presso's own INT8 engine on the same model:
# test accuracy (target |delta| <= 0.2 points) and images/s at batch 1 and 64
# (each the best of BENCH_ROUNDS rounds of BENCH_SECONDS; defaults 3 and 3).
# Then a markdown table for bench/RESULTS.md.
# usage: bash bench/run_compress.sh [MODEL ...]   (default: lenet mlp mobilenetv2 resnet)
#   POLICIES="int8 int4 path/to/policy.json" overrides the policy list (a file's
#   name without .json names its rows; {m} in a path stands for the model; a
#   file that does not exist for a model, e.g. configs/mlp-w4-rank50.json, is
#   skipped).
# Needs python3-onnx (Debian; run by /usr/bin/python3) and npm; onnxruntime-node
# goes into bench/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(lenet mlp mobilenetv2 resnet)
# shellcheck disable=SC2206
DEFAULT_POLICIES='int8 int4 configs/{m}-w4-rank50.json'
# shellcheck disable=SC2206
POLICIES=(${POLICIES:-$DEFAULT_POLICIES})
export BENCH_SECONDS=${BENCH_SECONDS:-3} BENCH_ROUNDS=${BENCH_ROUNDS:-3}
export OMP_NUM_THREADS=1
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc --all)" --target presso bench_compressed >/dev/null
if [ ! -e bench/node_modules/onnxruntime-node ]; then
  (cd bench && npm install --no-save --ignore-scripts onnxruntime-node >/dev/null 2>&1)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/lines"
for m in "${MODELS[@]}"; do
  for p in "${POLICIES[@]}"; do
    pat='{m}'
    p=${p//"$pat"/$m}
    if [[ $p == *.json && ! -e $p ]]; then
      echo "# $m: no $p, skipped" >&2
      continue
    fi
    pname=$(basename "$p" .json)
    pname=${pname#"$m-"}
    onnx="$work/$m-$pname.onnx"
    build/presso compress --config "configs/$m.json" --policy "$p" -o "$onnx" --quiet \
      > "$work/compress.txt"
    acc=$(sed -n 's/^compressed: *\([0-9.]*\)% top-1.*/\1/p' "$work/compress.txt")
    size=$(sed -n 's/^compressed:.* params, \([0-9]*\) bytes.*/\1/p' "$work/compress.txt")
    fbytes=$(stat -c %s "$onnx")
    echo "presso-accuracy $m $pname $acc $size $fbytes" | tee -a "$out"
    /usr/bin/python3 bench/onnx_check.py "$onnx" | sed "s/^/$m $pname /" | tee -a "$out"
    (cd bench && node compress_ort.js "../configs/$m.json" "$onnx" 1 64) \
      | sed "s/ $m-$pname.onnx / $m $pname /" | tee -a "$out"
    build/bench_compressed "configs/$m.json" "$p" --seconds "$BENCH_SECONDS" --rounds "$BENCH_ROUNDS" 1 64 \
      | sed "s/ $m.onnx / $m $pname /" | tee -a "$out"
  done
done
echo
echo "date: $(date -u +%Y-%m-%d); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); one thread"
/usr/bin/python3 - "$out" <<'PY'
import sys, collections
rows = collections.OrderedDict()
for line in open(sys.argv[1]):
    p = line.split()
    if p[0] == 'presso-accuracy':
        r = rows.setdefault((p[1], p[2]), {})
        r['acc'], r['size'], r['file'] = float(p[3]), int(p[4]), int(p[5])
    elif p[0] == 'ort-accuracy':
        rows.setdefault((p[1], p[2]), {})['ort_acc'] = float(p[3])
    elif len(p) >= 3 and p[2] == 'onnx-check':
        rows.setdefault((p[0], p[1]), {})['check'] = p[4]
    elif p[0] in ('presso-int8', 'onnxruntime-qdq') and len(p) == 6:
        rows.setdefault((p[1], p[2]), {})[(p[0], int(p[4]))] = float(p[5])
print('| model | policy | size_bytes | .onnx bytes | onnx.checker | presso INT8 acc % | ORT acc % | delta | '
      'presso b1 img/s | ORT b1 img/s | presso b64 img/s | ORT b64 img/s |')
print('|' + '---|' * 12)
for (m, pol), r in rows.items():
    def ips(k, b):
        v = r.get((k, b))
        return f"{v:.0f}" if v is not None else 'n/a'
    delta = f"{r['ort_acc'] - r['acc']:+.2f}" if 'ort_acc' in r and 'acc' in r else 'n/a'
    print(f"| {m} | {pol} | {r.get('size', 'n/a')} | {r.get('file', 'n/a')} | {r.get('check', 'FAILED')} | "
          f"{r.get('acc', float('nan')):.2f} | {r.get('ort_acc', float('nan')):.2f} | {delta} | "
          f"{ips('presso-int8', 1)} | {ips('onnxruntime-qdq', 1)} | "
          f"{ips('presso-int8', 64)} | {ips('onnxruntime-qdq', 64)} |")
PY
