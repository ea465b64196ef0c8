"""Search cells: mixed edges, per-edge weighting (static alpha or mosaic attention), node topology."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from midas.ops import FactorizedReduce, ReLUConvBN
from midas.spaces import SearchSpace
from midas.supernet.mixing import (
    EdgeAttention,
    MixedEdge,
    edge_score,
    pair_mix,
    pair_mix_fused,
    pair_weights,
    weighted_sum,
    weighted_sum_fused,
)


@dataclass(frozen=True)
class WeightingConfig:
    """How edges are weighted and nodes combine them; every field is a config option."""

    method: str = "midas"          # "midas" (mosaic attention) or "darts" (static alpha)
    topology: str = "darts"        # "darts" (sum of incoming edges) or "pairs" (MIDAS pair mixing)
    patch_grid: int = 2
    attn_dim: int = 16
    temperature: float = 1.0
    skip_none: bool = True         # fast path: never evaluate the `none` op
    impl: str = "fast"             # "fast" (shared per-node work, fused sums) or "reference" (DARTS design)
    channels_last: bool = True     # fast path: NHWC activations and conv weights (faster convs on CPU)


class SearchCell(nn.Module):
    """Nodes of a cell computed from ``space.edges``; subclasses set inputs and output."""

    def __init__(self, space: SearchSpace, cell_type: str, c: int, reduction: bool,
                 wcfg: WeightingConfig, track: bool, pool_bn: bool, input_nodes: int) -> None:
        super().__init__()
        self.space = space
        self.cell_type = cell_type
        self.topology = wcfg.topology
        self.op_names = space.ops(cell_type)
        self.edges = nn.ModuleList(
            MixedEdge(ops, c, 2 if reduction and src < input_nodes else 1, affine=False, track=track,
                      pool_bn=pool_bn, skip_none=wcfg.skip_none, impl=wcfg.impl)
            for ops, (src, _) in zip(self.op_names, space.edges)
        )
        self.attention = None
        if wcfg.method == "midas":
            self.attention = nn.ModuleList(
                EdgeAttention(c, wcfg.attn_dim, wcfg.patch_grid, wcfg.temperature) for _ in space.edges
            )
        self._incoming = {node: space.incoming(node) for node in space.intermediate_nodes}
        self.fast = wcfg.impl != "reference"
        self._sum = weighted_sum_fused if self.fast else weighted_sum
        self._pair_mix = pair_mix_fused if self.fast else pair_mix

    def mix_nodes(self, states: list[torch.Tensor], alpha: torch.Tensor | None,
                  record: list[dict[str, Any]] | None) -> list[torch.Tensor]:
        edge_w: list[torch.Tensor] = [None] * len(self.edges)  # type: ignore[list-item]
        betas: list[torch.Tensor] = []
        # per source state: work its outgoing edges share (fast path only)
        shared: list[dict | None] = [{} if self.fast else None for _ in range(len(states) + len(self._incoming))]
        for incoming in self._incoming.values():
            zs, scores = [], []
            for e in incoming:
                src = self.space.edges[e][0]
                x = states[src]
                ys = self.edges[e](x, shared[src])
                if self.attention is not None:
                    logits = self.attention[e](x, ys)
                else:
                    assert alpha is not None, "static weighting needs alpha"
                    logits = alpha[e].view(1, -1, 1, 1)
                w = torch.softmax(logits.float(), dim=1).to(x.dtype)
                edge_w[e] = w
                zs.append(self._sum(ys, w))
                if self.topology == "pairs":
                    scores.append(edge_score(logits.float(), self.op_names[e]))
            if self.topology == "pairs" and len(zs) > 1:
                beta = pair_weights(scores)
                betas.append(beta)
                states.append(self._pair_mix(zs, beta.to(zs[0].dtype)))
            else:
                if self.topology == "pairs":
                    betas.append(torch.ones_like(scores[0]).unsqueeze(1))
                out = zs[0]
                for z in zs[1:]:
                    out = out + z
                states.append(out)
        if record is not None:
            record.append({"cell_type": self.cell_type, "edges": edge_w, "pairs": betas})
        return states


class DartsSearchCell(SearchCell):
    """DARTS cell: two preprocessed inputs, output = concat of the intermediate nodes."""

    def __init__(self, space: SearchSpace, c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool, wcfg: WeightingConfig) -> None:
        super().__init__(space, "reduce" if reduction else "normal", c, reduction, wcfg,
                         track=True, pool_bn=True, input_nodes=2)
        self.reduction = reduction
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_pp, c, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(c_pp, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.multiplier = len(space.intermediate_nodes)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, alpha: torch.Tensor | None = None,
                record: list[dict[str, Any]] | None = None) -> torch.Tensor:
        states = self.mix_nodes([self.preprocess0(s0), self.preprocess1(s1)], alpha, record)
        return torch.cat(states[2:], dim=1)


class Nb201SearchCell(SearchCell):
    """NB201 cell: node j sums all edges from i < j; output is the last node."""

    def __init__(self, space: SearchSpace, c: int, wcfg: WeightingConfig) -> None:
        super().__init__(space, "normal", c, False, wcfg, track=False, pool_bn=False, input_nodes=1)

    def forward(self, x: torch.Tensor, alpha: torch.Tensor | None = None,
                record: list[dict[str, Any]] | None = None) -> torch.Tensor:
        return self.mix_nodes([x], alpha, record)[-1]
