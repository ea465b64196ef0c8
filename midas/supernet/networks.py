"""The DARTS-style and NAS-Bench-201 supernets, and a builder from config."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from midas.ops import ReLUConvBN
from midas.spaces import SearchSpace
from midas.supernet.cells import DartsSearchCell, Nb201SearchCell, WeightingConfig


class Supernet(nn.Module):
    """Common interface: architecture parameters kept apart from network weights."""

    space: SearchSpace
    wcfg: WeightingConfig

    @property
    def nhwc(self) -> bool:
        """Channels-last layout: a fast-path option (the reference path keeps NCHW)."""
        return self.wcfg.channels_last and self.wcfg.impl != "reference"

    def _to_input_layout(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.nhwc else x

    def _apply_layout(self) -> None:
        if self.nhwc:
            self.to(memory_format=torch.channels_last)

    def _init_alphas(self) -> None:
        self.alphas = nn.ParameterDict()
        if self.wcfg.method != "darts":
            return
        for cell_type in self.space.cell_types:
            ks = {len(ops) for ops in self.space.ops(cell_type)}
            if len(ks) != 1:
                raise ValueError(f"static alpha needs one op count per edge in {self.space.name}")
            self.alphas[cell_type] = nn.Parameter(1e-3 * torch.randn(self.space.num_edges, ks.pop()))

    @staticmethod
    def is_arch_name(name: str) -> bool:
        return name.startswith("alphas.") or ".attention." in name

    def arch_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if self.is_arch_name(n)]

    def weight_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not self.is_arch_name(n)]

    def alpha(self, cell_type: str) -> torch.Tensor | None:
        return self.alphas[cell_type] if cell_type in self.alphas else None


class DartsSupernet(Supernet):
    """Stem, ``layers`` cells with reductions at 1/3 and 2/3 of depth, classifier (DARTS)."""

    def __init__(self, space: SearchSpace, num_classes: int, wcfg: WeightingConfig, channels: int = 16,
                 layers: int = 8, stem_multiplier: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        self.space, self.wcfg = space, wcfg
        c_curr = stem_multiplier * channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr)
        )
        multiplier = len(space.intermediate_nodes)
        c_pp, c_p, c_curr = c_curr, c_curr, channels
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            self.cells.append(DartsSearchCell(space, c_pp, c_p, c_curr, reduction, reduction_prev, wcfg))
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)
        self._init_alphas()
        self._apply_layout()

    def forward(self, x: torch.Tensor, record: list[dict[str, Any]] | None = None) -> torch.Tensor:
        s0 = s1 = self.stem(self._to_input_layout(x))
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, self.alpha(cell.cell_type), record)
        return self.classifier(self.global_pooling(s1).flatten(1))


class ResNetBasicBlock(nn.Module):
    """NB201's fixed reduction block between stages."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        if stride == 2:
            self.downsample: nn.Module | None = nn.Sequential(
                nn.AvgPool2d(2, 2, 0), nn.Conv2d(c_in, c_out, 1, bias=False)
            )
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0)
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_b(self.conv_a(x))
        return out + (self.downsample(x) if self.downsample is not None else x)


def nb201_stage_plan(channels: int, cells_per_stage: int) -> list[tuple[int, bool]]:
    """(channels, is_reduction) per layer: N cells, block, N cells, block, N cells."""
    n = cells_per_stage
    chans = [channels] * n + [2 * channels] + [2 * channels] * n + [4 * channels] + [4 * channels] * n
    reds = [False] * n + [True] + [False] * n + [True] + [False] * n
    return list(zip(chans, reds))


class Nb201Supernet(Supernet):
    def __init__(self, space: SearchSpace, num_classes: int, wcfg: WeightingConfig, channels: int = 16,
                 cells_per_stage: int = 5, in_channels: int = 3) -> None:
        super().__init__()
        self.space, self.wcfg = space, wcfg
        self.stem = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.cells = nn.ModuleList()
        c_prev = channels
        for c, reduction in nb201_stage_plan(channels, cells_per_stage):
            if reduction:
                self.cells.append(ResNetBasicBlock(c_prev, c, 2))
            else:
                self.cells.append(Nb201SearchCell(space, c, wcfg))
            c_prev = c
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)
        self._init_alphas()
        self._apply_layout()

    def forward(self, x: torch.Tensor, record: list[dict[str, Any]] | None = None) -> torch.Tensor:
        x = self.stem(self._to_input_layout(x))
        for cell in self.cells:
            x = cell(x, self.alpha("normal"), record) if isinstance(cell, Nb201SearchCell) else cell(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))


def build_supernet(space: SearchSpace, num_classes: int, wcfg: WeightingConfig, channels: int,
                   layers: int, cells_per_stage: int, stem_multiplier: int = 3,
                   in_channels: int = 3) -> Supernet:
    if wcfg.impl not in ("fast", "reference"):
        raise ValueError(f"supernet impl {wcfg.impl!r} is unknown; use 'fast' or 'reference'")
    if space.family == "nb201":
        if wcfg.topology != "darts":
            raise ValueError("NB201 cells sum all incoming edges; topology 'pairs' applies to DARTS-like spaces")
        return Nb201Supernet(space, num_classes, wcfg, channels, cells_per_stage, in_channels)
    return DartsSupernet(space, num_classes, wcfg, channels, layers, stem_multiplier, in_channels)
