"""Shared fixtures: tiny datasets written by the tests, tiny configs, the real shared data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

# Tiny test networks gain nothing from intra-op threads, and on a busy 2-core machine
# thread oversubscription makes them 20x slower.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def write_npz_dataset(folder: Path, n_train: int = 120, n_test: int = 40, classes: int = 4,
                      size: int = 16, seed: int = 0) -> dict[str, str]:
    """Class-dependent random images (each class has its own mean colour), round-robin labels."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    colours = rng.integers(40, 215, size=(classes, 3))
    paths = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % classes
        x = colours[y][:, None, None, :] + rng.normal(0, 30, size=(n, size, size, 3))
        x = np.clip(x, 0, 255).astype(np.uint8)
        path = folder / f"tiny_{split}.npz"
        np.savez_compressed(path, x=x, y=y.astype(np.int64),
                            class_names=np.array([f"c{i}" for i in range(classes)]))
        paths[split] = str(path)
    return paths


def tiny_overrides(data: dict[str, str], epochs: int = 2) -> list[str]:
    """--set overrides for a search that takes a few seconds on one CPU core."""
    return [
        "data.source=npz", f"data.train={data['train']}", f"data.test={data['test']}",
        f"search.epochs={epochs}", "search.batch_size=16", "search.eval_batch_size=32",
        "supernet.channels=4", "supernet.layers=3", "supernet.cells_per_stage=1",
        "midas.attn_dim=4", "device=cpu", "threads=1", "progress=log",
    ]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return write_npz_dataset(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "cifar10" / "cifar10_test.npz").exists():
        pytest.skip(f"real data not found at {SHARED_DATA} (the project's shared data folder)")
    return SHARED_DATA
