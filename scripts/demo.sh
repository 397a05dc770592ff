#!/usr/bin/env bash
# demo.sh - the README's main command: installs what is missing, builds presso
# and runs a short search on the shipped default: per-layer bit widths and
# bias correction for the MobileNetV2-style reference model on Fashion-MNIST
# (configs/demo.json: hybrid strategy, 300 trials on 1,000 validation images,
# every core), then its accuracy/size front, the smallest policy within 0.5
# point of FP32 on validation exported as JSON (the margin covers the
# validation-to-test gap of 1,000 images), that policy evaluated on the
# test set, and the study's report (build/demo-report.html) to open in a
# browser.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPRESSO_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
rm -f build/demo.db build/demo.db-wal build/demo.db-shm
set -x
build/presso search --config configs/demo.json --db build/demo.db
build/presso pareto --db build/demo.db --study demo --objectives accuracy,size
build/presso export --db build/demo.db --study demo \
  --pick 'min size_kb where accuracy_drop <= 0.5' -o build/demo-best.json
build/presso eval --config configs/demo.json --policy build/demo-best.json
build/presso report --db build/demo.db --study demo -o build/demo-report.html
