#!/usr/bin/env bash
# make_corpus.sh - rewrites the generated seeds of tests/fuzz/corpus/ (run from
# anywhere; needs what scripts/setup.sh installs). The hand-written seeds
# (policy/{w8a8,mixed,transforms}.json, expr/, config/space-full.json) are kept.
#
#   onnx/     cnn, residual, shapes, tokens, lifted, recurrent.onnx from make_seeds.c; a few cases of
#             Debian's libonnx-testdata (tiny single-op models)
#             and `presso compress` of cnn as QDQ ONNX (the low-bit policy below)
#   presso/   `presso compress` of cnn and residual (W8A8; W4 with pruning and
#             2- and 3-bit layers; Q31 requantization), of LeNet (W8A8) and
#             of the row LSTM (3 bits, half pruned: its R quantized)
#   dataset/  IDX and NPY datasets from make_seeds.c
#   config/   configs/*.json
#   policy/   template.json from `presso policy` for models/lenet.onnx, and
#             configs/lenet-w4-rank50.json
set -euo pipefail
cd "$(dirname "$0")/../.."
C=tests/fuzz/corpus
NODE=/usr/share/libonnx-testdata/data/node
FMNIST=/usr/share/datasets/fashion-mnist

bash scripts/fuzz.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target presso >/dev/null

build-fuzz/fuzz_make_seeds "$C"
for t in test_add_bcast test_averagepool_2d_pads test_batchnorm_example test_clip_splitbounds \
	test_concat_3d_axis_negative_1 test_conv_with_autopad_same \
	test_conv_with_strides_and_asymmetric_padding test_dropout_default_ratio \
	test_flatten_negative_axis1 test_gemm_all_attributes test_globalaveragepool test_matmul_3d \
	test_maxpool_2d_dilations test_reshape_negative_dim test_softmax_axis_1 \
	test_squeeze_negative_axes test_transpose_all_permutations_3 test_unsqueeze_two_axes; do
	cp "$NODE/$t/model.onnx" "$C/onnx/$t.onnx"
done
cp configs/*.json "$C/config/"
build/presso policy --model models/lenet.onnx -o "$C/policy/template.json"
cp configs/lenet-w4-rank50.json "$C/policy/"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
config() { # config MODEL REQUANT: a small study on Fashion-MNIST
	cat <<JSON
{ "name": "seed", "model": "$ROOT_DIR/$C/onnx/$1.onnx",
  "data": { "format": "idx",
    "train_images": "$FMNIST/train-images-idx3-ubyte.gz",
    "train_labels": "$FMNIST/train-labels-idx1-ubyte.gz",
    "test_images": "$FMNIST/t10k-images-idx3-ubyte.gz",
    "test_labels": "$FMNIST/t10k-labels-idx1-ubyte.gz",
    "normalize": { "scale": 0.00392156862745098, "mean": [0.2860], "std": [0.3530] },
    "splits": { "seed": 1, "calibration": 256, "validation": 256, "test": 256 } },
  "quant": { "requant": "$2" } }
JSON
}
ROOT_DIR=$(pwd)
cat >"$tmp/cnn-low.json" <<'JSON'
{ "default": { "bits": 4, "prune": 0.6 },
  "layers": { "conv1": { "bits": 2 }, "fc": { "bits": 3, "act_bits": 6, "prune": 0 } } }
JSON
mkdir -p "$C/presso"
config cnn float >"$tmp/cnn.json"
config residual q31 >"$tmp/residual.json"
q=(--quiet)
build/presso compress --config "$tmp/cnn.json" --policy int8 -o "$C/presso/cnn-int8.presso" "${q[@]}"
build/presso compress --config "$tmp/cnn.json" --policy "$tmp/cnn-low.json" \
	-o "$C/presso/cnn-low.presso" "${q[@]}"
build/presso compress --config "$tmp/residual.json" --policy int4 \
	-o "$C/presso/residual-int4-q31.presso" "${q[@]}"
build/presso compress --config configs/lenet.json --policy int8 \
	-o "$C/presso/lenet-int8.presso" "${q[@]}"
# the row LSTM with its projection, and so its R, at 3 bits and half pruned:
# a quantized constant in the payload (format version 4)
cat >"$tmp/lstm-low.json" <<'JSON'
{ "layers": { "/rnn/LSTM#proj": { "bits": 3, "prune": 0.5 } } }
JSON
build/presso compress --config configs/lstm.json --policy "$tmp/lstm-low.json" \
	-o "$C/presso/lstm-r3.presso" "${q[@]}"
# a QDQ model for the ONNX importer (QuantizeLinear, DequantizeLinear)
build/presso compress --config "$tmp/cnn.json" --policy "$tmp/cnn-low.json" \
	-o "$C/onnx/cnn-low-qdq.onnx" "${q[@]}"
du -sh "$C"/*
