"""FP32 training throughput of a presso reference model in PyTorch.

Part of bench/run_finetune.sh: the same network presso trains (rebuilt from
the ONNX file by bench/onnx_to_torch.py: BatchNorm folded, as presso trains
it), the same batch and thread count, random images and labels, cross-entropy
and SGD with momentum 0.9, eager mode (what a PyTorch fine-tune runs).
Prints "pytorch-train MODEL batch B threads T IMAGES_PER_S", the best of
REPEAT windows of STEPS steps after one warm-up window.
usage: /usr/bin/python3 bench/train_torch.py MODEL.onnx BATCH THREADS [STEPS] [REPEAT]
"""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
from onnx_to_torch import onnx_to_module  # noqa: E402


def main():
    path, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    repeat = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    net = onnx_to_module(path)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, nesterov=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    best = 0.0
    for r in range(repeat + 1):
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        if r > 0:
            best = max(best, steps * batch / dt)
    name = os.path.basename(path)
    print(f"pytorch-train {name} batch {batch} threads {threads} {best:.1f}")


if __name__ == "__main__":
    main()
