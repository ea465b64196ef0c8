"""FLOPs of one forward pass, counted by ``torch.utils.flop_counter``.

The counter covers convolutions and matrix products (BN, ReLU, pooling and additions
are not counted) and reports FLOPs = 2 x multiply-accumulates. NAS papers usually
quote multiply-adds (MACs), e.g. NAS-Bench-201's "FLOPs" are MACs, so both are
returned and every output key says which one it holds.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def forward_flops(model: nn.Module, image_shape: tuple[int, int, int], device: torch.device | str = "cpu") -> int:
    """FLOPs (2 x MACs) of one eval-mode forward pass on one image of shape (C, H, W)."""
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, *image_shape, device=device)
        with FlopCounterMode(display=False) as counter:
            model(x)
        return int(counter.get_total_flops())
    finally:
        model.train(was_training)


def flops_summary(model: nn.Module, image_shape: tuple[int, int, int],
                  device: torch.device | str = "cpu") -> dict[str, float]:
    """``flops_m`` (MFLOPs, 2 x MACs) and ``macs_m`` (million multiply-accumulates)."""
    flops = forward_flops(model, image_shape, device)
    return {"flops_m": round(flops / 1e6, 6), "macs_m": round(flops / 2e6, 6)}
