"""Checks a model written by `presso compress -o X.onnx` with onnx.checker (full
check, shape inference included) and summarises its QDQ form.
Part of bench/run_compress.sh; needs Debian's python3-onnx (run with /usr/bin/python3).
usage: /usr/bin/python3 bench/onnx_check.py MODEL.onnx
prints "onnx-check <model> ok opset <v> nodes <n> qdq <pairs> weights-dq <n>"."""
import collections
import os
import sys

import onnx


def main():
    path = sys.argv[1]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    ops = collections.Counter(n.op_type for n in model.graph.node)
    inits = {t.name for t in model.graph.initializer}
    weight_dq = sum(1 for n in model.graph.node
                    if n.op_type == "DequantizeLinear" and n.input[0] in inits)
    opset = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    print("onnx-check %s ok opset %s nodes %d qdq %d weights-dq %d" % (
        os.path.basename(path), opset[0] if opset else "?", len(model.graph.node),
        ops["QuantizeLinear"], weight_dq))


if __name__ == "__main__":
    main()
