"""Checkpoints: atomic, loaded with ``weights_only=True``, RNG states included."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from midas import config as config_mod
from midas.errors import CheckpointError
from midas.io import atomic_open


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: str | Path, state: dict[str, Any]) -> None:
    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint; any damage becomes a CheckpointError that says what to do."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises many types for truncated/corrupt files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {str(exc)[:200]}). "
            "Rerun with --fresh to discard it and start over, or restore it from a backup."
        ) from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise CheckpointError(f"checkpoint {path} is not a midas checkpoint; rerun with --fresh to start over")
    return state


def load_for_resume(path: str | Path, cfg: dict[str, Any], free_keys: set[str]) -> dict[str, Any] | None:
    """The checkpoint to resume from (None if there is none).

    One written with another configuration is refused, naming the keys, unless they are
    in ``free_keys`` (settings that change speed, not results).
    """
    path = Path(path)
    if not path.exists():
        return None
    state = load(path)
    differ = config_mod.diff(json.loads(state["config"]), cfg, free_keys)
    if differ:
        raise CheckpointError(
            f"{path} was written with a different configuration (differs in: {', '.join(differ)}). "
            "Use another output folder, or --fresh to discard the checkpoint."
        )
    return state
