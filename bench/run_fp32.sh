#!/usr/bin/env bash
# run_fp32.sh - FP32 images/s of each reference model at batch 1 and 64 on one
# thread: presso's reference engine, PyTorch (TorchScript, frozen) and ONNX Runtime
# (onnxruntime-node, CPU provider), one after the other in the same run.
# usage: bash bench/run_fp32.sh [MODEL ...]     (default: lenet mobilenetv2 resnet)
# Needs: python3-torch (Debian) and npm; installs onnxruntime-node into bench/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(lenet mobilenetv2 resnet)
export BENCH_SECONDS=${BENCH_SECONDS:-3}
export OMP_NUM_THREADS=1

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bench_fp32 >/dev/null
if [ ! -d bench/node_modules/onnxruntime-node ]; then
  (cd bench && npm install --no-save --ignore-scripts onnxruntime-node >/dev/null 2>&1)
fi

echo "# $(date -u +%Y-%m-%d) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for m in "${MODELS[@]}"; do
  build/bench_fp32 "models/$m.onnx" 1 64 --seconds "$BENCH_SECONDS"
  /usr/bin/python3 bench/fp32_torch.py "$m" 1 64
  (cd bench && node fp32_ort.js "../models/$m.onnx" 1 64)
done
