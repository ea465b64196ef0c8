"""Evaluation networks built from a discrete genotype, for retraining from scratch.

``NetworkCIFAR`` follows the DARTS reference network (model.py of the DARTS
repository) layer for layer, so parameter counts match the published ones exactly:
DARTS_V2 at C = 36 with 20 cells has 3,349,342 parameters without the auxiliary head.
``TinyNetwork`` is the NAS-Bench-201 network (stem, three stages of N ``InferCell``s
separated by ResNet basic blocks, BN-ReLU, pooling, classifier).

Both return ``(logits, aux_logits)``; ``aux_logits`` is None unless the auxiliary
head exists and the network is in training mode. Drop path reads its probability
from a tensor buffer (``set_drop_path``) so that a compiled graph does not have to be
recompiled each epoch when the scheduled probability changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from midas.genotypes import DartsGenotype, Genotype, Nb201Arch
from midas.ops import FactorizedReduce, Identity, ReLUConvBN, build_op
from midas.spaces import SearchSpace
from midas.supernet.networks import ResNetBasicBlock, nb201_stage_plan

#: substring of the parameter names that belong to the auxiliary head (excluded from counts)
AUX_NAME = "auxiliary"


def drop_path(x: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
    """Zero whole samples with probability ``prob`` and rescale the rest (DARTS drop path)."""
    keep = 1.0 - prob
    mask = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) < keep).to(x.dtype)
    return x / keep.to(x.dtype) * mask


class DropPathMixin(nn.Module):
    """Holds the scheduled drop-path probability as a (non-persistent) buffer."""

    def _init_drop_path(self, enabled: bool) -> None:
        self.drop_path_enabled = enabled
        self.register_buffer("drop_path_prob", torch.zeros(()), persistent=False)

    def set_drop_path(self, prob: float) -> None:
        if not 0.0 <= prob < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1), got {prob}")
        self.drop_path_prob.fill_(prob)

    def maybe_drop(self, x: torch.Tensor, op: nn.Module) -> torch.Tensor:
        if self.training and self.drop_path_enabled and not isinstance(op, Identity):
            return drop_path(x, self.drop_path_prob)
        return x


class EvalCell(nn.Module):
    """A DARTS cell with one fixed op per (node, input): model.py's ``Cell``."""

    def __init__(self, genotype: DartsGenotype, c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        if reduction_prev:
            self.preprocess0: nn.Module = FactorizedReduce(c_pp, c, affine=True)
        else:
            self.preprocess0 = ReLUConvBN(c_pp, c, 1, 1, 0, affine=True)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=True)
        cell_type = "reduce" if reduction else "normal"
        pairs = genotype.cell(cell_type)
        self.concat = tuple(genotype.concat(cell_type))
        self.indices = tuple(i for _, i in pairs)
        self.steps = len(pairs) // 2
        self.multiplier = len(self.concat)
        self.ops = nn.ModuleList(
            build_op(name, c, c, 2 if reduction and index < 2 else 1, affine=True, track=True)
            for name, index in pairs
        )

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, dropper: DropPathMixin) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            op1, op2 = self.ops[2 * i], self.ops[2 * i + 1]
            h1 = dropper.maybe_drop(op1(states[self.indices[2 * i]]), op1)
            h2 = dropper.maybe_drop(op2(states[self.indices[2 * i + 1]]), op2)
            states.append(h1 + h2)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHeadCIFAR(nn.Module):
    """DARTS's auxiliary classifier, designed for the 8x8 maps after the second reduction.

    Smaller or larger maps (16x16 or 64x64 inputs) would not reduce to the 2x2 that the
    2x2 convolution expects, so those are pooled adaptively to 2x2 instead; parameters
    are the same either way.
    """

    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False)
        self.features = nn.Sequential(
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        h, w = x.shape[-2:]
        if (h - 5) // 3 + 1 == 2 and (w - 5) // 3 + 1 == 2:
            x = self.pool(x)
        else:
            x = F.adaptive_avg_pool2d(x, 2)
        return self.classifier(self.features(x).flatten(1))


class NetworkCIFAR(DropPathMixin):
    """DARTS evaluation network: stem, ``layers`` cells (reductions at 1/3 and 2/3), aux head."""

    def __init__(self, genotype: DartsGenotype, channels: int, num_classes: int, layers: int,
                 auxiliary: bool, in_channels: int = 3, stem_multiplier: int = 3, drop_path: bool = True) -> None:
        super().__init__()
        self._init_drop_path(drop_path)
        self.layers = layers
        self.aux_position = 2 * layers // 3
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        c_aux = c_p
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = EvalCell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev)
            reduction_prev = reduction
            self.cells.append(cell)
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == self.aux_position:
                c_aux = c_p
        self.auxiliary_head = AuxiliaryHeadCIFAR(c_aux, num_classes) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux = None
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self)
            if i == self.aux_position and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        return self.classifier(self.global_pooling(s1).flatten(1)), aux


class InferCell(nn.Module):
    """NB201 cell with one op per edge: node j = sum over i < j of op_ij(node i)."""

    def __init__(self, arch: Nb201Arch, space: SearchSpace, c: int) -> None:
        super().__init__()
        self.edges = space.edges
        self.ops = nn.ModuleList(build_op(name, c, c, 1, affine=True, track=True) for name in arch.ops)
        self.nodes = 1 + len(space.intermediate_nodes)

    def forward(self, x: torch.Tensor, dropper: DropPathMixin) -> torch.Tensor:
        nodes = [x]
        for node in range(1, self.nodes):
            out: torch.Tensor | None = None
            for e, (src, dst) in enumerate(self.edges):
                if dst != node:
                    continue
                y = dropper.maybe_drop(self.ops[e](nodes[src]), self.ops[e])
                out = y if out is None else out + y
            assert out is not None
            nodes.append(out)
        return nodes[-1]


class TinyNetwork(DropPathMixin):
    """NB201 evaluation network for one arch string (C = 16, N = 5 in the benchmark)."""

    def __init__(self, arch: Nb201Arch, space: SearchSpace, channels: int, cells_per_stage: int,
                 num_classes: int, in_channels: int = 3, drop_path: bool = False) -> None:
        super().__init__()
        self._init_drop_path(drop_path)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.cells = nn.ModuleList()
        c_prev = channels
        for c, reduction in nb201_stage_plan(channels, cells_per_stage):
            self.cells.append(ResNetBasicBlock(c_prev, c, 2) if reduction else InferCell(arch, space, c))
            c_prev = c
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, self) if isinstance(cell, InferCell) else cell(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1)), None


def build_eval_network(space: SearchSpace, genotype: Genotype, num_classes: int, channels: int,
                       layers: int, cells_per_stage: int, auxiliary: bool, drop_path: bool,
                       in_channels: int = 3) -> DropPathMixin:
    """The evaluation network of ``space``'s family for ``genotype``."""
    if space.family == "nb201":
        if not isinstance(genotype, Nb201Arch):
            raise TypeError(f"space {space.name} needs an NB201 arch, got {type(genotype).__name__}")
        return TinyNetwork(genotype, space, channels, cells_per_stage, num_classes, in_channels, drop_path)
    if not isinstance(genotype, DartsGenotype):
        raise TypeError(f"space {space.name} needs a DARTS genotype, got {type(genotype).__name__}")
    return NetworkCIFAR(genotype, channels, num_classes, layers, auxiliary, in_channels, drop_path=drop_path)


def count_parameters(model: nn.Module, include_auxiliary: bool = False) -> int:
    """Parameter count as DARTS reports it: the auxiliary head is left out by default."""
    return sum(p.numel() for n, p in model.named_parameters() if include_auxiliary or AUX_NAME not in n)
