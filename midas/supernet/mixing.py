"""Edge- and node-level mixing shared by the supernets.

Weights come as ``(B or 1, K, G, G)`` tensors: one weight per sample, candidate and
patch of a G x G grid (static DARTS weights are ``(1, K, 1, 1)``). ``patch_scale``
multiplies a feature map by such a weight without materialising the upsampled weight
map: the map is viewed as G x G blocks, which is exactly nearest-neighbour upsampling
when the grid divides the map.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from midas.ops import build_op


def patch_scale(y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``y * up(w)`` for y (B, C, H, W) and w (B or 1, G, G)."""
    g = w.shape[-1]
    if g == 1:
        return y * w.reshape(w.shape[0], 1, 1, 1)
    b, c, h, wd = y.shape
    if h % g == 0 and wd % g == 0:
        yb = y.reshape(b, c, g, h // g, g, wd // g)
        return (yb * w.reshape(w.shape[0], 1, g, 1, g, 1)).reshape(b, c, h, wd)
    up = F.interpolate(w.unsqueeze(1), size=(h, wd), mode="nearest")
    return y * up


def weighted_sum(ys: list[torch.Tensor | None], w: torch.Tensor) -> torch.Tensor:
    """sum_k up(w[:, k]) * y_k, skipping ``None`` (zero) outputs: the reference form."""
    out: torch.Tensor | None = None
    for k, y in enumerate(ys):
        if y is None:
            continue
        term = patch_scale(y, w[:, k])
        out = term if out is None else out + term
    if out is None:
        raise RuntimeError("an edge whose candidates are all `none` has no output shape")
    return out


def _blocks(y: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Views of y (B, C, H, W) and w (B or 1, G, G) that broadcast to ``y * up(w)``.

    The block view of a channels-last map is still a view, so no copy is made.
    """
    g = w.shape[-1]
    if g == 1:
        return y, w.reshape(w.shape[0], 1, 1, 1)
    b, c, h, wd = y.shape
    if h % g == 0 and wd % g == 0:
        return y.reshape(b, c, g, h // g, g, wd // g), w.reshape(w.shape[0], 1, g, 1, g, 1)
    return y, F.interpolate(w.unsqueeze(1), size=(h, wd), mode="nearest")


def weighted_sum_fused(ys: list[torch.Tensor | None], w: torch.Tensor) -> torch.Tensor:
    """Same value as :func:`weighted_sum` with one fused multiply-add (``addcmul``) per op.

    Saves one temporary and one memory pass per candidate; autograd keeps the same tensors.
    """
    out: torch.Tensor | None = None
    shape = None
    for k, y in enumerate(ys):
        if y is None:
            continue
        yv, wv = _blocks(y, w[:, k])
        out = yv * wv if out is None else torch.addcmul(out, yv, wv)
        shape = y.shape
    if out is None or shape is None:
        raise RuntimeError("an edge whose candidates are all `none` has no output shape")
    return out.reshape(shape)


#: parameter-free ops whose output (pooling, + BN in DARTS cells) the edges of one source node share
POOLS = ("max_pool_3x3", "avg_pool_3x3")


class MixedEdge(nn.Module):
    """All candidate ops of one edge.

    ``impl="reference"`` is the DARTS reference design: every candidate, `none`
    included, is evaluated and its output is weighted. ``impl="fast"`` computes the
    same values with less work: `none` is never evaluated (``skip_none``; its output
    is zero, so it only contributes its weight to the softmax), and the work that
    edges leaving the same node repeat is done once per node and shared through
    ``shared`` (a dict per source state): the ReLU that starts every conv op, and
    the pooling (+ its batch norm in training, where identical inputs give identical
    batch statistics) of the parameter-free ops.
    """

    def __init__(self, op_names: tuple[str, ...], c: int, stride: int, affine: bool, track: bool,
                 pool_bn: bool, skip_none: bool = True, impl: str = "fast") -> None:
        super().__init__()
        self.op_names = tuple(op_names)
        self.reference = impl == "reference"
        self.skip_none = skip_none and not self.reference
        self.stride = stride
        self.ops = nn.ModuleDict()
        for name in self.op_names:
            if self.skip_none and name == "none":
                continue
            op = build_op(name, c, c, stride, affine, track)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False, track_running_stats=track))
            self.ops[name] = op

    def forward(self, x: torch.Tensor, shared: dict | None = None) -> list[torch.Tensor | None]:
        if self.reference or shared is None:
            return [self.ops[n](x) if n in self.ops else None for n in self.op_names]
        return [self._shared_op(n, x, shared) for n in self.op_names]

    def _shared_op(self, name: str, x: torch.Tensor, shared: dict) -> torch.Tensor | None:
        if name not in self.ops:
            return None
        op = self.ops[name]
        if name in POOLS:
            return self._shared_pool(name, op, x, shared)
        from_relu = getattr(op, "from_relu", None)
        if from_relu is None:
            return op(x)
        act = op.act
        key = ("act", type(act))  # ops whose leading activation is of one type share its output
        r = shared.get(key)
        if r is None:
            r = shared[key] = act(x)
        return from_relu(r)

    def _shared_pool(self, name: str, op: nn.Module, x: torch.Tensor, shared: dict) -> torch.Tensor:
        pool, bn = (op[0], op[1]) if isinstance(op, nn.Sequential) else (op, None)
        if getattr(pool, "pre", None) is not None:  # channel-changing NB201 pool: nothing to share
            return op(x)
        key = (name, self.stride)
        pooled = shared.get(key)
        if pooled is None:
            pooled = shared[key] = pool(x)
        if bn is None:
            return pooled
        if not (bn.training or bn.running_mean is None):  # eval: each edge's own running stats
            return bn(pooled)
        first = shared.get(key + ("bn",))
        if first is None:
            shared[key + ("bn",)] = (bn(pooled), bn)
            return shared[key + ("bn",)][0]
        out, first_bn = first
        if bn.running_mean is not None:  # keep this edge's running stats what its own BN would hold
            with torch.no_grad():
                bn.running_mean.copy_(first_bn.running_mean)
                bn.running_var.copy_(first_bn.running_var)
                bn.num_batches_tracked.copy_(first_bn.num_batches_tracked)
        return out


class EdgeAttention(nn.Module):
    """Mosaic attention of one edge: queries from the input, keys from op outputs.

    Its two 1x1 projections are architecture parameters (optimized on the
    validation half). Returns logits (B, K, G, G); a `none` op has key 0, logit 0.
    """

    def __init__(self, c: int, attn_dim: int, patch_grid: int, temperature: float) -> None:
        super().__init__()
        self.grid = patch_grid
        self.scale = 1.0 / (math.sqrt(attn_dim) * temperature)
        self.query = nn.Conv2d(c, attn_dim, 1, bias=False)
        self.key = nn.Conv2d(c, attn_dim, 1, bias=False)

    def forward(self, x: torch.Tensor, ys: list[torch.Tensor | None]) -> torch.Tensor:
        g = self.grid
        q = self.query(F.adaptive_avg_pool2d(x, g))  # B, d, G, G
        present = [k for k, y in enumerate(ys) if y is not None]
        pooled = torch.stack([F.adaptive_avg_pool2d(ys[k], g) for k in present], dim=1)  # B, K', C, G, G
        b, kp, c = pooled.shape[:3]
        keys = self.key(pooled.reshape(b * kp, c, g, g)).reshape(b, kp, -1, g, g)
        logits_present = (keys * q.unsqueeze(1)).sum(dim=2) * self.scale  # B, K', G, G
        if len(present) == len(ys):
            return logits_present
        logits = logits_present.new_zeros(b, len(ys), g, g)
        logits[:, present] = logits_present
        return logits


def edge_score(logits: torch.Tensor, op_names: tuple[str, ...]) -> torch.Tensor:
    """How strongly an edge wants to exist: lse(non-none logits) - none logit."""
    if "none" in op_names:
        k = op_names.index("none")
        keep = [i for i in range(len(op_names)) if i != k]
        return torch.logsumexp(logits[:, keep], dim=1) - logits[:, k]
    return torch.logsumexp(logits, dim=1)


def pair_index(num_inputs: int) -> list[tuple[int, int]]:
    """Candidate input pairs (a, b), a < b, of a node with ``num_inputs`` incoming edges."""
    return [(a, b) for b in range(num_inputs) for a in range(b)]


def pair_weights(scores: list[torch.Tensor]) -> torch.Tensor:
    """beta over pairs: softmax_P (s_a + s_b), shape (B, P, G, G)."""
    pairs = pair_index(len(scores))
    s = torch.stack([scores[a] + scores[b] for a, b in pairs], dim=1)
    return torch.softmax(s, dim=1)


def pair_mix_fused(zs: list[torch.Tensor], beta: torch.Tensor) -> torch.Tensor:
    """:func:`pair_mix` with the per-input weights gamma_i applied by fused multiply-adds."""
    pairs = pair_index(len(zs))
    gamma = torch.stack([sum(beta[:, p] for p, ab in enumerate(pairs) if i in ab) for i in range(len(zs))], 1)
    return weighted_sum_fused(list(zs), gamma)


def pair_mix(zs: list[torch.Tensor], beta: torch.Tensor) -> torch.Tensor:
    """sum over pairs of up(beta_ab) * (z_a + z_b) = sum_i up(gamma_i) z_i."""
    pairs = pair_index(len(zs))
    gamma = [sum(beta[:, p] for p, ab in enumerate(pairs) if i in ab) for i in range(len(zs))]
    out = patch_scale(zs[0], gamma[0])
    for z, g in zip(zs[1:], gamma[1:]):
        out = out + patch_scale(z, g)
    return out
