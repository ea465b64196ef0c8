"""Early memory estimate: fail before the first step instead of being killed by the OS.

Activation memory is measured, not guessed: a forward pass on a copy of the model at a
small batch records the bytes autograd saves for backward (``saved_tensors_hooks``),
which scale linearly with the batch. Parameters, gradients and optimizer state are
added; the total is compared with what the device has free.
"""

from __future__ import annotations

import copy
from typing import Any

import psutil
import torch
import torch.nn.functional as F
from torch import nn

from midas.errors import ResourceError
from midas.runtime import log

PROBE_BATCH = 2
#: forward + backward transient buffers and allocator slack on top of saved activations
SLACK = 1.5


def activation_bytes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    total = 0
    seen: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
        return t

    probe = copy.deepcopy(model).train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = F.cross_entropy(probe(x), y)
    del loss, probe
    return total


def estimate_bytes(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], batch_size: int,
                   device: torch.device) -> int:
    x, y = batch
    x, y = x[:PROBE_BATCH].to(device), y[:PROBE_BATCH].to(device)
    per_sample = activation_bytes(model, x, y) / len(y)
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    # weights + grads + momentum / Adam moments
    return int(SLACK * per_sample * batch_size + 4 * param_bytes)


def available_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return int(psutil.virtual_memory().available)


def check_fits(need: int, have: int, batch_size: int, what: str) -> None:
    gib = 2**30
    log.info("%s: estimated peak memory %.2f GiB of %.2f GiB available", what, need / gib, have / gib)
    if need > have:
        fit = max(1, int(batch_size * have / need))
        raise ResourceError(
            f"{what} needs about {need / gib:.1f} GiB at batch size {batch_size} but only {have / gib:.1f} GiB "
            f"is available. Lower the batch size (about {fit} would fit), the channels, or the cell count; "
            "or set search.memory_check=false to try anyway."
        )


def check_search_memory(searcher: Any, loader: Any, device: torch.device) -> None:
    batch = next(iter(loader.epoch(0)))
    bs = loader.batch_size
    need = estimate_bytes(searcher.model, batch, bs, device)
    check_fits(need, available_bytes(device), bs, "search")
