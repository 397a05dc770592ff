#!/usr/bin/env bash
# demo.sh - the README's main command: installs what is missing, builds presso
# and runs it on the shipped default: the MobileNetV2-style reference model on
# Fashion-MNIST: its layers, then FP32 and W8A8 accuracy on the 10,000 test
# images with size, BOPs and latency.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPRESSO_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
set -x
build/presso info --model models/mobilenetv2.onnx
build/presso eval --config configs/mobilenetv2.json --policy int8
