"""Device selection, seeding, determinism, mixed precision and progress reporting."""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import torch

from midas.errors import ConfigError
from midas.logs import log, setup_logging  # noqa: F401  (re-exported)

T = TypeVar("T")


def select_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"device {spec!r} is not a torch device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available here; use device=cpu or auto")
    return dev


def configure(cfg: dict[str, Any]) -> torch.device:
    """Apply threads and determinism settings; return the device."""
    if cfg["threads"] > 0:
        torch.set_num_threads(cfg["threads"])
    if cfg["deterministic"]:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # warn_only: an op without a deterministic CUDA kernel warns (naming itself) instead of failing
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    else:
        torch.backends.cudnn.benchmark = True
    return select_device(cfg["device"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """RNG seed for one epoch: resuming at an epoch boundary replays the same randomness."""
    return (seed * 1_000_003 + epoch * 7_919 + 17) % 2**63


def autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(device.type, enabled=(amp == "fp16" and device.type == "cuda"))


def use_bar(mode: str) -> bool:
    return mode == "bar" or (mode == "auto" and sys.stderr.isatty())


def progress(it: Iterable[T], total: int, desc: str, mode: str) -> Iterator[T]:
    if use_bar(mode):
        from tqdm.auto import tqdm

        yield from tqdm(it, total=total, desc=desc, leave=False, dynamic_ncols=True)
    else:
        yield from it
