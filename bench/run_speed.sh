#!/usr/bin/env bash
# run_speed.sh - images/s at batch 1 and 64 on one thread, per shipped model, for
# presso INT8, presso FP32, ONNX Runtime FP32 (onnxruntime-node), PyTorch FP32
# (TorchScript, frozen) and PyTorch INT8 (eager PTQ, onednn), one after the
# other in the same run, then a markdown table with presso INT8's ratios.
# usage: bash bench/run_speed.sh [MODEL ...]   (default: lenet mlp mobilenetv2 resnet mobilenetv3 vit lstm)
# Needs python3-torch (Debian) and npm; onnxruntime-node goes into bench/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(lenet mlp mobilenetv2 resnet mobilenetv3 vit lstm)
# every column: the best of BENCH_REPEAT windows of BENCH_SECONDS each, after a warm-up
export BENCH_SECONDS=${BENCH_SECONDS:-1}
export BENCH_REPEAT=${BENCH_REPEAT:-3}
export OMP_NUM_THREADS=1
unset BENCH_CLOCK  # wall time: bench_int8, PyTorch and ONNX Runtime alike
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc --all)" --target bench_int8 >/dev/null
if [ ! -e bench/node_modules/onnxruntime-node ]; then
  (cd bench && npm install --no-save --ignore-scripts onnxruntime-node >/dev/null 2>&1)
fi
out=$(mktemp)
for m in "${MODELS[@]}"; do
  build/bench_int8 "models/$m.onnx" --seconds "$BENCH_SECONDS" --repeat "$BENCH_REPEAT" 1 64 | tee -a "$out"
  (cd bench && node fp32_ort.js "../models/$m.onnx" 1 64) | tee -a "$out"
  /usr/bin/python3 bench/fp32_torch.py "$m" 1 64 2>/dev/null | tee -a "$out"
  /usr/bin/python3 bench/ptq_compare.py --models "$m" --presso /bin/false \
    --seconds "$BENCH_SECONDS" --repeat "$BENCH_REPEAT" 2>/dev/null | grep '^pytorch-int8' | tee -a "$out" || true
done
echo
echo "date: $(date -u +%Y-%m-%d); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); one thread"
/usr/bin/python3 - "$out" <<'PY'
import sys, collections
rows = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 5 and p[2] == 'batch':
        rows[(p[1].replace('.onnx', ''), int(p[3]))][p[0]] = float(p[4])
cols = ['presso-int8', 'presso-fp32', 'onnxruntime', 'pytorch', 'pytorch-int8']
print('| model | batch | ' + ' | '.join(cols) + ' | int8/fp32 | int8/ORT | int8/PyTorch-int8 |')
print('|' + '---|' * (len(cols) + 5))
for (m, b), r in sorted(rows.items()):
    def ratio(k):
        return f"{r['presso-int8'] / r[k]:.2f}x" if k in r and 'presso-int8' in r else 'n/a'
    vals = [f"{r[c]:.0f}" if c in r else 'n/a' for c in cols]
    print(f"| {m} | {b} | " + ' | '.join(vals) + f" | {ratio('presso-fp32')} | {ratio('onnxruntime')} | {ratio('pytorch-int8')} |")
PY
rm -f "$out"
