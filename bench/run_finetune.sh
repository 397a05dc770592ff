#!/usr/bin/env bash
# run_finetune.sh - fine-tuning the shipped MobileNetV2-style model: PTQ against
# quantization-aware training with distillation, and training speed against
# PyTorch.
#
#   bash bench/run_finetune.sh            # both policies, then the speed table
#   EPOCHS=3 bash bench/run_finetune.sh   # every policy for 3 epochs
#   ONLY=speed bash bench/run_finetune.sh # the speed table alone
#   POLICIES=mobilenetv2-16x bash bench/run_finetune.sh   # one policy
#
# Policies (bench/policies/): mobilenetv2-16x.json (ternary everywhere, binary
# for the five largest 1x1 layers, stem and classifier at 8 bits: 16.4x smaller
# than FP32) and mobilenetv2-ternary.json (ternary middle layers, stem and
# classifier at 8 bits: 12.2x). Each is fine-tuned with `presso finetune` for
# EPOCHS epochs (default: 6 for the 16x policy, 2 for the ternary one, as in
# bench/RESULTS.md) over the 54,000 training images outside the validation split
# (settings: the "finetune" section written below) and scored on the 10,000
# test images; the output lists PTQ (the config's default GPTQ rounding) and
# fine-tuned accuracy. Speed: build/bench_train (FP32 training, SGD with
# momentum, the trainer's loop) against bench/train_torch.py (PyTorch eager
# FP32 training of the same network rebuilt from the ONNX file), batch 64, 1
# and all threads, one after the other in this run. Needs Debian's
# python3-torch and python3-onnx for the PyTorch column (skipped without).
# Results go to OUT (bench/out-finetune); bench/RESULTS.md has the figures.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OUT=${OUT:-$ROOT/bench/out-finetune}
EPOCHS=${EPOCHS:-}
THREADS=${THREADS:-$(nproc)}
ONLY=${ONLY:-all}
POLICIES=${POLICIES:-mobilenetv2-16x mobilenetv2-ternary}
mkdir -p "$OUT"

cat >"$OUT/mobilenetv2-finetune.json" <<JSON
{
  "name": "mobilenetv2-finetune",
  "model": "$ROOT/models/mobilenetv2.onnx",
  "data": {
    "format": "idx",
    "train_images": "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz",
    "train_labels": "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz",
    "test_images": "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
    "test_labels": "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
    "normalize": { "scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530] },
    "splits": { "seed": 1, "calibration": 1000, "validation": 5000, "test": 0 }
  },
  "eval": { "batch": 64, "threads": $THREADS },
  "finetune": { "batch": 64, "micro_batch": 16, "threads": $THREADS, "optimizer": "sgd",
                "lr": 0.005, "schedule": "cosine", "kd_weight": 0.5, "temperature": 2,
                "log_every": 100 }
}
JSON

if [ "$ONLY" = all ] || [ "$ONLY" = accuracy ]; then
	for p in $POLICIES; do
		e=$EPOCHS
		[ -n "$e" ] || { [ "$p" = mobilenetv2-16x ] && e=6 || e=2; }
		echo "== $p, $e epochs" >&2
		"$BUILD/presso" finetune --config "$OUT/mobilenetv2-finetune.json" \
			--policy "$ROOT/bench/policies/$p.json" --epochs "$e" \
			-o "$OUT/$p.presso" >"$OUT/$p.txt" 2>"$OUT/$p.log"
		cat "$OUT/$p.txt"
	done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = speed ]; then
	echo "== training speed, images/s (batch 64)"
	for t in 1 "$THREADS"; do
		"$BUILD/bench_train" "$ROOT/models/mobilenetv2.onnx" --batch 64 --threads "$t" \
			--steps 20 --repeat 3
		if /usr/bin/python3 -c 'import torch, onnx' 2>/dev/null; then
			/usr/bin/python3 "$ROOT/bench/train_torch.py" "$ROOT/models/mobilenetv2.onnx" 64 "$t" 20 3
		else
			echo "pytorch-train: skipped (python3-torch or python3-onnx missing)"
		fi
	done
fi
