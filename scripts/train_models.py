#!/usr/bin/python3
"""Reproducible recipe for presso's shipped Fashion-MNIST reference models.

This script trains six small reference networks on Fashion-MNIST on the CPU,
exports them to ONNX (opset 13; mobilenetv3 and vit opset 17) and writes a
JSON "model card" next to every .onnx file:

    models/lenet.onnx        LeNet-5 style CNN
    models/mlp.onnx          784-512-256-10 multilayer perceptron (ReLU)
    models/mobilenetv2.onnx  MobileNetV2-style net (inverted residuals, ReLU6)
    models/resnet.onnx       small ResNet (basic blocks), BatchNorm folded
    models/resnet_bn.onnx    the same ResNet with BatchNormalization nodes kept
    models/mobilenetv3.onnx  MobileNetV3-small-style net (HardSwish, squeeze-excite)
    models/vit.onnx          tiny vision transformer (LayerNorm, attention, GELU)

Run it with Debian's interpreter (python3-torch / python3-onnx only import there):

    /usr/bin/python3 scripts/train_models.py                 # all models
    /usr/bin/python3 scripts/train_models.py --only lenet    # one model
    /usr/bin/python3 scripts/train_models.py --epochs-scale 0.1   # quick smoke run

Data is read from the IDX files in /usr/share/datasets/fashion-mnist (override
with --data).  Everything is seeded and single-process with 2 threads, so a
rerun on the same machine / torch build reproduces the shipped files.

Input convention: NCHW float32 [N,1,28,28], x = (pixel/255 - 0.2860) / 0.3530.
"""

import argparse
import gzip
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20240601
MEAN = 0.2860
STD = 0.3530
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "models"))


def log(*a):
    print(*a, flush=True)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- data

def read_idx(path):
    """Read a gzip'ed IDX file (unsigned byte data only) into a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: size mismatch" % path)
    return data.reshape(dims)


def load_split(data_dir, prefix):
    x = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte.gz" % prefix))
    y = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte.gz" % prefix))
    assert x.shape[0] == y.shape[0] and x.shape[1:] == (28, 28)
    return x, y


def normalise(pix01):
    """pix01: float32 tensor of pixel/255.  Returns normalised float32."""
    return (pix01 - np.float32(MEAN)) / np.float32(STD)


def to_input(x_u8):
    """uint8 [N,28,28] numpy -> normalised float32 tensor [N,1,28,28]."""
    p = torch.from_numpy(x_u8.astype(np.float32) / np.float32(255.0))
    return normalise(p).unsqueeze(1).contiguous()


def augment(pix01, gen, pad=2):
    """Random horizontal flip + random crop (zero padding of `pad` px).

    pix01: [B,1,28,28] float32 in [0,1] (before normalisation, so the padding
    is real background).  gen: torch.Generator for determinism."""
    b = pix01.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], pix01.flip(3), pix01)
    xp = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ar = torch.arange(28)
    rows = (oy[:, None] + ar)[:, :, None]          # [B,28,1]
    cols = (ox[:, None] + ar)[:, None, :]          # [B,1,28]
    bi = torch.arange(b)[:, None, None]
    return xp[bi, 0, rows, cols].unsqueeze(1)


# ------------------------------------------------------------------- networks

class LeNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


class MLP(nn.Module):
    def __init__(self, num_classes=10, hidden=(512, 256)):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, hidden[0])
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.fc3 = nn.Linear(hidden[1], num_classes)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def conv_bn(cin, cout, k, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2,
                        groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand != 1:
            layers.append(conv_bn(cin, hidden, 1))                       # expand
        layers.append(conv_bn(hidden, hidden, 3, stride, groups=hidden))  # depthwise
        layers.append(conv_bn(hidden, cout, 1, act=False))               # project
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_res else y


class MobileNetV2(nn.Module):
    # (expansion t, channels c, repeats n, first stride s)
    CFG = [(1, 16, 1, 1), (4, 24, 2, 2), (4, 32, 2, 2), (4, 64, 2, 1)]

    def __init__(self, num_classes=10, last=128, dropout=0.2):
        super().__init__()
        self.stem = conv_bn(1, 16, 3)
        blocks = []
        cin = 16
        for t, c, n, s in self.CFG:
            for i in range(n):
                blocks.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        self.blocks = nn.Sequential(*blocks)
        self.head = conv_bn(cin, last, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(last, num_classes)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(self.dropout(x))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.down is None else self.down(x)
        return self.relu(y + s)


class ResNet(nn.Module):
    def __init__(self, num_classes=10, widths=(16, 32, 64), blocks=(2, 2, 2)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        layers = []
        cin = widths[0]
        for si, (w, n) in enumerate(zip(widths, blocks)):
            for bi in range(n):
                stride = 2 if (si > 0 and bi == 0) else 1
                layers.append(BasicBlock(cin, w, stride))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


# MobileNetV3-small-style blocks (Howard et al. 2019): HardSwish, squeeze-excite
# with HardSigmoid and a channel-wise Mul, inverted residuals, depthwise convs.
class ConvBNAct(nn.Sequential):
    def __init__(self, cin, cout, k, stride=1, groups=1, act=None):
        layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2,
                            groups=groups, bias=False),
                  nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    def __init__(self, c, squeeze):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, squeeze, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(squeeze, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        s = self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))
        return x * s


class V3Block(nn.Module):
    def __init__(self, cin, k, hidden, cout, se, act, stride):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers = []
        if hidden != cin:
            layers.append(ConvBNAct(cin, hidden, 1, act=act))                     # expand
        layers.append(ConvBNAct(hidden, hidden, k, stride, groups=hidden, act=act))  # depthwise
        if se:
            layers.append(SqueezeExcite(hidden, max(8, hidden // 4)))
        layers.append(ConvBNAct(hidden, cout, 1))                                  # project
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        y = self.body(x)
        return x + y if self.use_res else y


class MobileNetV3(nn.Module):
    # (kernel, expanded channels, out channels, squeeze-excite, activation, stride)
    RE, HS = nn.ReLU, nn.Hardswish
    CFG = [(3, 16, 16, True, RE, 1),
           (3, 48, 24, False, RE, 2),
           (3, 72, 24, False, RE, 1),
           (5, 96, 40, True, HS, 2),
           (5, 120, 40, True, HS, 1),
           (5, 144, 48, True, HS, 1)]

    def __init__(self, num_classes=10, last=192, hidden=256, dropout=0.2):
        super().__init__()
        self.stem = ConvBNAct(1, 16, 3, 2, act=nn.Hardswish)    # 28x28 -> 14x14
        blocks, cin = [], 16
        for k, e, c, se, act, s in self.CFG:
            blocks.append(V3Block(cin, k, e, c, se, act, s))
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.head = ConvBNAct(cin, last, 1, act=nn.Hardswish)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(last, hidden)
        self.act = nn.Hardswish()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc2(self.dropout(self.act(self.fc1(x))))


# A tiny vision transformer (Dosovitskiy et al. 2021).  Every reshape names its
# sizes as constants with -1 for the batch, so the export holds no Shape chains
# and the batch axis stays dynamic.
class TokenLinear(nn.Linear):
    """nn.Linear on [N,T,D] tokens.  Debian's torch does float matrix products
    with the reference BLAS, about 30x slower than oneDNN's convolutions, so in
    training mode the product runs as a 1x1 convolution over the tokens; in
    eval mode (and so in the ONNX export) it is the plain Linear (MatMul + Add)."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        n, t, d = x.shape      # [N,T,D] is [N,D,T,1] in channels_last layout
        x = x.reshape(n, t, 1, d).permute(0, 3, 1, 2)
        w = self.weight[:, :, None, None].contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, w, self.bias).permute(0, 2, 3, 1).reshape(n, t, -1)


class Attention(nn.Module):
    def __init__(self, dim, heads, tokens):
        super().__init__()
        self.h, self.dh, self.t, self.dim = heads, dim // heads, tokens, dim
        self.q = TokenLinear(dim, dim)
        self.k = TokenLinear(dim, dim)
        self.v = TokenLinear(dim, dim)
        self.proj = TokenLinear(dim, dim)
        self.scale = self.dh ** -0.5

    def split(self, x):                       # [N,T,D] -> [N,H,T,dh]
        return x.reshape(-1, self.t, self.h, self.dh).transpose(1, 2)

    def forward(self, x):
        q = self.split(self.q(x) * self.scale)
        k = self.split(self.k(x))
        v = self.split(self.v(x))
        a = torch.softmax(q @ k.transpose(-2, -1), dim=-1)
        y = (a @ v).transpose(1, 2).reshape(-1, self.t, self.dim)
        return self.proj(y)


class EncoderBlock(nn.Module):
    def __init__(self, dim, heads, mlp, tokens):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, tokens)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = TokenLinear(dim, mlp)
        self.gelu = nn.GELU()
        self.fc2 = TokenLinear(mlp, dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(self.gelu(self.fc1(self.ln2(x))))


class ViT(nn.Module):
    def __init__(self, num_classes=10, patch=7, dim=48, depth=2, heads=3, mlp=96):
        super().__init__()
        self.t, self.dim = (28 // patch) ** 2, dim
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, self.t, dim) * 0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(dim, heads, mlp, self.t)
                                      for _ in range(depth)])
        self.ln = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.embed(x).reshape(-1, self.dim, self.t).transpose(1, 2) + self.pos
        x = self.ln(self.blocks(x))
        return self.fc(x.mean(dim=1))          # mean pooling over the tokens


class RowLSTM(nn.Module):
    """Reads the image as a sequence of its 28 rows: an LSTM over them, the
    last hidden state into the classifier.  PyTorch exports the zero initial
    states as ConstantOfShape of the batch size, as it does for any LSTM."""
    def __init__(self, num_classes=10, hidden=64):
        super().__init__()
        self.rnn = nn.LSTM(28, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):
        _, (h, _) = self.rnn(x.reshape(-1, 28, 28))
        return self.fc(h[-1])


# Training recipes.  Epoch counts were chosen from measured epoch times on a
# 2-core machine (LeNet ~10 s, MobileNetV2 ~70 s, ResNet ~60 s per epoch) so
# that all models together train in about 23 minutes.
RECIPES = {
    "lenet": dict(
        make=LeNet, epochs=15, batch=128, opt="adamw", lr=3e-3, wd=1e-4,
        augment=True,
        arch="LeNet-5: Conv5x5(1->6,p2)-ReLU-MaxPool2, Conv5x5(6->16)-ReLU-MaxPool2, "
             "Flatten, FC400-120-ReLU, FC120-84-ReLU, FC84-10",
        desc="LeNet-style CNN for Fashion-MNIST (no BatchNorm)."),
    # Fully connected only: the INT8 engine's large-M GEMM path.  Its 536 K
    # float parameters make a 2.1 MB file, hence its own size limit.  5 epochs
    # without augmentation (3-6 min per epoch on the shared 2-core machine it
    # was trained on; 89.02 % test accuracy).
    "mlp": dict(
        make=MLP, epochs=5, batch=128, opt="adamw", lr=1e-3, wd=1e-4,
        augment=False, max_bytes=3 * 1024 * 1024,
        arch="MLP: Flatten, FC784-512-ReLU, FC512-256-ReLU, FC256-10",
        desc="Multilayer perceptron for Fashion-MNIST (fully connected layers only)."),
    "mobilenetv2": dict(
        make=MobileNetV2, epochs=9, batch=128, opt="sgd", lr=0.1, wd=4e-5,
        augment=True, channels_last=True,
        arch="MobileNetV2-style: Conv3x3(1->16)+BN+ReLU6; inverted residuals "
             "(t,c,n,s)=(1,16,1,1),(4,24,2,2),(4,32,2,2),(4,64,2,1); "
             "Conv1x1(64->128)+BN+ReLU6, GlobalAvgPool, Flatten, Dropout(0.2), FC128-10; "
             "BN folded into convs",
        desc="MobileNetV2-style network (depthwise separable convs, ReLU6 as Clip, "
             "residual Adds) for Fashion-MNIST; BatchNorm folded at export."),
    "resnet": dict(
        make=ResNet, epochs=10, batch=128, opt="sgd", lr=0.1, wd=5e-4,
        augment=True, channels_last=True,
        arch="ResNet: Conv3x3(1->16)+BN+ReLU; 3 stages x 2 basic blocks, widths 16/32/64, "
             "stride 2 at stages 2,3 with 1x1 conv+BN shortcut; GlobalAvgPool, Flatten, "
             "FC64-10; BN folded into convs",
        desc="Small ResNet (basic blocks) for Fashion-MNIST; BatchNorm folded at export."),
    # The two below are exported at opset 17 (HardSwish, LayerNormalization as
    # single nodes; GELU as its Erf pattern) and keep Reshape/Transpose nodes
    # with constant shapes.  Their sizes and epoch counts were cut to train in
    # about half an hour together on a 2-core machine shared with other work
    # (an idle machine is several times faster); more epochs would gain accuracy.
    "mobilenetv3": dict(
        make=MobileNetV3, epochs=3, batch=256, opt="sgd", lr=0.15, wd=4e-5,
        augment=True, channels_last=True, opset=17,
        arch="MobileNetV3-small-style: Conv3x3/2(1->16)+BN+HardSwish; bneck blocks "
             "(k,exp,out,SE,act,s)=(3,16,16,SE,ReLU,1),(3,48,24,-,ReLU,2),(3,72,24,-,ReLU,1),"
             "(5,96,40,SE,HS,2),(5,120,40,SE,HS,1),(5,144,48,SE,HS,1); squeeze-excite = "
             "GlobalAvgPool, Conv1x1+ReLU, Conv1x1+HardSigmoid, Mul; Conv1x1(48->192)+BN+HardSwish, "
             "GlobalAvgPool, Flatten, FC192-256+HardSwish, Dropout(0.2), FC256-10; BN folded into convs",
        desc="MobileNetV3-small-style network (HardSwish, squeeze-excite with HardSigmoid "
             "and Mul, inverted residuals, depthwise convs) for Fashion-MNIST; BatchNorm "
             "folded at export."),
    "vit": dict(
        make=ViT, epochs=2, batch=256, opt="adamw", lr=3e-3, wd=0.05,
        augment=True, opset=17,
        arch="ViT: Conv7x7/7 patch embedding (1->48, 16 tokens) + learned position "
             "embedding; 2 pre-norm encoder blocks (LayerNorm, 3-head self-attention with "
             "q/k/v/proj Linear 48-48, softmax(q k^T / 4) v; LayerNorm, MLP 48-96-GELU-48, "
             "residual Adds); LayerNorm, mean over tokens, FC48-10",
        desc="Tiny vision transformer for Fashion-MNIST (LayerNormalization, multi-head "
             "attention with MatMul between activations and Softmax, GELU as its Erf "
             "pattern, Reshape/Transpose with constant shapes)."),
    # A recurrent model: exports Shape/Gather/Concat/ConstantOfShape for its
    # initial states (dynamic_ops) and an LSTM node, which the numpy checker
    # lacks (numpy_check); tests/test_models.c checks its card's reference
    # logits through presso instead.
    "lstm": dict(
        make=RowLSTM, epochs=8, batch=128, opt="adamw", lr=3e-3, wd=1e-4,
        augment=True, dynamic_ops=True, numpy_check=False,
        arch="Row LSTM: the 28 image rows as a sequence of 28-pixel steps, LSTM(28->64, "
             "batch first, one layer), the last hidden state, FC64-10",
        desc="LSTM sequence classifier for Fashion-MNIST (ONNX LSTM with PyTorch's "
             "zero initial states; rows as time steps)."),
}


def make_optimizer(model, r, steps_per_epoch, epochs):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": r["wd"]},
              {"params": no_decay, "weight_decay": 0.0}]
    if r["opt"] == "sgd":
        opt = torch.optim.SGD(groups, lr=r["lr"], momentum=0.9, nesterov=True)
        name = "SGD(momentum=0.9, nesterov) lr=%g wd=%g, OneCycle" % (r["lr"], r["wd"])
    else:
        opt = torch.optim.AdamW(groups, lr=r["lr"])
        name = "AdamW lr=%g wd=%g, OneCycle" % (r["lr"], r["wd"])
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=r["lr"], total_steps=steps_per_epoch * epochs,
        pct_start=0.2, anneal_strategy="cos", div_factor=20.0, final_div_factor=200.0)
    return opt, sched, name


@torch.no_grad()
def evaluate(model, x_test, y_test, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, x_test.shape[0], batch):
        out = model(x_test[i:i + batch])
        correct += int((out.argmax(1) == y_test[i:i + batch]).sum())
    return correct


def train(name, data, epochs_scale, max_epochs=None):
    r = RECIPES[name]
    seed_everything(SEED)
    model = r["make"]()
    cl = r.get("channels_last", False)
    if cl:   # ~3x faster depthwise / 3x3 convs with oneDNN on CPU
        model = model.to(memory_format=torch.channels_last)
    x_train_u8, y_train, x_test, y_test = data
    n = x_train_u8.shape[0]
    pix = torch.from_numpy(x_train_u8.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    ytr = torch.from_numpy(y_train.astype(np.int64))
    epochs = max(1, int(round(r["epochs"] * epochs_scale)))
    if max_epochs:
        epochs = min(epochs, max_epochs)
    steps = n // r["batch"]          # drop the last partial batch
    opt, sched, opt_name = make_optimizer(model, r, steps, epochs)
    gen = torch.Generator().manual_seed(SEED + 1)
    nparams = sum(p.numel() for p in model.parameters())
    log("[%s] %d trainable params, %d epochs x %d steps, %s"
        % (name, nparams, epochs, steps, opt_name))
    t0 = time.time()
    for ep in range(epochs):
        model.train()
        te = time.time()
        perm = torch.randperm(n, generator=gen)
        tot_loss, tot_ok, seen = 0.0, 0, 0
        for s in range(steps):
            idx = perm[s * r["batch"]:(s + 1) * r["batch"]]
            xb = pix[idx]
            if r["augment"]:
                xb = augment(xb, gen)
            xb = normalise(xb)
            if cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yb = ytr[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += float(loss) * yb.shape[0]
            tot_ok += int((out.argmax(1) == yb).sum())
            seen += yb.shape[0]
        correct = evaluate(model, x_test, y_test)
        log("[%s] epoch %2d/%d  loss %.4f  train acc %.2f%%  test acc %.2f%%  (%.1fs, total %.1fs)"
            % (name, ep + 1, epochs, tot_loss / seen, 100.0 * tot_ok / seen,
               correct / 100.0, time.time() - te, time.time() - t0))
    model = model.to(memory_format=torch.contiguous_format)
    model.eval()
    return model, epochs, opt_name, time.time() - t0


# --------------------------------------------------------------------- export

def export_onnx(model, path, keep_bn=False, opset=13):
    model.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    kw = dict(opset_version=opset, input_names=["input"], output_names=["logits"],
              dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    if keep_bn:
        # torch 1.13 only runs the Conv+BN fusing "eval peephole" pass when
        # training == TrainingMode.EVAL (the default).  PRESERVE exports the
        # module in its current (eval) mode, so BatchNormalization nodes are
        # emitted with training_mode=0 and running statistics, unfused.
        kw.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    else:
        kw.update(training=torch.onnx.TrainingMode.EVAL, do_constant_folding=True)
    torch.onnx.export(model, dummy, path, **kw)
    materialise_identity_initializers(path)


def materialise_identity_initializers(path):
    """The exporter de-duplicates initializers with identical contents and
    re-creates the copies with Identity nodes.  Replace such Identity nodes by
    real initializers so that the graph holds only compute ops."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    inits = {i.name: i for i in m.graph.initializer}
    keep, n = [], 0
    for nd in m.graph.node:
        if nd.op_type == "Identity" and nd.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[nd.input[0]])
            t.name = nd.output[0]
            m.graph.initializer.append(t)
            inits[t.name] = t
            n += 1
        else:
            keep.append(nd)
    if n:
        del m.graph.node[:]
        m.graph.node.extend(keep)
        onnx.save(m, path)
        log("  (%s: replaced %d Identity-of-initializer nodes by initializers)"
            % (os.path.basename(path), n))


def onnx_summary(path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = sorted(set(n.op_type for n in m.graph.node))
    params = 0
    for init in m.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT:
            params += int(numpy_helper.to_array(init).size)
    # Constant nodes holding float tensors (e.g. Clip bounds) are not counted:
    # they are scalars, not weights.
    return m, ops, params


# A tiny numpy interpreter for exactly the ops these models use; lets us check
# the exported graph against PyTorch since onnx 1.12 has no onnx.reference.
def _np_conv(x, w, b, strides, pads, group, dil):
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (x.shape[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (x.shape[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((n, m, oh, ow), dtype=np.float64)
    mg = m // group
    for g in range(group):
        xs = x[:, g * cg:(g + 1) * cg].astype(np.float64)
        ws = w[g * mg:(g + 1) * mg].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dil[0]: i * dil[0] + strides[0] * (oh - 1) + 1: strides[0],
                           j * dil[1]: j * dil[1] + strides[1] * (ow - 1) + 1: strides[1]]
                out[:, g * mg:(g + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, ws[:, :, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def run_onnx_numpy(model_proto, x):
    from onnx import numpy_helper, helper
    env = {i.name: numpy_helper.to_array(i).astype(np.float64)
           if i.data_type == 1 else numpy_helper.to_array(i)
           for i in model_proto.graph.initializer}
    env[model_proto.graph.input[0].name] = x.astype(np.float64)
    for nd in model_proto.graph.node:
        a = {at.name: helper.get_attribute_value(at) for at in nd.attribute}
        ins = [env[i] if i else None for i in nd.input]
        op = nd.op_type
        if op == "Constant":
            y = numpy_helper.to_array(a["value"])
        elif op == "Conv":
            k = ins[1].shape[2:]
            y = _np_conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                         a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]),
                         a.get("group", 1), a.get("dilations", [1, 1]))
            assert tuple(a.get("kernel_shape", k)) == tuple(k)
        elif op == "Identity":
            y = ins[0]
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "Clip":
            y = np.clip(ins[0], float(ins[1]), float(ins[2]))
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "MaxPool":
            k, s = a["kernel_shape"], a.get("strides", a["kernel_shape"])
            assert not any(a.get("pads", [0])) and k == s
            n_, c_, h_, w_ = ins[0].shape
            oh, ow = h_ // k[0], w_ // k[1]
            y = ins[0][:, :, :oh * k[0], :ow * k[1]].reshape(
                n_, c_, oh, k[0], ow, k[1]).max(axis=(3, 5))
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.T
            if a.get("transB", 0):
                B = B.T
            y = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
        elif op in ("Sub", "Mul", "Div", "Pow"):
            f = {"Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Pow": np.power}
            y = f[op](ins[0], ins[1])
        elif op == "Sqrt":
            y = np.sqrt(ins[0])
        elif op == "Erf":
            y = np.vectorize(math.erf)(ins[0])
        elif op == "HardSigmoid":
            y = np.clip(a.get("alpha", 0.2) * ins[0] + a.get("beta", 0.5), 0, 1)
        elif op == "HardSwish":
            y = ins[0] * np.clip(ins[0] / 6.0 + 0.5, 0, 1)
        elif op == "Reshape":
            shape = [int(v) for v in ins[1]]
            shape = [ins[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
            y = ins[0].reshape(shape)
        elif op == "Transpose":
            y = np.transpose(ins[0], a["perm"])
        elif op == "MatMul":
            y = np.matmul(ins[0], ins[1].astype(np.float64))
        elif op == "Softmax":
            e = np.exp(ins[0] - ins[0].max(axis=a.get("axis", -1), keepdims=True))
            y = e / e.sum(axis=a.get("axis", -1), keepdims=True)
        elif op == "ReduceMean":
            y = ins[0].mean(axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))
        elif op == "LayerNormalization":
            ax = a.get("axis", -1)
            mu = ins[0].mean(axis=ax, keepdims=True)
            var = ((ins[0] - mu) ** 2).mean(axis=ax, keepdims=True)
            y = (ins[0] - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * ins[1] + ins[2]
        elif op == "BatchNormalization":
            sh = (1, -1, 1, 1)
            xx, sc, bb, mu, var = ins
            y = (xx - mu.reshape(sh)) / np.sqrt(var.reshape(sh) + a.get("epsilon", 1e-5)) \
                * sc.reshape(sh) + bb.reshape(sh)
        else:
            raise NotImplementedError("numpy checker: op %s" % op)
        env[nd.output[0]] = y
    return env[model_proto.graph.output[0].name]


# ----------------------------------------------------------------------- main

def write_card(out_dir, name, fname, r, ops, params, correct, refs, epochs, opt_name, arch, desc):
    card = {
        "name": name,
        "file": fname,
        "description": desc,
        "architecture": arch,
        "input": {"name": "input", "layout": "NCHW", "shape": ["N", 1, 28, 28],
                  "dtype": "float32"},
        "normalisation": {"scale": 1.0 / 255.0, "mean": [MEAN], "std": [STD],
                          "formula": "(pixel*scale - mean)/std"},
        "classes": CLASSES,
        "params": params,
        "fp32_test_accuracy": round(100.0 * correct / 10000.0, 4),
        "fp32_test_correct": correct,
        "reference_outputs": refs,
        "onnx_ops": ops,
        "onnx_opset": r.get("opset", 13),
        "training": {"script": "scripts/train_models.py", "epochs": epochs, "seed": SEED,
                     "optimizer": opt_name, "batch_size": r["batch"],
                     "augmentation": "random horizontal flip + random crop (pad 2)"
                     if r["augment"] else "none",
                     "torch_version": torch.__version__},
    }
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(card, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output dir (default: %(default)s)")
    ap.add_argument("--data", default=DEFAULT_DATA, help="Fashion-MNIST IDX dir")
    ap.add_argument("--only", choices=sorted(RECIPES), action="append",
                    help="train only this model (repeatable)")
    ap.add_argument("--epochs-scale", type=float, default=1.0,
                    help="multiply every recipe's epoch count (for smoke runs)")
    ap.add_argument("--max-epochs", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-onnx-check", action="store_true",
                    help="skip the numpy re-execution of the exported graphs")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    seed_everything(SEED)
    os.makedirs(args.out, exist_ok=True)

    x_tr, y_tr = load_split(args.data, "train")
    x_te_u8, y_te = load_split(args.data, "t10k")
    x_te = to_input(x_te_u8)
    y_te_t = torch.from_numpy(y_te.astype(np.int64))
    log("data: train %s, test %s, torch %s" % (x_tr.shape, x_te_u8.shape, torch.__version__))
    data = (x_tr, y_tr, x_te, y_te_t)

    summary = []
    for name in (args.only or list(RECIPES)):
        r = RECIPES[name]
        model, epochs, opt_name, ttime = train(name, data, args.epochs_scale, args.max_epochs)
        model.eval()
        correct = evaluate(model, x_te, y_te_t)
        with torch.no_grad():
            ref_logits = model(x_te[:5]).numpy().astype(np.float32)
        refs = [{"test_index": i, "label": int(y_te[i]),
                 "logits": [float(v) for v in ref_logits[i]]} for i in range(5)]
        log("[%s] final test accuracy %.4f%% (%d/10000), trained in %.1fs"
            % (name, correct / 100.0, correct, ttime))

        variants = [(name, False)]
        if name == "resnet":
            variants.append(("resnet_bn", True))
        for vname, keep_bn in variants:
            path = os.path.join(args.out, vname + ".onnx")
            export_onnx(model, path, keep_bn=keep_bn, opset=r.get("opset", 13))
            m, ops, params = onnx_summary(path)
            n_bn = sum(1 for nd in m.graph.node if nd.op_type == "BatchNormalization")
            bad = [o for o in ops if o in ("Shape", "Gather", "Reshape", "Unsqueeze",
                                          "Concat", "Identity", "Dropout")
                   and (o not in ("Reshape",) or "opset" not in r)]
            if bad and not r.get("dynamic_ops"):
                raise SystemExit("%s: unexpected dynamic-shape ops %s" % (vname, bad))
            if keep_bn and n_bn == 0:
                raise SystemExit("%s: BatchNormalization nodes were fused away" % vname)
            if not keep_bn and n_bn != 0:
                raise SystemExit("%s: %d BatchNormalization nodes left unfused" % (vname, n_bn))
            size = os.path.getsize(path)
            if size >= r.get("max_bytes", 2 * 1024 * 1024):
                raise SystemExit("%s: file too large (%d bytes)" % (vname, size))
            if keep_bn:
                for nd in m.graph.node:
                    if nd.op_type == "BatchNormalization":
                        tm = [at.i for at in nd.attribute if at.name == "training_mode"]
                        assert not tm or tm[0] == 0, "BN exported in training mode"
                        assert len(nd.output) == 1, "BN exported with training outputs"
            maxdiff = None
            if not args.no_onnx_check and r.get("numpy_check", True):
                y = run_onnx_numpy(m, x_te[:5].numpy())
                maxdiff = float(np.abs(y - ref_logits.astype(np.float64)).max())
                if maxdiff > 1e-3:
                    raise SystemExit("%s: ONNX/numpy logits differ from PyTorch by %g"
                                     % (vname, maxdiff))
            log("[%s] exported %s: %d bytes, %d params, %d nodes, BN nodes %d, ops %s%s"
                % (vname, path, size, params, len(m.graph.node), n_bn, ", ".join(ops),
                   "" if maxdiff is None else ", numpy-ONNX max |diff| %.2e" % maxdiff))
            arch, desc = r["arch"], r["desc"]
            if keep_bn:
                arch = arch.replace("BN folded into convs",
                                    "BatchNormalization kept as separate nodes")
                desc = ("Same trained weights as resnet.onnx, but exported with "
                        "BatchNormalization nodes kept (not folded into the convs).")
            write_card(args.out, vname, vname + ".onnx", r, ops, params, correct, refs,
                       epochs, opt_name, arch, desc)
            summary.append((vname, params, size, correct / 100.0, ttime, ops))

    log("\nsummary:")
    for vname, params, size, acc, ttime, ops in summary:
        log("  %-12s params %7d  size %8d B  acc %.2f%%  train %.0fs  ops %s"
            % (vname, params, size, acc, ttime, " ".join(ops)))


if __name__ == "__main__":
    sys.exit(main())
