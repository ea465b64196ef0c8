"""Read the outputs of ``midas search`` (weights.npz, genotype.json, search_log.csv) for analysis.

A ``Run`` holds one search's per-sample weights and its decoded architecture in the
shapes the statistics need; the loader checks the files so that a missing or
truncated output is reported with the folder it came from, not as a numpy KeyError.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from midas.errors import DataError, GenotypeError
from midas.genotypes import DartsGenotype, Nb201Arch, parse_genotype
from midas.spaces import SearchSpace, get_space

#: operations without learnable parameters (skip_connect counted as in the DARTS literature)
PARAMETER_FREE = frozenset({"none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "noise"})


@dataclass
class Run:
    """One search output folder."""

    folder: Path
    space: SearchSpace
    method: str
    seed: int
    dataset: str
    patch_grid: int
    labels: np.ndarray  # (N,) int64
    ops: dict[str, np.ndarray]  # cell type -> (E, K) op names
    global_weights: dict[str, np.ndarray]  # cell type -> (E, K) float64
    weights: dict[str, np.ndarray]  # cell type -> (N, E, K, G, G) float16 as stored
    record: dict[str, Any] = field(default_factory=dict)  # genotype.json

    @property
    def cell_types(self) -> tuple[str, ...]:
        return tuple(self.ops)

    @property
    def label(self) -> str:
        return f"{self.space.name}/{self.dataset}/{self.method}/seed{self.seed}"

    def sample_weights(self, cell_type: str) -> np.ndarray:
        """(N, E, K) per-sample weights: the patch weights averaged over the patch grid."""
        w = self.weights[cell_type].astype(np.float64)
        return w.mean(axis=(3, 4))

    def patch_weights(self, cell_type: str) -> np.ndarray:
        """(N, E, K, P) per-sample, per-patch weights with P = G * G."""
        w = self.weights[cell_type].astype(np.float64)
        return w.reshape(*w.shape[:3], -1)

    @cached_property
    def genotype(self) -> DartsGenotype | Nb201Arch | None:
        if "genotype" not in self.record:
            return None
        try:
            return parse_genotype(self.record["genotype"], self.space)
        except GenotypeError as exc:
            raise GenotypeError(f"{self.folder / 'genotype.json'}: {exc}") from None

    def decoded_edges(self) -> list[tuple[str, int, str]]:
        """(cell type, edge index, op) of every edge kept by the decoded architecture."""
        return decoded_edges(self.space, self.genotype)


def decoded_edges(space: SearchSpace, genotype: DartsGenotype | Nb201Arch | None) -> list[tuple[str, int, str]]:
    if genotype is None:
        return []
    if isinstance(genotype, Nb201Arch):
        return [("normal", e, op) for e, op in enumerate(genotype.ops)]
    out = []
    for ct in space.cell_types:
        for k, (op, src) in enumerate(genotype.cell(ct)):
            node = space.intermediate_nodes[k // 2]
            out.append((ct, space.edges.index((src, node)), op))
    return out


def _scalar(z: Any, key: str, default: Any) -> Any:
    return z[key].item() if key in z.files else default


def load_run(folder: str | Path) -> Run:
    """Load one search output folder (needs weights.npz; genotype.json when present)."""
    folder = Path(folder)
    path = folder / "weights.npz"
    if not path.exists():
        raise DataError(f"{path} does not exist; run `midas search --out {folder}` first (it writes weights.npz last)")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable npz file ({exc}); rerun the search into that folder") from None
    record: dict[str, Any] = {}
    gpath = folder / "genotype.json"
    if gpath.exists():
        try:
            record = json.loads(gpath.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{gpath} is not valid JSON: {exc}") from None
    with z:
        if "space" not in z.files and "space" not in record:
            raise DataError(f"{path} has no 'space' entry; it was not written by `midas search`")
        space = get_space(str(_scalar(z, "space", record.get("space"))))
        missing = [f"{ct}_{k}" for ct in space.cell_types for k in ("weights", "ops", "global")
                   if f"{ct}_{k}" not in z.files] + [k for k in ("labels",) if k not in z.files]
        if missing:
            raise DataError(f"{path} lacks {missing}; rerun the search with this version of midas")
        ops = {ct: z[f"{ct}_ops"].astype(str) for ct in space.cell_types}
        weights = {ct: z[f"{ct}_weights"] for ct in space.cell_types}
        labels = z["labels"].astype(np.int64)
        for ct, w in weights.items():
            if w.ndim != 5 or w.shape[0] != len(labels) or w.shape[1:3] != ops[ct].shape:
                raise DataError(f"{path}: {ct}_weights has shape {w.shape}, expected (N={len(labels)}, "
                                f"E, K)={ops[ct].shape} followed by a G x G patch grid")
        return Run(
            folder=folder, space=space,
            method=str(_scalar(z, "method", record.get("method", "unknown"))),
            seed=int(_scalar(z, "seed", record.get("seed", 0))),
            dataset=str(_scalar(z, "dataset", record.get("dataset", "unknown"))),
            patch_grid=int(_scalar(z, "patch_grid", record.get("patch_grid", 1))),
            labels=labels, ops=ops,
            global_weights={ct: z[f"{ct}_global"].astype(np.float64) for ct in space.cell_types},
            weights=weights, record=record,
        )


def load_runs(folders: Iterable[str | Path]) -> list[Run]:
    runs = [load_run(f) for f in folders]
    if not runs:
        raise DataError("no search output folders given; pass --runs DIR [DIR ...]")
    return runs


def load_log(folder: str | Path) -> pd.DataFrame:
    """search_log.csv with its JSON columns parsed (``genotype``, ``global_weights``)."""
    path = Path(folder) / "search_log.csv"
    if not path.exists():
        raise DataError(f"{path} does not exist; it is written by `midas search` after every epoch")
    df = pd.read_csv(path)
    need = {"epoch", "genotype", "global_weights"}
    if not need <= set(df.columns):
        raise DataError(f"{path} lacks the columns {sorted(need - set(df.columns))}")
    try:
        df["genotype"] = df["genotype"].map(json.loads)
        df["global_weights"] = df["global_weights"].map(json.loads)
    except (TypeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: a genotype/global_weights cell is not valid JSON ({exc})") from None
    return df
