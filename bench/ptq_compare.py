"""INT8 post-training quantization: presso against PyTorch's eager-mode PTQ (onednn).

For each shipped reference model (models/<name>.onnx), in one run:
  (a) FP32 top-1 accuracy on the 10,000 Fashion-MNIST test images in PyTorch, on a
      module rebuilt from the ONNX file (bench/onnx_to_torch.py), checked against
      the model card's fp32_test_accuracy (within 0.02 points) and reference logits;
  (b) PyTorch eager-mode post-training static quantization: engine 'onednn',
      get_default_qconfig('onednn') (per-channel symmetric int8 weights; the
      script checks this and otherwise builds a per-channel QConfig), calibrated
      on the same 1000 training images presso calibrates on (presso's seeded
      split, reproduced here), then converted and evaluated on the test set;
  (c) presso's INT8 result: `presso eval --config configs/<name>.json --policy int8 --json`.
It prints a markdown table, then per model PyTorch INT8 (onednn) images/s at batch 1
and 64 on one thread, as lines `pytorch-int8 <model> batch <b> <images/s>`: the eager
quantized module on real test images, warm-up then the best of --repeat windows of
at least --seconds each.

PyTorch side, as eager mode allows: Conv+ReLU and Linear+ReLU fused, Add+ReLU as
add_relu; Conv+ReLU6 cannot be fused in eager mode, so the conv output is observed
and requantized before a separate quantized ReLU6 (a range that includes values
ReLU6 then clips). presso's calibration method is its own (reported by its JSON).

A model whose ONNX file is missing (resnet while it trains) is skipped with a note.
If the presso binary is missing or fails, its columns read n/a.

usage: /usr/bin/python3 bench/ptq_compare.py [--models lenet,mobilenetv2,resnet]
           [--presso build/presso] [--seconds 2] [--repeat 3] [--calib-batch 1000]
           [--no-throughput]
Needs Debian's python3-torch (1.13) and python3-onnx, so run it with /usr/bin/python3.
"""
import argparse
import copy
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from onnx_to_torch import onnx_to_module  # noqa: E402

ENGINE = "onednn"
FP32_TOLERANCE = 0.02  # accuracy points the rebuilt FP32 module may differ from the card
DATA_DIR = "/usr/share/datasets/fashion-mnist"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data

def read_idx(path):
    """IDX file (raw or gzip) -> numpy uint8 array."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic = int.from_bytes(raw[0:4], "big")
    if magic >> 8 != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file (magic %#x)" % (path, magic))
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise ValueError("%s: %d data bytes for shape %s" % (path, len(body), dims))
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def normalise(images_u8, norm):
    """uint8 [n,h,w] -> float32 [n,1,h,w], (pixel*scale - mean)/std as presso does."""
    scale = np.float32(norm["scale"])
    mean = np.float32(norm["mean"][0])
    std = np.float32(norm["std"][0])
    x = (images_u8.astype(np.float32) * scale - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x[:, None, :, :], dtype=np.float32))


M64 = (1 << 64) - 1


def presso_calibration_indices(n_train, seed, n_calib):
    """The training-image indices presso calibrates on (src/data/dataset.c,
    dataset_make_splits): splitmix64-seeded xoshiro256**, partial Fisher-Yates with
    unbiased bounded draws; the first n_calib picks are the calibration split."""
    x = seed & M64
    s = []
    for _ in range(4):
        x = (x + 0x9E3779B97F4A7C15) & M64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        s.append(z ^ (z >> 31))

    def rotl(v, k):
        return ((v << k) | (v >> (64 - k))) & M64

    def nxt():
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(rng):
        threshold = ((1 << 64) - rng) % rng
        while True:
            v = nxt()
            if v >= threshold:
                return v % rng

    perm = list(range(n_train))
    for i in range(n_calib):
        j = i + below(n_train - i)
        perm[i], perm[j] = perm[j], perm[i]
    return perm[:n_calib]


# ---------------------------------------------------------------- PyTorch

def accuracy(net, x, y, batch=500):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return 100.0 * correct / len(x), correct


def make_qconfig():
    """get_default_qconfig('onednn') if its weights are per-channel, else an explicit
    per-channel symmetric QConfig. Returns (qconfig, description)."""
    from torch.ao import quantization as tq
    qc = tq.get_default_qconfig(ENGINE)
    w, a = qc.weight(), qc.activation()
    per_channel = w.qscheme in (torch.per_channel_symmetric, torch.per_channel_affine)
    if not per_channel:
        qc = tq.QConfig(
            activation=tq.HistogramObserver.with_args(reduce_range=False),
            weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                         qscheme=torch.per_channel_symmetric))
        w, a = qc.weight(), qc.activation()
    desc = ("%s get_default_qconfig('%s'): weights %s %s %s, activations %s %s %s reduce_range=%s"
            % ("using" if per_channel else "NOT per-channel, replaced by explicit QConfig; was",
               ENGINE, type(w).__name__, w.dtype, w.qscheme, type(a).__name__, a.dtype,
               a.qscheme, a.reduce_range))
    return qc, desc


def quantize(fp32_net, qconfig, calib_x, calib_batch):
    from torch.ao import quantization as tq
    net = copy.deepcopy(fp32_net).eval()
    net.qconfig = qconfig
    prepared = tq.prepare(net, inplace=False)
    with torch.no_grad():
        for i in range(0, len(calib_x), calib_batch):
            prepared(calib_x[i:i + calib_batch])
    return tq.convert(prepared, inplace=False).eval()


def throughput(net, x, seconds, repeat=1, warmup_s=0.5):
    """images/s: after a warm-up, `repeat` windows of at least `seconds` of
    back-to-back runs each; the best window counts (least disturbed by other load)."""
    b = x.shape[0]
    best = 0.0
    with torch.no_grad():
        t0 = time.perf_counter()
        runs = 0
        while runs < 5 or time.perf_counter() - t0 < warmup_s:
            net(x)
            runs += 1
        for _ in range(max(1, repeat)):
            runs, t0 = 0, time.perf_counter()
            while True:
                net(x)
                runs += 1
                t = time.perf_counter()
                if t - t0 >= seconds and runs >= 10:
                    break
            best = max(best, runs * b / (t - t0))
    return best


# ---------------------------------------------------------------- presso

def run_presso(presso, name, timeout):
    """presso's FP32 and INT8 accuracies (and the JSON), or (None, None, reason)."""
    cfg = os.path.join("configs", name + ".json")
    if not (os.path.isfile(presso) and os.access(presso, os.X_OK)):
        return None, None, "no presso binary at %s" % presso
    cmd = [presso, "eval", "--config", cfg, "--policy", "int8", "--json"]
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, None, "timed out after %d s" % timeout
    except OSError as e:
        return None, None, str(e)
    if p.returncode != 0:
        return None, None, "exit %d: %s" % (p.returncode, p.stderr.strip()[-300:])
    try:
        j = json.loads(p.stdout)
        return j, (float(j["fp32"]["accuracy"]), float(j["quantized"]["accuracy"])), None
    except (ValueError, KeyError, TypeError) as e:
        return None, None, "unreadable JSON (%s): %s" % (e, p.stdout.strip()[:200])


# ---------------------------------------------------------------- main

def fmt(v, signed=False):
    if v is None:
        return "n/a"
    return ("%+.2f" if signed else "%.2f") % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="lenet,mobilenetv2,resnet")
    ap.add_argument("--presso", default="build/presso")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="timed seconds per throughput measurement (>= 2 by default)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed windows per throughput measurement; the best is printed")
    ap.add_argument("--calib-batch", type=int, default=1000,
                    help="images per calibration forward pass; HistogramObserver re-bins as "
                         "its range grows, so the split changes the result slightly: the "
                         "default passes all calibration images at once (order-independent)")
    ap.add_argument("--presso-timeout", type=int, default=1800)
    ap.add_argument("--no-throughput", action="store_true")
    args = ap.parse_args()
    os.chdir(ROOT)
    presso = args.presso if os.path.isabs(args.presso) else os.path.join(ROOT, args.presso)
    started = time.perf_counter()

    torch.set_num_threads(1)  # one thread throughout, as presso's configs (eval.threads 1)
    if ENGINE not in torch.backends.quantized.supported_engines:
        sys.exit("ptq_compare: this torch build has no '%s' quantized engine (has %s)"
                 % (ENGINE, torch.backends.quantized.supported_engines))
    torch.backends.quantized.engine = ENGINE
    qconfig, qdesc = make_qconfig()

    rows, notes, thr, failed = [], [], [], False
    data_cache = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        onnx_path = os.path.join("models", name + ".onnx")
        card_path = os.path.join("models", name + ".json")
        cfg_path = os.path.join("configs", name + ".json")
        if not os.path.isfile(onnx_path):
            notes.append("%s: skipped, %s does not exist (not trained yet?)" % (name, onnx_path))
            log(notes[-1])
            continue
        card = json.load(open(card_path)) if os.path.isfile(card_path) else {}
        cfg = json.load(open(cfg_path)) if os.path.isfile(cfg_path) else {}
        dcfg = cfg.get("data", {})
        norm = card.get("normalisation") or dcfg.get("normalize") or \
            {"scale": 1 / 255, "mean": [0.2860], "std": [0.3530]}
        splits = dcfg.get("splits", {})
        seed, n_calib = int(splits.get("seed", 1)), int(splits.get("calibration", 1000))
        files = tuple(dcfg.get(k, os.path.join(DATA_DIR, d)) for k, d in (
            ("train_images", "train-images-idx3-ubyte.gz"),
            ("test_images", "t10k-images-idx3-ubyte.gz"),
            ("test_labels", "t10k-labels-idx1-ubyte.gz")))
        key = (files, json.dumps(norm, sort_keys=True), seed, n_calib)
        if key not in data_cache:
            train_u8 = read_idx(files[0])
            idx = presso_calibration_indices(len(train_u8), seed, n_calib)
            data_cache[key] = (normalise(read_idx(files[1]), norm),
                               torch.from_numpy(read_idx(files[2]).astype(np.int64)),
                               normalise(train_u8[idx], norm))
        test_x, test_y, calib_x = data_cache[key]

        # (c) presso first, so its timings do not share the CPU with PyTorch.
        t = time.perf_counter()
        pj, pacc, why = run_presso(presso, name, args.presso_timeout)
        if why:
            notes.append("%s: presso n/a (%s)" % (name, why))
            log(notes[-1])
        else:
            if int(pj.get("images", -1)) != len(test_x) or pj.get("split") != "test":
                notes.append("%s: presso evaluated %s images of split %s, PyTorch %d test images"
                             % (name, pj.get("images"), pj.get("split"), len(test_x)))
            log("%s: presso eval --policy int8: FP32 %.2f, INT8 %.2f (calibration %s, kernels %s)"
                " in %.1f s" % (name, pacc[0], pacc[1], pj["quantized"].get("calibration"),
                                pj["quantized"].get("isa"), time.perf_counter() - t))

        # (a) FP32 in PyTorch, checked against the card.
        fp32 = onnx_to_module(onnx_path)
        fp32_acc, fp32_correct = accuracy(fp32, test_x, test_y)
        card_acc = card.get("fp32_test_accuracy")
        check = ""
        if card_acc is not None:
            ok = abs(fp32_acc - card_acc) <= FP32_TOLERANCE + 1e-9
            check = "card %.2f: %s" % (card_acc, "ok" if ok else "MISMATCH")
            if not ok:
                failed = True
        refs = card.get("reference_outputs", [])
        if refs:
            with torch.no_grad():
                got = fp32(test_x[[r["test_index"] for r in refs]])
            want = torch.tensor([r["logits"] for r in refs])
            check += ", max |logit - card logit| %.2e" % float((got - want).abs().max())
        log("%s: PyTorch FP32 %.2f (%d/%d) %s" % (name, fp32_acc, fp32_correct, len(test_x), check))
        if card_acc is not None and abs(fp32_acc - card_acc) > FP32_TOLERANCE + 1e-9:
            notes.append("%s: rebuilt FP32 module gives %.2f, card says %.2f: PTQ column suspect"
                         % (name, fp32_acc, card_acc))

        # (b) PyTorch eager PTQ, onednn.
        t = time.perf_counter()
        q = quantize(fp32, qconfig, calib_x, args.calib_batch)
        t_cal = time.perf_counter() - t
        q_acc, q_correct = accuracy(q, test_x, test_y)
        log("%s: PyTorch INT8 (%s PTQ, %d calibration images) %.2f (%d/%d); calibrate+convert %.1f s"
            % (name, ENGINE, len(calib_x), q_acc, q_correct, len(test_x), t_cal))

        rows.append((name, fp32_acc, pacc[0] if pacc else None, q_acc,
                     pacc[1] if pacc else None))

        if not args.no_throughput:
            for b in (1, 64):
                x = test_x[:b].contiguous()
                ips = throughput(q, x, args.seconds, args.repeat)
                thr.append("pytorch-int8 %s batch %d %.1f" % (name, b, ips))
                log(thr[-1])

    print("## INT8 post-training quantization: presso vs PyTorch eager PTQ (%s)" % ENGINE)
    print()
    print("Fashion-MNIST test set, 10,000 images, top-1 accuracy in %%. PyTorch %s, %s; "
          "calibration: the %d training images of presso's split (seed %d), %d per forward pass."
          % (torch.__version__, qdesc, n_calib if rows else 1000, seed if rows else 1,
             args.calib_batch))
    print()
    print("| model | FP32 (PyTorch) | FP32 (presso) | W8A8 PyTorch onednn PTQ | W8A8 presso "
          "| presso − FP32 | presso − PyTorch PTQ |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, f_pt, f_pr, q_pt, q_pr in rows:
        base = f_pr if f_pr is not None else f_pt
        d_fp = q_pr - base if q_pr is not None else None
        d_pt = q_pr - q_pt if q_pr is not None else None
        print("| %s | %s | %s | %s | %s | %s | %s |" % (
            name, fmt(f_pt), fmt(f_pr), fmt(q_pt), fmt(q_pr), fmt(d_fp, True), fmt(d_pt, True)))
    print()
    print("presso − FP32 is presso INT8 minus presso's own FP32 (PyTorch's FP32 if presso's is n/a).")
    for n in notes:
        print("- " + n)
    print()
    for line in thr:
        print(line)
    print("# ptq_compare: %.1f s" % (time.perf_counter() - started))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
