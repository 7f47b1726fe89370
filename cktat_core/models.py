"""The networks of the papers, laid out so that widely shared checkpoints load with strict=True.

- `resnet18`: the CIFAR ResNet-18 of kuangliu/pytorch-cifar (conv1, bn1, layer1..layer4, linear), used by
  TRADES, MART, LBGAT, HAT and the CKTAT tables; 3x3 stem, no max-pool, 4x4 average pool.
- `preact_resnet18`: pre-activation ResNet-18 as in Rice et al. (final bn before pooling).
- `wrn34_10`, `wrn28_10`: WideResNet of the TRADES code (conv1, block1..block3, bn1, fc). The TRADES
  WRN-34-10 registers an unused `sub_block1`; `build_model("wrn34_10", sub_block1=True)` keeps it so those
  checkpoints load strictly. It never takes part in the forward pass.
- `small_cnn`: a four-layer CNN for CPU runs (61k parameters at width 16, 242k at width 32).

Inputs are images in [0, 1]; no normalisation happens outside a model. `Normalized` puts one inside.

`fold_batchnorm` gives the attacks an eval-mode view of a network with every BatchNorm that follows a
convolution folded into it: the same function with less work per forward and backward pass.
"""

from __future__ import annotations

import weakref
from collections import Counter

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_weights

from .errors import ConfigError


# --------------------------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class PreActBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out) if hasattr(self, "shortcut") else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, num_classes: int = 10, preact: bool = False):
        super().__init__()
        self.preact = preact
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        if not preact:
            self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], 1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], 2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], 2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], 2)
        if preact:
            self.bn = nn.BatchNorm2d(512)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.conv1(x)
        if not self.preact:
            out = F.relu(self.bn1(out))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        if self.preact:
            out = F.relu(self.bn(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


# ----------------------------------------------------------------------------------------- WideResNet
class WideBlock(nn.Module):
    """Pre-activation wide block with the TRADES code's parameter names."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride, bias=False)

    def forward(self, x):
        o = self.relu1(self.bn1(x))
        shortcut = x if self.equal_in_out else self.convShortcut(o)
        out = self.relu2(self.bn2(self.conv1(o)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return shortcut + self.conv2(out)


class NetworkBlock(nn.Module):
    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0):
        super().__init__()
        self.layer = nn.Sequential(
            *[WideBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, drop_rate)
              for i in range(n)]
        )

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, depth: int = 34, widen_factor: int = 10, num_classes: int = 10,
                 drop_rate: float = 0.0, sub_block1: bool = False):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError("WideResNet depth must be 6n+4")
        n = (depth - 4) // 6
        ch = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(3, ch[0], 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, ch[0], ch[1], 1, drop_rate)
        if sub_block1:  # registered but unused, as in the TRADES code
            self.sub_block1 = NetworkBlock(n, ch[0], ch[1], 1, drop_rate)
        self.block2 = NetworkBlock(n, ch[1], ch[2], 2, drop_rate)
        self.block3 = NetworkBlock(n, ch[2], ch[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(ch[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


# ---------------------------------------------------------------------------------------- small CNN
class SmallCNN(nn.Module):
    """Four 3x3 conv-BN-ReLU layers (widths w, 2w, 4w, 4w; the last three stride 2), average pool, linear."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        w = width
        chans = [(3, w, 1), (w, 2 * w, 2), (2 * w, 4 * w, 2), (4 * w, 4 * w, 2)]
        layers = []
        for cin, cout, stride in chans:
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(4 * w, num_classes)

    def forward(self, x):
        return self.linear(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class Normalized(nn.Module):
    """model(normalise(x)): keeps the [0, 1] input convention while the network sees standardised pixels."""

    def __init__(self, model: nn.Module, mean, std):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x):
        return self.model((x - self.mean) / self.std)


class InputQuantized(nn.Module):
    """A deliberately gradient-masked model, for teaching the evaluation checks: the input is re-quantised to
    `levels` steps with torch.round, whose gradient is zero almost everywhere, so every gradient attack sees
    a zero gradient while the predictions hardly change. It looks robust to PGD and is not."""

    def __init__(self, model: nn.Module, levels: int = 255):
        super().__init__()
        self.model, self.levels = model, levels

    def forward(self, x):
        return self.model(torch.round(x * self.levels) / self.levels)


# Modules whose forward is a pure function of the input and the weights, so torch.fx may trace through them
# (`fold_batchnorm`: tracing runs `forward` once on symbolic values and replays the recorded operations
# afterwards). torch.nn's own layers are not traced through but called as they are; `nn.Sequential` only
# chains its children.
PURE_FORWARD: set[type] = {nn.Sequential, BasicBlock, PreActBlock, ResNet, WideBlock, NetworkBlock, WideResNet,
                           SmallCNN, Normalized, InputQuantized}

SMALL_CNN_WIDTH = 16  # the small CNN's width where a config leaves it at 0

MODELS = {
    "resnet18": lambda num_classes, **kw: ResNet(BasicBlock, [2, 2, 2, 2], num_classes),
    "preact_resnet18": lambda num_classes, **kw: ResNet(PreActBlock, [2, 2, 2, 2], num_classes, preact=True),
    "wrn34_10": lambda num_classes, sub_block1=False, **kw: WideResNet(34, 10, num_classes, sub_block1=sub_block1),
    "wrn28_10": lambda num_classes, **kw: WideResNet(28, 10, num_classes),
    "small_cnn": lambda num_classes, width=0, **kw: SmallCNN(num_classes, width or SMALL_CNN_WIDTH),
}


def build_model(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    """A freshly initialised network. `kwargs`: `width` (small_cnn), `sub_block1` (wrn34_10)."""
    if name not in MODELS:
        raise ConfigError("model", f"must be one of {', '.join(MODELS)}", name)
    return MODELS[name](num_classes, **kwargs)


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------ BatchNorm folding
class _FoldPlan:
    """A traced copy of a network's graph without the BatchNorms that follow a convolution, run by an
    `fx.GraphModule` that shares every module with the network except the folded convolutions."""

    def __init__(self, model: nn.Module, graph: fx.Graph, pairs: dict[str, str]):
        self.pairs = pairs  # conv target -> the BatchNorm target folded into it
        self.signature = _signature(model)
        modules = dict(model.named_modules())
        self.folded = {c: _folded_conv(modules[c], modules[b]) for c, b in pairs.items()}
        root = {n.target: self.folded.get(n.target) or model.get_submodule(n.target)
                for n in graph.nodes if n.op == "call_module"}
        for n in graph.nodes:
            if n.op == "get_attr":
                owner, _, name = n.target.rpartition(".")
                root[n.target] = getattr(model.get_submodule(owner) if owner else model, name)
        self.module = fx.GraphModule(root, graph)
        self.module.training = False

    def refresh(self, model: nn.Module) -> None:
        """Fold the network's current weights and BatchNorm statistics."""
        modules = dict(model.named_modules())
        with torch.no_grad():
            for c, b in self.pairs.items():
                conv, bn, folded = modules[c], modules[b], self.folded[c]
                w, bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                               bn.weight, bn.bias)
                folded.weight = nn.Parameter(w.detach(), requires_grad=False)
                folded.bias = nn.Parameter(bias.detach(), requires_grad=False)


_PLAIN = (bool, int, float, str, type(None))


def _value(v):
    """What a traced graph may have captured of an attribute: a plain value itself, anything else by identity."""
    if isinstance(v, _PLAIN):
        return v
    if isinstance(v, (tuple, list)) and all(isinstance(e, _PLAIN) for e in v):
        return tuple(v)
    return id(v)


def _signature(model: nn.Module) -> tuple:
    """Everything a traced graph of `model` depends on besides tensor contents: each module's identity, the
    identity of each parameter and buffer (`model.mean = new_tensor` replaces a buffer; `.copy_` does not), and
    the value of each public plain attribute (quantisation levels, a recovery mode, a number of classes), which
    tracing bakes into the graph as a constant. The train/eval flag is left out (checked on its own)."""
    return tuple((id(m), tuple((k, id(t)) for k, t in m._parameters.items()),
                  tuple((k, id(t)) for k, t in m._buffers.items()),
                  tuple((k, _value(v)) for k, v in m.__dict__.items() if not k.startswith("_") and k != "training"))
                 for m in model.modules())


def _folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """An empty convolution of `conv`'s shape with a bias (`refresh` fills it). skip_init: no weights are drawn,
    so building a view never moves the random number generator (resumed runs stay exact)."""
    folded = nn.utils.skip_init(nn.Conv2d, conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                conv.padding, conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                                device=conv.weight.device, dtype=conv.weight.dtype)
    return folded.requires_grad_(False).eval()


_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks")
_MODULE_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _traceable(model: nn.Module) -> bool:
    """Every module fx would trace through is known to be pure, every module is in eval mode, and no forward or
    backward hook, on a module or global, would be skipped (a folded pair runs neither module's hooks) or run
    at trace time only."""
    tracer = fx.Tracer()
    if any(getattr(torch.nn.modules.module, name, None) for name in _GLOBAL_HOOKS):
        return False
    return all(not m.training and (type(m) in PURE_FORWARD or tracer.is_leaf_module(m, ""))
               and not any(getattr(m, h, None) for h in _MODULE_HOOKS) for m in model.modules())


def _plan(model: nn.Module) -> _FoldPlan | None:
    """Trace `model` (in eval mode) and find each Conv2d whose only consumer is a BatchNorm2d with running
    statistics; None when nothing folds or the network may not be traced (`_traceable`) or cannot be."""
    if not any(type(m) is nn.BatchNorm2d for m in model.modules()) or not _traceable(model):
        return None
    try:
        graph = fx.Tracer().trace(model)
    except Exception:  # data-dependent control flow and the like: attack the network as it is
        return None
    modules = dict(model.named_modules())
    calls = Counter(n.target for n in graph.nodes if n.op == "call_module")
    attrs = [n.target for n in graph.nodes if n.op == "get_attr"]
    pairs = {}
    for node in list(graph.nodes):
        bn = modules.get(node.target) if node.op == "call_module" else None
        src = node.args[0] if node.args else None
        if (type(bn) is not nn.BatchNorm2d or not bn.track_running_stats or bn.running_mean is None
                or not isinstance(src, fx.Node) or src.op != "call_module" or len(src.users) != 1
                or type(modules.get(src.target)) is not nn.Conv2d or src.target in pairs):
            continue
        if calls[src.target] > 1 or any(a.startswith(src.target + ".") for a in attrs):
            continue  # the convolution is also called, or its weights read, elsewhere: there it must stay as is
        pairs[src.target] = node.target
        node.replace_all_uses_with(src)
        graph.erase_node(node)
    return _FoldPlan(model, graph, pairs) if pairs else None


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """The eval-mode network `model` computes, with every BatchNorm2d that directly follows a Conv2d folded into
    that convolution: w' = w * g / sqrt(v + e), b' = (b - m) * g / sqrt(v + e) + beta, from the running
    statistics (m, v) and affine parameters (g, beta). The function is the same (up to float rounding) and a
    forward plus backward pass does less work: the attacks run on this view (`benchmarks/bench_attacks.py` and
    `bench_core.py` measure the gain).

    The view shares every other module with `model` and is rebuilt from its current weights at every call, so
    it follows training. Its folded weights carry no gradient; use it for gradients with respect to the input
    only. `model` itself is returned when it or any submodule is in train mode (BatchNorm then uses batch
    statistics), has nothing to fold, carries forward or backward hooks on a module or globally (they would not
    run, or not for the folded modules), contains a module whose `forward` is not
    known to be pure (a class outside torch.nn and `PURE_FORWARD`: tracing would run its side effects once,
    at trace time; add a class there once you know it is safe), or cannot be traced by torch.fx. In pre-activation networks (`preact_resnet18`, the
    WideResNets) only the BatchNorm between a block's two convolutions folds; the one on the residual sum does
    not, so they gain little. A convolution called at more than one place, or whose weights `forward` reads
    directly, is not folded (its other uses need the unfolded weights). The traced graph is cached per network
    and retraced when a module, parameter or buffer is replaced or a public plain attribute of a module changes
    (`_signature`: the constants tracing captured, such as `InputQuantized.levels` or `Recovered.how`);
    in-place changes to tensors reach the view without a retrace.
    """
    if not _traceable(model):
        return model
    plan = _PLANS.get(model, False)
    if plan is False or (plan is not None and plan.signature != _signature(model)):
        plan = _PLANS[model] = _plan(model)
    if plan is None:
        return model
    plan.refresh(model)
    return plan.module
