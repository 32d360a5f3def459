"""Filter-level pruning: channel groups, channel selection (ThiNet and L1), physical removal,
and operation / weight-bit counters.

The network is traced with ``torch.fx`` and every tensor is assigned a *channel space*
(dimension 1 of an (N, C, ...) tensor, or of an (N, C) vector):

- a Conv2d (groups=1) or Linear reading an (N, C) input *consumes* its input space (input
  channels = dim 1 of its weight) and *produces* a new space (output channels = dim 0);
- BatchNorm *follows* its input space (its per-channel statistics and affine belong to it);
- element-wise operations, pooling and a flatten of a 1x1 map keep the space;
- an addition (a residual shortcut) ties the spaces of its operands into one *group*: the
  channels of all producers of a group are removed together, or not at all;
- the network input and output, concatenations, grouped convolutions and anything unknown
  freeze the spaces they touch (never pruned).

Pruning a group keeps a sorted subset of its channels: the producers' filters (and biases),
the followers' BatchNorm entries and the consumers' input slices are cut out of the tensors of
a deep copy of the model, so the result is the same class with smaller parameters.

Selection: ``l1`` keeps the filters with the largest L1 norm (summed over the producers of
a group); ``thinet`` (Luo et al., ICCV 2017) removes, greedily, the channel whose removal
least increases the squared error of the consumers' outputs, estimated on sampled output
positions of real activations, then optionally rescales the kept input channels of each
consumer by least squares.
"""

from __future__ import annotations

import copy
import heapq
import math
import operator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from ..errors import HdlgenError

METHODS = ("thinet", "l1")
MODES = ("layer", "global")
SCOPES = ("all", "inner")

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)
_ELEMENTWISE = {
    torch.relu, F.relu, torch.sigmoid, torch.tanh, F.hardtanh, torch.sign, torch.clamp, torch.abs,
    torch.neg, F.dropout, F.relu6, F.leaky_relu, F.gelu, F.silu, operator.neg,
}
_ELEMENTWISE_METHODS = {"relu", "sigmoid", "tanh", "sign", "clamp", "clamp_", "abs", "neg", "to",
                        "float", "double", "contiguous", "relu_", "type_as", "detach"}
_POOLING = {F.avg_pool2d, F.max_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d, torch.mean,
            torch.sum, torch.amax}
_POOLING_METHODS = {"mean", "sum", "amax"}
_RESHAPE = {torch.flatten, torch.reshape, torch.squeeze}
_RESHAPE_METHODS = {"flatten", "view", "reshape", "squeeze"}
_TIE = {operator.add, operator.iadd, operator.sub, operator.isub, torch.add, torch.sub}
_SCALE = {operator.mul, operator.imul, operator.truediv, operator.itruediv, torch.mul, torch.div}


@dataclass
class ChannelGroup:
    """Channels that must be pruned together."""

    index: int
    size: int
    producers: list = field(default_factory=list)   # Conv2d / Linear names (weight dim 0)
    followers: list = field(default_factory=list)   # BatchNorm names
    consumers: list = field(default_factory=list)   # Conv2d / Linear names (weight dim 1)
    frozen: list = field(default_factory=list)      # reasons it may not be pruned

    @property
    def prunable(self) -> bool:
        return not self.frozen and bool(self.producers) and bool(self.consumers)

    @property
    def tied(self) -> bool:
        """True when a shortcut ties more than one producer's output channels together."""
        return len(self.producers) > 1


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return isinstance(m, (nn.Conv2d, nn.Linear) + _BN) or not any(True for _ in m.children())


class _Spaces:
    def __init__(self):
        self.parent, self.size = [], []
        self.producers, self.followers, self.consumers, self.frozen = [], [], [], []

    def new(self, size, producer=None, frozen=None):
        i = len(self.parent)
        self.parent.append(i)
        self.size.append(size)
        self.producers.append([producer] if producer else [])
        self.followers.append([])
        self.consumers.append([])
        self.frozen.append([frozen] if frozen else [])
        return i

    def find(self, i):
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a, b):
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        if self.size[a] != self.size[b]:
            raise HdlgenError(f"cannot tie channel spaces of sizes {self.size[a]} and {self.size[b]}")
        self.parent[b] = a
        for lst in (self.producers, self.followers, self.consumers, self.frozen):
            lst[a].extend(lst[b])
        return a

    def freeze(self, i, reason):
        self.frozen[self.find(i)].append(reason)


def _trace(model, example):
    graph = _Tracer().trace(model)
    gm = fx.GraphModule(model, graph)
    from torch.fx.passes.shape_prop import ShapeProp

    was = model.training
    gm.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.as_tensor(example).to(next(model.parameters()).device))
    model.train(was)
    return gm


def _shape(node):
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None


def channel_groups(model, example) -> list:
    """The :class:`ChannelGroup` list of ``model``, traced on the input batch ``example``."""
    gm = _trace(model, example)
    modules = dict(gm.named_modules())
    sp = _Spaces()
    space = {}   # node -> space index (or None for non-tensors)
    uses = {}

    def of(arg):
        return space.get(arg) if isinstance(arg, fx.Node) else None

    def tensor_args(node):
        out = []
        for a in list(node.args) + list(node.kwargs.values()):
            for b in (a if isinstance(a, (list, tuple)) else [a]):
                if isinstance(b, fx.Node) and space.get(b) is not None:
                    out.append(b)
        return out

    def freeze_all(node, reason):
        for a in tensor_args(node):
            sp.freeze(space[a], reason)

    def fresh(node, reason):
        shape = _shape(node)
        if shape is None or len(shape) < 2:
            return None
        return sp.new(shape[1], frozen=reason)

    def keeps_channels(node, src, flat_only=False):
        si, so = _shape(src), _shape(node)
        if si is None or so is None or len(si) < 2 or len(so) < 2 or si[:2] != so[:2]:
            return False
        return not flat_only or math.prod(si[2:]) == 1

    for node in gm.graph.nodes:
        op, target = node.op, node.target
        if op == "placeholder":
            s = fresh(node, "network input")
            space[node] = s
            continue
        if op == "get_attr":
            space[node] = None
            continue
        if op == "output":
            freeze_all(node, "network output")
            continue
        args = tensor_args(node)
        first = args[0] if args else None
        if op == "call_module":
            m = modules[target]
            uses[target] = uses.get(target, 0) + 1
            if uses[target] > 1:
                freeze_all(node, f"{target} is called more than once")
                space[node] = fresh(node, f"{target} is called more than once")
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                grouped = isinstance(m, nn.Conv2d) and m.groups != 1
                flat = isinstance(m, nn.Linear) and len(_shape(first) or ()) != 2
                if first is None or grouped or flat:
                    why = f"{target}: grouped convolution" if grouped else f"{target}: input layout"
                    freeze_all(node, why)
                    space[node] = fresh(node, why)
                else:
                    sp.consumers[sp.find(space[first])].append(target)
                    out = m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
                    space[node] = sp.new(out, producer=target)
            elif isinstance(m, _BN) and first is not None and len(args) == 1:
                sp.followers[sp.find(space[first])].append(target)
                space[node] = space[first]
            elif first is not None and len(args) == 1 and not any(True for _ in m.parameters()) \
                    and (keeps_channels(node, first) or _shape(node) == _shape(first)):
                space[node] = space[first]
            else:
                freeze_all(node, f"{target}: unsupported module {type(m).__name__}")
                space[node] = fresh(node, f"{target}: unsupported module")
            continue
        if op in ("call_function", "call_method"):
            name = target if op == "call_method" else getattr(target, "__name__", str(target))
            if op == "call_method" and target == "size" or name == "getattr":
                space[node] = None
                continue
            if not args:
                space[node] = None if _shape(node) is None else fresh(node, f"{name}: constant")
                continue
            same = _shape(node) == _shape(first)
            if (target in _TIE or target in {"add", "add_", "sub", "sub_"}) and len(args) == 2 and same \
                    and _shape(args[0]) == _shape(args[1]):
                space[node] = sp.union(space[args[0]], space[args[1]])
                continue
            if len(args) == 1 and (target in _ELEMENTWISE or target in _ELEMENTWISE_METHODS
                                   or target in _SCALE or target in _TIE
                                   or target in {"mul", "div", "add", "sub"}) and same:
                space[node] = space[first]
                continue
            if len(args) == 1 and (target in _POOLING or target in _POOLING_METHODS) \
                    and keeps_channels(node, first):
                space[node] = space[first]
                continue
            if len(args) == 1 and (target in _RESHAPE or target in _RESHAPE_METHODS) \
                    and keeps_channels(node, first, flat_only=True):
                space[node] = space[first]
                continue
            freeze_all(node, f"{name}: operation that may move channels")
            space[node] = fresh(node, f"{name}: operation that may move channels")
            continue
        raise HdlgenError(f"unexpected traced node {node.op} {node.target}")

    groups = []
    for i in sorted({sp.find(i) for i in range(len(sp.parent))}):
        if not sp.producers[i] and not sp.consumers[i] and not sp.followers[i]:
            continue
        groups.append(ChannelGroup(len(groups), sp.size[i], list(sp.producers[i]), list(sp.followers[i]),
                                   list(sp.consumers[i]), list(dict.fromkeys(sp.frozen[i]))))
    return groups


# -- physical removal ---------------------------------------------------------------------------

def _cut(module, attr, index, dim):
    t = getattr(module, attr, None)
    if t is None:
        return
    new = t.detach().index_select(dim, index).clone()
    if isinstance(t, nn.Parameter):
        setattr(module, attr, nn.Parameter(new, requires_grad=t.requires_grad))
    else:
        module._buffers[attr] = new


def prune_channels(model, groups, keep: dict):
    """A deep copy of ``model`` in which each group ``g`` (``keep`` maps group index -> kept
    channel indices) has only the kept channels: smaller tensors, same class."""
    new = copy.deepcopy(model)
    by_index = {g.index: g for g in groups}
    for gi, idx in keep.items():
        g = by_index[gi]
        idx = sorted(int(i) for i in idx)
        if not g.prunable and len(idx) != g.size:
            raise HdlgenError(f"channel group {gi} ({', '.join(g.producers) or 'no producer'}) "
                              f"may not be pruned: {'; '.join(g.frozen) or 'no producer or consumer'}")
        if not idx or idx[0] < 0 or idx[-1] >= g.size or len(set(idx)) != len(idx):
            raise HdlgenError(f"channel group {gi}: kept channels must be distinct indices in 0 .. "
                              f"{g.size - 1}, at least one")
        if len(idx) == g.size:
            continue
        index = torch.tensor(idx, dtype=torch.long)
        for name in g.producers:
            m = new.get_submodule(name)
            _cut(m, "weight", index, 0)
            _cut(m, "bias", index, 0)
            if isinstance(m, nn.Conv2d):
                m.out_channels = len(idx)
            else:
                m.out_features = len(idx)
        for name in g.followers:
            m = new.get_submodule(name)
            for attr in ("weight", "bias", "running_mean", "running_var"):
                _cut(m, attr, index, 0)
            m.num_features = len(idx)
        for name in g.consumers:
            m = new.get_submodule(name)
            _cut(m, "weight", index, 1)
            if isinstance(m, nn.Conv2d):
                m.in_channels = len(idx)
            else:
                m.in_features = len(idx)
    return new


# -- selection ----------------------------------------------------------------------------------

def _weight(m):
    """The weight a layer really multiplies with (its binarized one when it has one)."""
    fn = getattr(m, "effective_weight", None)
    return fn() if callable(fn) else m.weight


def l1_order(model, group):
    """``(order, costs)``: channels sorted by increasing L1 norm of their filters (summed over
    the group's producers, each normalized by its filter size) and each one's norm relative to
    the group's mean norm."""
    total = torch.zeros(group.size, dtype=torch.float64)
    for name in group.producers:
        w = model.get_submodule(name).weight.detach().double()
        total += w.abs().reshape(w.shape[0], -1).mean(1).cpu()
    norm = total / total.mean().clamp_min(1e-30)
    order = torch.argsort(norm, stable=True)
    return order.tolist(), norm[order].tolist()


def _sample_contributions(m, x, count, gen):
    """(count, C) per-input-channel contributions to ``count`` random outputs of layer ``m``."""
    w = _weight(m).detach().cpu()
    x = x.detach().cpu()
    if isinstance(m, nn.Linear):
        n = x.shape[0]
        rows = torch.randint(0, n, (count,), generator=gen)
        outs = torch.randint(0, w.shape[0], (count,), generator=gen)
        return (x[rows] * w[outs]).double()
    pad = m.padding if isinstance(m.padding, tuple) else (m.padding,) * 2
    value = float(getattr(m, "pad_value", 0.0))
    if any(pad):
        x = F.pad(x, (pad[1], pad[1], pad[0], pad[0]), value=value)
    n, c, h, wd = x.shape
    kh, kw = m.kernel_size
    (sh, sw), (dh, dw) = m.stride, m.dilation
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    rows = torch.randint(0, n, (count,), generator=gen)
    pos = torch.randint(0, oh * ow, (count,), generator=gen)
    outs = torch.randint(0, w.shape[0], (count,), generator=gen)
    iy, ix = (pos // ow) * sh, (pos % ow) * sw
    kk = kh * kw
    patches = torch.stack([x[rows, :, iy + dh * a, ix + dw * b] for a in range(kh) for b in range(kw)], -1)
    return (patches * w[outs].reshape(count, c, kk)).sum(-1).double()


@torch.no_grad()
def consumer_samples(model, groups, images, *, samples: int = 4096, batch: int = 128, seed: int = 0):
    """Per consumer layer of the given groups, sampled per-input-channel contributions
    ``(samples, C)`` computed from the model's activations on ``images`` (eval mode)."""
    names = sorted({c for g in groups for c in g.consumers})
    gen = torch.Generator().manual_seed(seed)
    nb = max(1, math.ceil(len(images) / batch))
    per = max(1, math.ceil(samples / nb))
    got = {n: [] for n in names}
    hooks = []
    for n in names:
        m = model.get_submodule(n)
        hooks.append(m.register_forward_pre_hook(
            lambda mod, inp, n=n: got[n].append(_sample_contributions(mod, inp[0], per, gen))))
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for i in range(0, len(images), batch):
            model(torch.as_tensor(np.asarray(images[i:i + batch])).to(device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    return {n: torch.cat(v)[:samples] for n, v in got.items()}


def thinet_order(group, contributions):
    """``(order, costs)``: ThiNet's greedy removal order of the group's channels and the
    normalized reconstruction error added by each removal.

    ``contributions`` maps each consumer to its ``(M, C)`` sampled contributions. Each consumer's
    samples are scaled by the root mean square of its sampled outputs, so consumers count alike.
    Removing set T costs ``sum over samples of (sum over c in T of z[c])^2 / M``.
    """
    zs = []
    for name in group.consumers:
        z = contributions[name]
        rms = z.sum(1).pow(2).mean().sqrt().clamp_min(1e-30)
        zs.append(z / rms)
    z = torch.cat(zs)
    m = z.shape[0]
    colsq = z.pow(2).sum(0)
    residual = torch.zeros(m, dtype=z.dtype)
    removed = torch.zeros(group.size, dtype=torch.bool)
    order, costs, err = [], [], 0.0
    for _ in range(group.size):
        score = 2 * (z.t() @ residual) + colsq
        score[removed] = float("inf")
        c = int(torch.argmin(score))
        removed[c] = True
        residual += z[:, c]
        new = float(residual.pow(2).sum()) / m
        order.append(c)
        costs.append(new - err)
        err = new
    return order, costs


@torch.no_grad()
def rescale_consumers(pruned, group, keep, contributions):
    """ThiNet's last step, on the already pruned model: per consumer, scale each kept input
    channel by the least-squares factor that best reproduces the sampled outputs of the
    unpruned layer (``contributions`` are those of the unpruned model)."""
    keep_t = torch.tensor(sorted(keep), dtype=torch.long)
    for name in group.consumers:
        z = contributions[name]
        sol = torch.linalg.lstsq(z[:, keep_t], z.sum(1, keepdim=True), driver="gelsd").solution.reshape(-1)
        if not torch.all(torch.isfinite(sol)):
            continue
        m = pruned.get_submodule(name)
        shape = [1, -1] + [1] * (m.weight.dim() - 2)
        m.weight.mul_(sol.to(m.weight.dtype).reshape(shape))


def _keep_count(size, rate, min_keep):
    return max(min_keep, size - int(math.floor(rate * size + 1e-9)))


def select(orders: dict, sizes: dict, rate: float, mode: str, min_fraction: float = 0.1) -> dict:
    """Kept channels per group from removal ``orders`` (group -> (order, costs)).

    ``layer``: each group loses ``floor(rate * size)`` channels. ``global``: the cheapest next
    removal over all groups is taken until ``rate`` of all their channels are gone. Every group
    keeps at least ``max(1, ceil(min_fraction * size))`` channels.
    """
    if not 0 <= rate < 1:
        raise HdlgenError(f"pruning rate must lie in [0, 1), not {rate}")
    if mode not in MODES:
        raise HdlgenError(f"unknown pruning mode {mode!r} (expected one of {', '.join(MODES)})")
    floor = {g: max(1, math.ceil(min_fraction * sizes[g])) for g in orders}
    removed = {g: 0 for g in orders}
    if mode == "layer":
        for g in orders:
            removed[g] = sizes[g] - _keep_count(sizes[g], rate, floor[g])
    else:
        total = sum(sizes[g] for g in orders)
        target = int(math.floor(rate * total + 1e-9))
        heap = [(orders[g][1][0], g) for g in orders if sizes[g] > floor[g]]
        heapq.heapify(heap)
        done = 0
        while heap and done < target:
            _, g = heapq.heappop(heap)
            removed[g] += 1
            done += 1
            k = removed[g]
            if sizes[g] - k > floor[g]:
                heapq.heappush(heap, (orders[g][1][k], g))
    return {g: sorted(set(range(sizes[g])) - set(orders[g][0][:removed[g]])) for g in orders}


def prune(model, images, rate: float, *, method: str = "thinet", mode: str = "layer", scope: str = "all",
          samples: int = 4096, rescale: bool = True, min_fraction: float = 0.1, seed: int = 0):
    """``(pruned, report)``: ``model`` with ``rate`` of the filters of its prunable channel groups
    removed (per group or globally), chosen by ``method`` from activations on ``images``
    (uint8 model inputs; the first two trace the network). ``scope="inner"`` leaves the groups
    tied by shortcuts alone."""
    if method not in METHODS:
        raise HdlgenError(f"unknown pruning method {method!r} (expected one of {', '.join(METHODS)})")
    if scope not in SCOPES:
        raise HdlgenError(f"unknown pruning scope {scope!r} (expected one of {', '.join(SCOPES)})")
    if len(images) < 2:
        raise HdlgenError("pruning needs at least 2 sample images")
    example = torch.as_tensor(np.asarray(images[:2]))
    groups = channel_groups(model, example)
    chosen = [g for g in groups if g.prunable and (scope == "all" or not g.tied)]
    if rate == 0 or not chosen:
        return copy.deepcopy(model), _report(groups, {}, rate, method, mode, scope)
    contributions = None
    if method == "thinet":
        contributions = consumer_samples(model, chosen, images, samples=samples, seed=seed)
        orders = {g.index: thinet_order(g, contributions) for g in chosen}
    else:
        orders = {g.index: l1_order(model, g) for g in chosen}
    keep = select(orders, {g.index: g.size for g in chosen}, rate, mode, min_fraction)
    pruned = prune_channels(model, groups, keep)
    if contributions is not None and rescale:
        for g in chosen:
            if len(keep[g.index]) < g.size:
                rescale_consumers(pruned, g, keep[g.index], contributions)
    return pruned, _report(groups, keep, rate, method, mode, scope)


def _report(groups, keep, rate, method, mode, scope):
    rows = []
    for g in groups:
        rows.append({"group": g.index, "producers": g.producers, "consumers": g.consumers,
                     "channels": g.size, "kept": len(keep.get(g.index, range(g.size))),
                     "tied": g.tied, "prunable": g.prunable, "frozen": g.frozen})
    return {"rate": rate, "method": method, "mode": mode, "scope": scope, "groups": rows}


# -- counters -----------------------------------------------------------------------------------

def is_binary_weight(m) -> bool:
    """True for layers whose effective weights are +-1 (they say so with ``binary_weights``)."""
    return bool(getattr(m, "binary_weights", False))


@torch.no_grad()
def count_ops(model, example) -> dict:
    """Per-image multiply-accumulates and weight storage of the Conv2d / Linear layers.

    ``macs`` is all of them; ``bops`` those of layers with +-1 weights and +-1 inputs (XNOR +
    popcount); ``flops`` the rest (multi-bit inputs or float weights), counted as one
    operation per multiply-accumulate. ``weight_bits``: 1 per binary weight, 32 per float
    weight (biases included). BatchNorm is not counted (it folds into thresholds)."""
    layers = []
    hooks = []

    def hook(m, inp, out, name):
        x = inp[0]
        n = x.shape[0]
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
            macs = out.numel() // n * k
        else:
            macs = out.numel() // n * m.in_features
        binary_w = is_binary_weight(m)
        binary_x = bool(torch.all(x.abs() == 1))
        params = sum(p.numel() for p in (m.weight, getattr(m, "bias", None)) if p is not None)
        layers.append({"layer": name, "type": type(m).__name__, "macs": int(macs),
                       "binary_weights": binary_w, "binary_inputs": binary_x,
                       "params": int(params), "weight_bits": int(params * (1 if binary_w else 32))})

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(lambda mod, i, o, name=name: hook(mod, i, o, name)))
    was = model.training
    model.eval()
    try:
        model(torch.as_tensor(np.asarray(example[:1])).to(next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    macs = sum(r["macs"] for r in layers)
    bops = sum(r["macs"] for r in layers if r["binary_weights"] and r["binary_inputs"])
    bits = sum(r["weight_bits"] for r in layers)
    return {"macs": macs, "bops": bops, "flops": macs - bops, "weight_bits": bits,
            "weight_mb": bits / 1e6, "params": sum(r["params"] for r in layers), "layers": layers}
