"""FP32 throughput of the reference models in PyTorch, one thread.

Part of bench/run_speed.sh; the best of BENCH_REPEAT (3) windows of
BENCH_SECONDS (3) each. PyTorch runs the same architectures
scripts/train_models.py defines (weights do not change the speed), in eval mode,
traced and frozen with TorchScript, which folds BatchNorm into the convolutions
as the ONNX export does: PyTorch's own inference fast path.
usage: /usr/bin/python3 bench/fp32_torch.py MODEL [BATCH ...]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))


def main():
    name = sys.argv[1]
    batches = [int(b) for b in sys.argv[2:]] or [1, 64]
    seconds = float(os.environ.get("BENCH_SECONDS", "3"))
    repeat = max(1, int(os.environ.get("BENCH_REPEAT", "3")))
    torch.set_num_threads(1)
    import train_models  # the architectures; importing it trains nothing
    from ptq_compare import throughput  # the same timing as PyTorch INT8's
    eager = train_models.RECIPES[name]["make"]().eval()
    for b in batches:
        x = torch.randn(b, 1, 28, 28)
        with torch.no_grad():
            model = torch.jit.freeze(torch.jit.trace(eager, x))
        best = throughput(model, x, seconds, repeat)
        print(f"pytorch {name} batch {b} {best:.1f}")


if __name__ == "__main__":
    main()
