#!/usr/bin/env bash
# run_ptq.sh - INT8 post-training quantization accuracy of each reference model:
# PyTorch FP32, PyTorch eager-mode PTQ (onednn, per-channel weights) and presso's
# `eval --policy int8`, in one run, plus PyTorch INT8 images/s at batch 1 and 64 on
# one thread (lines `pytorch-int8 <model> batch <b> <images/s>`).
# Builds presso (Release, in build/) first if build/presso is missing; if that build
# fails, the PyTorch columns are still measured and presso's read n/a.
# usage: bash bench/run_ptq.sh [ptq_compare.py options, e.g. --models lenet,mobilenetv2]
# Needs: Debian's python3-torch and python3-onnx (run by /usr/bin/python3).
set -uo pipefail
cd "$(dirname "$0")/.."
NCPU=$(nproc --all)   # before OMP_NUM_THREADS=1: GNU nproc honours it
export OMP_NUM_THREADS=1

if [ ! -x build/presso ]; then
  echo "# building presso (Release) in build/" >&2
  if ! { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null &&
         cmake --build build -j "$NCPU" --target presso >/dev/null; }; then
    echo "# presso failed to build: its columns will read n/a" >&2
  fi
fi

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $NCPU CPUs"
exec /usr/bin/python3 bench/ptq_compare.py "$@"
