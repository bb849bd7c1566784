"""A nasforge architecture rebuilt as a PyTorch nn.Module, layer for layer like the worker's
LibTorch builders (worker/torch_models.cc), so the worker's trained weights load with
load_state_dict(strict=True) and the logits match.

Self-contained: needs only torch. In an export bundle:

    import model                      # this file, as model.py
    net = model.load(".")             # architecture.json + weights.pt, eval mode
    logits = net(images)              # [batch, C, H, W] float32, normalised as in training

or build an untrained one: model.build(json.load(open("architecture.json"))).
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["build", "load", "input_shape"]


def _act(x, a):
    if a == "relu":
        return F.relu(x)
    if a == "relu6":
        return F.hardtanh(x, 0.0, 6.0)
    if a == "gelu":
        return F.gelu(x)
    return F.silu(x)


class _Conv(nn.Module):
    """A Conv2d one level down (<name>.conv.weight), as the worker's counted conv."""

    def __init__(self, cin, cout, k, stride, pad, groups=1, bias=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=bias)

    def forward(self, x):
        return self.conv(x)


def _same(cin, cout, k, stride, groups=1, bias=False):
    return _Conv(cin, cout, k, stride, k // 2, groups, bias)


class _Linear(nn.Module):
    def __init__(self, cin, cout, bias=True):
        super().__init__()
        self.linear = nn.Linear(cin, cout, bias=bias)

    def forward(self, x):
        return self.linear(x)


# --- MBConv ----------------------------------------------------------------------------------


def _squeeze(cin, ratio):
    return max(1, int(cin * ratio + 1e-9))


class _MBConvBlock(nn.Module):
    def __init__(self, cin, st, stride, act):
        super().__init__()
        self.act = act
        e = st.get("expansion", 0)
        hidden = cin * e
        self.expand = self.expand_bn = None
        if e != 1:
            self.expand = _same(cin, hidden, 1, 1)
            self.expand_bn = nn.BatchNorm2d(hidden)
        self.depthwise = _same(hidden, hidden, st.get("kernel", 0), stride, hidden)
        self.depthwise_bn = nn.BatchNorm2d(hidden)
        self.se_reduce = self.se_expand = None
        if st.get("se_ratio", 0) > 0:
            sq = _squeeze(cin, st["se_ratio"])
            self.se_reduce = _same(hidden, sq, 1, 1, 1, True)
            self.se_expand = _same(sq, hidden, 1, 1, 1, True)
        self.project = _same(hidden, st["channels"], 1, 1)
        self.project_bn = nn.BatchNorm2d(st["channels"])
        self.residual = stride == 1 and cin == st["channels"]

    def forward(self, x):
        h = x
        if self.expand is not None:
            h = _act(self.expand_bn(self.expand(h)), self.act)
        h = _act(self.depthwise_bn(self.depthwise(h)), self.act)
        if self.se_reduce is not None:
            s = F.adaptive_avg_pool2d(h, 1)
            h = h * torch.sigmoid(self.se_expand(_act(self.se_reduce(s), self.act)))
        h = self.project_bn(self.project(h))
        return h + x if self.residual else h


class MBConvNet(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.act = a.get("activation") or "silu"
        sc = a["stem_channels"]
        self.stem = _same(a["in_channels"], sc, 3, a.get("stem_stride") or 1)
        self.stem_bn = nn.BatchNorm2d(sc)
        blocks, c = [], sc
        for st in a.get("stages", []):
            for b in range(st.get("repeats", 0)):
                blocks.append(_MBConvBlock(c, st, st.get("stride", 1) if b == 0 else 1, self.act))
                c = st["channels"]
        self.blocks = nn.Sequential(*blocks)
        self.head = self.head_bn = None
        if a.get("head_channels", 0) > 0:
            self.head = _same(c, a["head_channels"], 1, 1)
            self.head_bn = nn.BatchNorm2d(a["head_channels"])
            c = a["head_channels"]
        self.dropout = nn.Dropout(a.get("dropout", 0.0))
        self.classifier = _Linear(c, a["num_classes"])

    def forward(self, x):
        x = _act(self.stem_bn(self.stem(x)), self.act)
        x = self.blocks(x)
        if self.head is not None:
            x = _act(self.head_bn(self.head(x)), self.act)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(self.dropout(x))


# --- ResNet ----------------------------------------------------------------------------------


class _ResNetBlock(nn.Module):
    def __init__(self, cin, width, stride, bottleneck):
        super().__init__()
        out = 4 * width if bottleneck else width
        if bottleneck:
            self.conv1 = _same(cin, width, 1, 1)
            self.conv2 = _same(width, width, 3, stride)
            self.conv3 = _same(width, out, 1, 1)
            self.bn1, self.bn2, self.bn3 = (nn.BatchNorm2d(width), nn.BatchNorm2d(width),
                                            nn.BatchNorm2d(out))
            self._pairs = [("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")]
        else:
            self.conv1 = _same(cin, width, 3, stride)
            self.conv2 = _same(width, width, 3, 1)
            self.bn1, self.bn2 = nn.BatchNorm2d(width), nn.BatchNorm2d(width)
            self._pairs = [("conv1", "bn1"), ("conv2", "bn2")]
        self.downsample = self.downsample_bn = None
        if stride != 1 or cin != out:
            self.downsample = _Conv(cin, out, 1, stride, 0)
            self.downsample_bn = nn.BatchNorm2d(out)

    def forward(self, x):
        h = x
        for i, (c, b) in enumerate(self._pairs):
            h = getattr(self, b)(getattr(self, c)(h))
            if i + 1 < len(self._pairs):
                h = F.relu(h)
        skip = x if self.downsample is None else self.downsample_bn(self.downsample(x))
        return F.relu(h + skip)


class ResNetNet(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.pool = bool(a.get("stem_pool", False))
        sc = a["stem_channels"]
        self.stem = _same(a["in_channels"], sc, a.get("stem_kernel") or 3, a.get("stem_stride") or 1)
        self.stem_bn = nn.BatchNorm2d(sc)
        bottleneck = a.get("block") == "bottleneck"
        blocks, c = [], sc
        for st in a.get("stages", []):
            for b in range(st.get("blocks", 0)):
                blocks.append(_ResNetBlock(c, st["channels"], st.get("stride", 1) if b == 0 else 1,
                                           bottleneck))
                c = 4 * st["channels"] if bottleneck else st["channels"]
        self.blocks = nn.Sequential(*blocks)
        self.fc = _Linear(c, a["num_classes"])

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        if self.pool:
            x = F.max_pool2d(x, 3, 2, 1)
        x = self.blocks(x)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# --- ConvNeXt --------------------------------------------------------------------------------


def _ln(c):
    return nn.LayerNorm(c, eps=1e-6)


def _channel_norm(ln, x):
    return ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ConvNeXtBlock(nn.Module):
    def __init__(self, c, k, ratio, layer_scale):
        super().__init__()
        self.dwconv = _same(c, c, k, 1, c, True)
        self.norm = _ln(c)
        self.pwconv1 = _Linear(c, ratio * c)
        self.pwconv2 = _Linear(ratio * c, c)
        self.layer_scale = None
        if layer_scale > 0:
            self.layer_scale = nn.Parameter(torch.full((c, 1, 1), float(layer_scale)))

    def forward(self, x):
        h = self.dwconv(x).permute(0, 2, 3, 1)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h)))).permute(0, 3, 1, 2)
        if self.layer_scale is not None:
            h = h * self.layer_scale
        return x + h


class ConvNeXtNet(nn.Module):
    def __init__(self, a):
        super().__init__()
        stages = a["stages"]
        c = stages[0]["channels"]
        k = a.get("kernel") or 7
        ratio = a.get("mlp_ratio") or 4
        ls = a.get("layer_scale") or 1e-6
        p = a["patch_size"]
        self.stem = _Conv(a["in_channels"], c, p, p, 0, 1, True)
        self.stem_norm = _ln(c)
        self._n = len(stages)
        for s, st in enumerate(stages):
            if s > 0:
                setattr(self, "down%d_norm" % s, _ln(c))
                setattr(self, "down%d" % s, _Conv(c, st["channels"], 2, 2, 0, 1, True))
                c = st["channels"]
            setattr(self, "stage%d" % s,
                    nn.Sequential(*[_ConvNeXtBlock(c, k, ratio, ls) for _ in range(st.get("depth", 0))]))
        self.head_norm = _ln(c)
        self.fc = _Linear(c, a["num_classes"])

    def forward(self, x):
        x = _channel_norm(self.stem_norm, self.stem(x))
        for s in range(self._n):
            if s > 0:
                x = getattr(self, "down%d" % s)(_channel_norm(getattr(self, "down%d_norm" % s), x))
            x = getattr(self, "stage%d" % s)(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(self.head_norm(x))


# --- NAS-Bench-201 ---------------------------------------------------------------------------


def _parse_cell(cell):
    # "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|" -> six ops, edges in node order
    ops = []
    for node in cell.strip("|").split("|+|"):
        for edge in node.split("|"):
            ops.append(edge.split("~")[0])
    if len(ops) != 6:
        raise ValueError("nb201 cell must have 6 edges: %r" % cell)
    return ops


class _ReLUConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv = _same(cin, cout, k, stride)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(F.relu(x)))


class _NB201Cell(nn.Module):
    def __init__(self, ops, c):
        super().__init__()
        self.ops = ops
        for e, op in enumerate(ops):
            if op in ("nor_conv_1x1", "nor_conv_3x3"):
                setattr(self, "edge%d" % e, _ReLUConvBN(c, c, 1 if op == "nor_conv_1x1" else 3, 1))

    def _edge(self, e, x):
        op = self.ops[e]
        if op == "none":
            return x.mul(0.0)
        if op == "skip_connect":
            return x
        if op == "avg_pool_3x3":
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        return getattr(self, "edge%d" % e)(x)

    def forward(self, x0):
        n1 = self._edge(0, x0)
        n2 = self._edge(1, x0) + self._edge(2, n1)
        return self._edge(3, x0) + self._edge(4, n1) + self._edge(5, n2)


class _NB201Reduction(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv_a = _ReLUConvBN(cin, cout, 3, 2)
        self.conv_b = _ReLUConvBN(cout, cout, 3, 1)
        self.shortcut = _Conv(cin, cout, 1, 1, 0)

    def forward(self, x):
        return self.conv_b(self.conv_a(x)) + self.shortcut(F.avg_pool2d(x, 2, 2, 0))


class NB201Net(nn.Module):
    def __init__(self, a):
        super().__init__()
        ops = _parse_cell(a["cell"])
        c = a["channels"]
        self.stem = _same(a["in_channels"], c, 3, 1)
        self.stem_bn = nn.BatchNorm2d(c)
        cells = []
        for s in range(3):
            if s > 0:
                cells.append(_NB201Reduction(c, 2 * c))
                c *= 2
            cells += [_NB201Cell(ops, c) for _ in range(a["cells_per_stage"])]
        self.cells = nn.Sequential(*cells)
        self.lastact_bn = nn.BatchNorm2d(c)
        self.classifier = _Linear(c, a["num_classes"])

    def forward(self, x):
        x = self.cells(self.stem_bn(self.stem(x)))
        x = F.relu(self.lastact_bn(x))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


# --- MLP -------------------------------------------------------------------------------------


class MLPNet(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.act = a.get("activation") or "relu"
        self.p = a.get("dropout", 0.0)
        units = a.get("units", [])
        self._n = len(units)
        self._bn = bool(a.get("batch_norm", False))
        c = a["in_features"]
        for i, u in enumerate(units):
            setattr(self, "hidden%d" % i, _Linear(c, u))
            if self._bn:
                setattr(self, "bn%d" % i, nn.BatchNorm1d(u))
            c = u
        self.classifier = _Linear(c, a["num_classes"])

    def forward(self, x):
        x = x.flatten(1)
        for i in range(self._n):
            x = getattr(self, "hidden%d" % i)(x)
            if self._bn:
                x = getattr(self, "bn%d" % i)(x)
            x = F.dropout(_act(x, self.act), self.p, self.training)
        return self.classifier(x)


_BUILDERS = {"mbconv": MBConvNet, "resnet": ResNetNet, "convnext": ConvNeXtNet,
             "nb201": NB201Net, "mlp": MLPNet}


# Kinds registered in code by the program that ran the search (SearchSpace.custom): their
# builders are that program's to give, here as in the worker.
_CUSTOM = {}


def register_custom(kind, build_fn, input_shape_fn):
    """Lets build() and input_shape() handle architectures of custom kind `kind`: both
    functions get the architecture's values as a dict {choice name: int}."""
    _CUSTOM[kind] = (build_fn, input_shape_fn)


def _kind(arch):
    if "custom" in arch:
        k = arch["custom"].get("kind", "")
        if k not in _CUSTOM:
            raise ValueError("custom kind %r has no builder here: call "
                             "nasforge_model.register_custom(%r, build_fn, input_shape_fn) "
                             "first (the kind was registered in code by the program that ran "
                             "the search)" % (k, k))
        return "custom"
    kinds = [k for k in _BUILDERS if k in arch]
    if len(kinds) != 1:
        raise ValueError("architecture must have exactly one of %s" % sorted(_BUILDERS))
    return kinds[0]


def _custom_values(arch):
    return {v["name"]: v.get("value", 0) for v in arch["custom"].get("values", [])}


def build(arch):
    """An untrained nn.Module for `arch` (the dict in architecture.json)."""
    k = _kind(arch)
    if k == "custom":
        return _CUSTOM[arch["custom"]["kind"]][0](_custom_values(arch))
    return _BUILDERS[k](arch[k])


def input_shape(arch):
    """[C, H, W] for image models, [features] for an MLP (batch dimension not included)."""
    k = _kind(arch)
    if k == "custom":
        return list(_CUSTOM[arch["custom"]["kind"]][1](_custom_values(arch)))
    a = arch[k]
    if k == "mlp":
        return [a["in_features"]]
    return [a["in_channels"], a["resolution"], a["resolution"]]


def load(bundle_dir=".", map_location="cpu"):
    """The trained model of an export bundle, in eval mode."""
    with open(os.path.join(bundle_dir, "architecture.json")) as f:
        arch = json.load(f)
    net = build(arch)
    state = torch.load(os.path.join(bundle_dir, "weights.pt"), map_location=map_location)
    net.load_state_dict(state, strict=True)
    return net.eval()
