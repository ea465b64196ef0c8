"""Candidate operations of the DARTS family and NAS-Bench-201, in one registry.

Every factory has the signature ``(c_in, c_out, stride, affine, track_running_stats)``
so that search spaces can mix families; DARTS-family ops require ``c_in == c_out``
as in the DARTS code. Layer order (ReLU-Conv-BN) and padding follow the reference
implementations so parameter counts match them exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from midas.registry import Registry

OpFactory = Callable[[int, int, int, bool, bool], nn.Module]
OPS: Registry[OpFactory] = Registry("operation")

#: ops whose output does not depend on learned weights (used by decoding analyses)
PARAMETER_FREE = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "noise"})


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool = True, track: bool = True, dilation: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track),
        )

    @property
    def act(self) -> nn.Module:
        """The leading activation; ``from_relu(act(x)) == forward(x)``."""
        return self[0]

    def from_relu(self, r: torch.Tensor) -> torch.Tensor:
        """The op on an input that is already ``act(x)`` (shared by the ops of a source node)."""
        return self[2](self[1](r))


class DilConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True, track: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding, dilation=dilation,
                      groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track),
        )

    @property
    def act(self) -> nn.Module:
        return self[0]

    def from_relu(self, r: torch.Tensor) -> torch.Tensor:
        return self[3](self[2](self[1](r)))


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convolutions, the first one strided (DARTS)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool = True, track: bool = True) -> None:
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine, track),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine, track),
        )

    @property
    def act(self) -> nn.Module:
        return self[0].act

    def from_relu(self, r: torch.Tensor) -> torch.Tensor:
        return self[1](self[0].from_relu(r))


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """The `none` op. Supernets skip it on the fast path; it exists for the plain path."""

    def __init__(self, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.c_out = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1 and x.shape[1] == self.c_out:
            return x.mul(0.0)
        b, _, h, w = x.shape
        h, w = (h + self.stride - 1) // self.stride, (w + self.stride - 1) // self.stride
        return x.new_zeros(b, self.c_out, h, w)


class Noise(nn.Module):
    """RobustDARTS S4's harmful op: standard normal noise of the output's shape."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        # drawn in NCHW order whatever x's layout, so the fast (channels-last) path draws the same noise
        return torch.randn(x.shape, dtype=x.dtype, device=x.device)


class FactorizedReduce(nn.Module):
    """Stride-2 1x1 convs on two offset grids, concatenated (DARTS / NB201)."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True, track: bool = True) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track)

    @property
    def act(self) -> nn.Module:
        return self.relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_relu(self.relu(x))

    def from_relu(self, r: torch.Tensor) -> torch.Tensor:
        # A stride-2 1x1 conv is a 1x1 conv of the even (conv_1) and, after padding, odd
        # (conv_2) pixels; subsampling first gives the same values and avoids a oneDNN
        # stride-2 1x1 backward that corrupts memory on channels-last maps (torch 2.14, CPU).
        even = r[:, :, ::2, ::2]
        odd = F.pad(r, (0, 1, 0, 1))[:, :, 1::2, 1::2]
        return self.bn(torch.cat([F.conv2d(even, self.conv_1.weight), F.conv2d(odd, self.conv_2.weight)], dim=1))


class Pool(nn.Module):
    """3x3 pooling; a 1x1 ReLUConvBN first when channels change (NB201)."""

    def __init__(self, mode: str, c_in: int, c_out: int, stride: int, affine: bool, track: bool) -> None:
        super().__init__()
        self.pre = None if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0, affine, track)
        if mode == "avg":
            self.pool: nn.Module = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
        else:
            self.pool = nn.MaxPool2d(3, stride=stride, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre is not None:
            x = self.pre(x)
        return self.pool(x)


def _skip(c_in: int, c_out: int, stride: int, affine: bool, track: bool) -> nn.Module:
    if stride == 1:
        # NB201's FactorizedReduce is a ReLU-1x1 conv-BN at stride 1 when channels change
        return Identity() if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0, affine, track)
    return FactorizedReduce(c_in, c_out, affine, track)


OPS.add("none", lambda ci, co, s, a, t: Zero(co, s))
OPS.add("noise", lambda ci, co, s, a, t: Noise(s))
OPS.add("skip_connect", _skip)
OPS.add("max_pool_3x3", lambda ci, co, s, a, t: Pool("max", ci, co, s, a, t))
OPS.add("avg_pool_3x3", lambda ci, co, s, a, t: Pool("avg", ci, co, s, a, t))
OPS.add("sep_conv_3x3", lambda ci, co, s, a, t: SepConv(ci, co, 3, s, 1, a, t))
OPS.add("sep_conv_5x5", lambda ci, co, s, a, t: SepConv(ci, co, 5, s, 2, a, t))
OPS.add("dil_conv_3x3", lambda ci, co, s, a, t: DilConv(ci, co, 3, s, 2, 2, a, t))
OPS.add("dil_conv_5x5", lambda ci, co, s, a, t: DilConv(ci, co, 5, s, 4, 2, a, t))
OPS.add("nor_conv_1x1", lambda ci, co, s, a, t: ReLUConvBN(ci, co, 1, s, 0, a, t))
OPS.add("nor_conv_3x3", lambda ci, co, s, a, t: ReLUConvBN(ci, co, 3, s, 1, a, t))


def build_op(name: str, c_in: int, c_out: int, stride: int, affine: bool, track: bool = True) -> nn.Module:
    return OPS.get(name)(c_in, c_out, stride, affine, track)
