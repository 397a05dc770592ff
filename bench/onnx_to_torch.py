"""Build an eager-mode-quantizable PyTorch nn.Module from a presso reference ONNX model.

The shipped ONNX models (models/*.onnx, opset 13, BatchNorm already folded into
the convolutions) are the only place the trained weights live, so the PyTorch
side of bench/ptq_compare.py rebuilds the network from the ONNX graph.

The module is laid out the way PyTorch's eager-mode post-training static
quantization (torch.ao.quantization.prepare / convert) wants it:

  * a QuantStub at the input and a DeQuantStub at the output;
  * every compute op is its own registered submodule, so prepare() can attach an
    observer to each one and convert() can swap it for its quantized version;
  * Conv -> Relu becomes torch.ao.nn.intrinsic.ConvReLU2d and Gemm -> Relu becomes
    LinearReLU (what fuse_modules would produce), when the Conv/Gemm output has
    no other reader; Conv -> Clip(0, 6) cannot be fused in eager mode (there is
    no ConvReLU6 intrinsic), so the Clip becomes a separate nn.ReLU6;
  * every Add is its own FloatFunctional (one observer per Add); Add -> Relu
    becomes FloatFunctional.add_relu (quantized add_relu after convert);
  * MaxPool -> nn.MaxPool2d, GlobalAveragePool -> nn.AdaptiveAvgPool2d(1),
    Flatten -> nn.Flatten, which all run on quantized tensors as they are.

Supported ONNX ops: Conv (2-D, symmetric pads, any group count), Gemm (alpha =
beta = 1, transA = 0), Relu, Clip (bounds from Constant nodes or initializers:
[0, 6] -> ReLU6, [0, +inf) -> ReLU), MaxPool, GlobalAveragePool, Add (of two
activations), Flatten, Identity/Dropout (aliases), Constant. Anything else raises
ValueError naming the node.

usage (library): from onnx_to_torch import onnx_to_module
                 net = onnx_to_module("models/mobilenetv2.onnx")
usage (CLI):     /usr/bin/python3 bench/onnx_to_torch.py models/lenet.onnx   # prints the module
"""
import math
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper
import torch
from torch import nn

try:  # torch >= 1.13
    import torch.ao.nn.intrinsic as nni
    from torch.ao.nn.quantized import FloatFunctional
except ImportError:  # older torch
    import torch.nn.intrinsic as nni
    from torch.nn.quantized import FloatFunctional
from torch.ao.quantization import DeQuantStub, QuantStub


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pair_padding(pads, where):
    """ONNX pads [top, left, bottom, right] -> PyTorch (h, w); must be symmetric."""
    if not pads:
        return (0, 0)
    if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
        raise ValueError("%s: asymmetric pads %s are not supported" % (where, list(pads)))
    return (int(pads[0]), int(pads[1]))


class OnnxNet(nn.Module):
    """Runs a list of steps over a dict of named tensors.

    steps: (module key, kind, input names, output name); kind is "call" (module
    applied to the single input), "add" or "add_relu" (FloatFunctional methods)
    or "alias" (no module: output is the input).
    """

    def __init__(self, input_name, output_name, steps, layers):
        super().__init__()
        self.quant = QuantStub()
        self.dequant = DeQuantStub()
        self.layers = nn.ModuleDict(layers)
        self.input_name = input_name
        self.output_name = output_name
        self.steps = steps
        # Last step that reads each tensor, so intermediates are dropped early.
        last = {}
        for i, (_, _, ins, _) in enumerate(steps):
            for t in ins:
                last[t] = i
        self._free_after = [[t for t in ins if last.get(t) == i and t != output_name]
                            for i, (_, _, ins, _) in enumerate(steps)]

    def forward(self, x):
        env = {self.input_name: self.quant(x)}
        for (key, kind, ins, out), dead in zip(self.steps, self._free_after):
            if kind == "call":
                y = self.layers[key](env[ins[0]])
            elif kind == "add":
                y = self.layers[key].add(env[ins[0]], env[ins[1]])
            elif kind == "add_relu":
                y = self.layers[key].add_relu(env[ins[0]], env[ins[1]])
            else:  # alias
                y = env[ins[0]]
            for t in dead:
                del env[t]
            env[out] = y
        return self.dequant(env[self.output_name])


def onnx_to_module(path):
    """Read the ONNX file at path and return an OnnxNet in eval mode (FP32)."""
    model = onnx.load(path)
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    graph_inputs = [i.name for i in g.input if i.name not in consts]
    if len(graph_inputs) != 1 or len(g.output) != 1:
        raise ValueError("%s: expected one input and one output, got %d and %d"
                         % (path, len(graph_inputs), len(g.output)))
    output_name = g.output[0].name

    # Constant nodes first (Clip bounds), and who reads what.
    nodes = []
    for nd in g.node:
        if nd.op_type == "Constant":
            a = _attrs(nd)
            if "value" not in a:
                raise ValueError("node '%s': Constant without a tensor value" % nd.name)
            consts[nd.output[0]] = numpy_helper.to_array(a["value"])
        else:
            nodes.append(nd)
    readers = {}
    for nd in nodes:
        for t in nd.input:
            if t:
                readers.setdefault(t, []).append(nd)

    def sole_relu_reader(tensor):
        """The Relu node that is the only reader of tensor, else None."""
        r = readers.get(tensor, [])
        if len(r) == 1 and r[0].op_type == "Relu" and tensor != output_name:
            return r[0]
        return None

    def weight(name, where):
        if name not in consts:
            raise ValueError("%s: weight '%s' is not an initializer/Constant" % (where, name))
        return torch.from_numpy(np.array(consts[name], dtype=np.float32, copy=True))

    steps, layers, fused_away = [], {}, set()
    counters = {}

    def key_for(kind):
        counters[kind] = counters.get(kind, 0) + 1
        return "%s_%d" % (kind, counters[kind])

    for nd in nodes:
        if id(nd) in fused_away:
            continue
        op, a = nd.op_type, _attrs(nd)
        where = "node '%s' (%s)" % (nd.name or nd.output[0], op)
        out = nd.output[0]
        if op == "Conv":
            w = weight(nd.input[1], where)
            b = weight(nd.input[2], where) if len(nd.input) > 2 and nd.input[2] else None
            if w.dim() != 4:
                raise ValueError("%s: only 2-D convolutions are supported" % where)
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise ValueError("%s: auto_pad is not supported" % where)
            groups = int(a.get("group", 1))
            cout, cin_g, kh, kw = w.shape
            if tuple(a.get("kernel_shape", (kh, kw))) != (kh, kw):
                raise ValueError("%s: kernel_shape does not match the weight" % where)
            conv = nn.Conv2d(cin_g * groups, cout, (kh, kw),
                             stride=tuple(a.get("strides", (1, 1))),
                             padding=_pair_padding(a.get("pads"), where),
                             dilation=tuple(a.get("dilations", (1, 1))),
                             groups=groups, bias=b is not None)
            with torch.no_grad():
                conv.weight.copy_(w)
                if b is not None:
                    conv.bias.copy_(b)
            relu = sole_relu_reader(out)
            if relu is not None:
                fused_away.add(id(relu))
                k = key_for("conv_relu")
                layers[k] = nni.ConvReLU2d(conv, nn.ReLU())
                out = relu.output[0]
            else:
                k = key_for("conv")
                layers[k] = conv
            steps.append((k, "call", [nd.input[0]], out))
        elif op == "Gemm":
            if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
                raise ValueError("%s: only alpha = beta = 1, transA = 0 is supported" % where)
            w = weight(nd.input[1], where)
            if not a.get("transB", 0):
                w = w.t().contiguous()
            b = weight(nd.input[2], where) if len(nd.input) > 2 and nd.input[2] else None
            if b is not None and b.numel() != w.shape[0]:
                raise ValueError("%s: bias of shape %s is not per output" % (where, tuple(b.shape)))
            lin = nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
            with torch.no_grad():
                lin.weight.copy_(w)
                if b is not None:
                    lin.bias.copy_(b.reshape(-1))
            relu = sole_relu_reader(out)
            if relu is not None:
                fused_away.add(id(relu))
                k = key_for("linear_relu")
                layers[k] = nni.LinearReLU(lin, nn.ReLU())
                out = relu.output[0]
            else:
                k = key_for("linear")
                layers[k] = lin
            steps.append((k, "call", [nd.input[0]], out))
        elif op == "Add":
            if any(t in consts for t in nd.input) or len(nd.input) != 2:
                raise ValueError("%s: only the sum of two activations is supported" % where)
            k = key_for("add")
            layers[k] = FloatFunctional()
            relu = sole_relu_reader(out)
            if relu is not None:
                fused_away.add(id(relu))
                steps.append((k, "add_relu", list(nd.input), relu.output[0]))
            else:
                steps.append((k, "add", list(nd.input), out))
        elif op == "Relu":
            k = key_for("relu")
            layers[k] = nn.ReLU()
            steps.append((k, "call", [nd.input[0]], out))
        elif op == "Clip":
            lo = float(consts[nd.input[1]]) if len(nd.input) > 1 and nd.input[1] else -math.inf
            hi = float(consts[nd.input[2]]) if len(nd.input) > 2 and nd.input[2] else math.inf
            if (lo, hi) == (0.0, 6.0):
                k = key_for("relu6")
                layers[k] = nn.ReLU6()
            elif lo == 0.0 and hi == math.inf:
                k = key_for("relu")
                layers[k] = nn.ReLU()
            else:
                raise ValueError("%s: Clip(%g, %g) is not supported (only ReLU6/ReLU)"
                                 % (where, lo, hi))
            steps.append((k, "call", [nd.input[0]], out))
        elif op == "MaxPool":
            if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
                raise ValueError("%s: auto_pad is not supported" % where)
            ks = tuple(a["kernel_shape"])
            k = key_for("maxpool")
            layers[k] = nn.MaxPool2d(ks, stride=tuple(a.get("strides", (1,) * len(ks))),
                                     padding=_pair_padding(a.get("pads"), where),
                                     dilation=tuple(a.get("dilations", (1,) * len(ks))),
                                     ceil_mode=bool(a.get("ceil_mode", 0)))
            steps.append((k, "call", [nd.input[0]], out))
        elif op == "GlobalAveragePool":
            k = key_for("gap")
            layers[k] = nn.AdaptiveAvgPool2d(1)
            steps.append((k, "call", [nd.input[0]], out))
        elif op == "Flatten":
            axis = int(a.get("axis", 1))
            if axis < 1:
                raise ValueError("%s: Flatten axis %d is not supported" % (where, axis))
            k = key_for("flatten")
            layers[k] = nn.Flatten(axis)
            steps.append((k, "call", [nd.input[0]], out))
        elif op in ("Identity", "Dropout"):
            steps.append(("", "alias", [nd.input[0]], out))
        else:
            raise ValueError("%s: op %s is not supported by onnx_to_torch" % (where, op))

    net = OnnxNet(graph_inputs[0], output_name, steps, layers)
    return net.eval()


def main():
    for path in sys.argv[1:]:
        net = onnx_to_module(path)
        print(path)
        print(net)
        with torch.no_grad():
            y = net(torch.zeros(2, 1, 28, 28))
        print("output", tuple(y.shape))


if __name__ == "__main__":
    main()
