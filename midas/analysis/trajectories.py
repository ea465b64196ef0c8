"""Search trajectories: the global weights of every edge over epochs, and what they decode to.

Read from search_log.csv (one row per epoch, ``global_weights`` and ``genotype`` as
JSON). Per epoch we also record the share of parameter-free operations in the decoded
normal cell (skip connections, pooling, none, noise): DARTS's known failure is a
drift toward them. For NB201 with a benchmark table (NAS-Bench-201 / NATS-Bench-TSS
accuracies, looked up by arch string), the benchmark accuracy of the cell decoded at
each epoch shows whether the search improves or collapses over time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from midas.analysis import style
from midas.analysis.load import PARAMETER_FREE, decoded_edges, load_log
from midas.errors import ConfigError, DataError
from midas.genotypes import Nb201Arch, parse_genotype
from midas.spaces import SearchSpace, get_space


@dataclass
class Trajectory:
    """One search's log in array form."""

    folder: Path
    space: SearchSpace
    method: str
    seed: int
    dataset: str
    epochs: np.ndarray  # (T,)
    ops: dict[str, list[list[str]]]  # cell type -> per edge op names
    weights: dict[str, np.ndarray]  # cell type -> (T, E, K)
    genotypes: list[Any]  # parsed genotype per epoch
    val_acc: np.ndarray  # (T,)


def load_trajectory(folder: str | Path, space: str | None = None, method: str | None = None,
                    seed: int | None = None, dataset: str | None = None) -> Trajectory:
    """Parse a search folder's log; metadata comes from genotype.json / config.yaml when present."""
    import json

    import yaml

    folder = Path(folder)
    df = load_log(folder)
    meta: dict[str, Any] = {}
    for name, reader in (("genotype.json", json.loads), ("config.yaml", yaml.safe_load)):
        path = folder / name
        if path.exists():
            meta = {**(reader(path.read_text()) or {}), **meta}
    space_name = space or meta.get("space")
    if not space_name:
        raise DataError(f"{folder}: no genotype.json or config.yaml to tell the search space; pass it explicitly")
    sp = get_space(space_name)
    first = df["global_weights"].iloc[0]
    ops = {ct: first[ct]["ops"] for ct in sp.cell_types if ct in first}
    weights = {ct: np.array([gw[ct]["weights"] for gw in df["global_weights"]], dtype=np.float64) for ct in ops}
    genotypes = [parse_genotype(g, sp) for g in df["genotype"]]
    return Trajectory(folder, sp, method or meta.get("method", "unknown"),
                      int(seed if seed is not None else meta.get("seed", 0)),
                      dataset or meta.get("dataset", "unknown"), df["epoch"].to_numpy(), ops, weights, genotypes,
                      df["val_acc"].to_numpy(dtype=float) if "val_acc" in df else np.full(len(df), np.nan))


def parameter_free_share(space: SearchSpace, genotype: Any, cell_type: str = "normal") -> float:
    """Share of the decoded ops of ``cell_type`` that have no parameters (NB201: `none` edges included)."""
    ops = [op for ct, _, op in decoded_edges(space, genotype) if ct == cell_type]
    return float(np.mean([op in PARAMETER_FREE for op in ops])) if ops else float("nan")


def count_op(space: SearchSpace, genotype: Any, op: str, cell_type: str = "normal") -> int:
    return sum(1 for ct, _, o in decoded_edges(space, genotype) if ct == cell_type and o == op)


@dataclass
class BenchScores:
    """Benchmark accuracy of NB201 arch strings for one dataset (through ``midas.nb201_bench``)."""

    bench: Any  # midas.nb201_bench.Benchmark
    dataset: str

    def lookup(self, arch: str) -> float:
        from midas.errors import GenotypeError

        if self.dataset not in self.bench.datasets:
            return float("nan")
        try:
            return float(self.bench.lookup(arch)[self.dataset])
        except GenotypeError:  # not in the table (incomplete table): no number for this epoch
            return float("nan")

    @property
    def column(self) -> str:
        return getattr(self.bench, "columns", {}).get(self.dataset, self.dataset)

    @property
    def best(self) -> float:
        df = getattr(self.bench, "df", None)
        return float(df[self.column].max()) if df is not None and self.column in df else float("nan")


def open_bench_scores(cfg: dict[str, Any], dataset: str) -> BenchScores:
    """The configured benchmark (``benchmark.table`` or ``benchmark.api_file``) scored on ``dataset``."""
    from midas.nb201_bench import open_benchmark

    bench = open_benchmark(cfg)
    if dataset not in bench.datasets:
        raise ConfigError(f"the benchmark has no accuracy column for dataset {dataset!r}; configured: "
                          f"{bench.datasets} (benchmark.columns.<dataset>); pass --bench-dataset to choose one")
    return BenchScores(bench, dataset)


def epoch_rows(traj: Trajectory, bench: BenchScores | None = None) -> list[dict[str, Any]]:
    rows = []
    for t, g in enumerate(traj.genotypes):
        row = {"space": traj.space.name, "dataset": traj.dataset, "method": traj.method, "seed": traj.seed,
               "epoch": int(traj.epochs[t]), "val_acc": traj.val_acc[t],
               "genotype": g.to_str() if isinstance(g, Nb201Arch) else str(g),
               "parameter_free_share_normal": parameter_free_share(traj.space, g, "normal"),
               "skip_connect_normal": count_op(traj.space, g, "skip_connect", "normal")}
        if bench is not None and isinstance(g, Nb201Arch):
            row["bench_accuracy"] = bench.lookup(g.to_str())
        rows.append(row)
    return rows


def analyze(trajs: Sequence[Trajectory], bench: BenchScores | None = None) -> pd.DataFrame:
    return pd.DataFrame([row for t in trajs for row in epoch_rows(t, bench)])


def weights_figure(traj: Trajectory, title: str = "") -> Any:
    """One panel per edge (rows grouped by cell type): each op's global weight over epochs."""
    from matplotlib.ticker import MaxNLocator

    cts = list(traj.weights)
    n_edges = traj.weights[cts[0]].shape[1]
    cols = min(n_edges, 7)
    rows_per_ct = int(np.ceil(n_edges / cols))
    fig = style.new_figure(1.35 * cols + 0.4, 1.15 * rows_per_ct * len(cts) + 0.9)
    axes = fig.subplots(rows_per_ct * len(cts), cols, squeeze=False, sharex=True, sharey=True)
    seen: dict[str, Any] = {}
    x = traj.epochs
    decoded = {(ct, e): op for ct, e, op in decoded_edges(traj.space, traj.genotypes[-1])}
    for c, ct in enumerate(cts):
        w = traj.weights[ct]
        for e in range(cols * rows_per_ct):
            ax = axes[c * rows_per_ct + e // cols, e % cols]
            if e >= n_edges:
                ax.set_axis_off()
                continue
            for k, op in enumerate(traj.ops[ct][e]):
                (line,) = ax.plot(x, w[:, e, k], color=style.op_colour(op),
                                  linewidth=1.8 if decoded.get((ct, e)) == op else 0.9,
                                  linestyle="--" if op == "none" else "-")
                seen.setdefault(op, line)
            src, dst = traj.space.edges[e]
            mark = "" if (ct, e) in decoded else " (dropped)"
            ax.set_title(f"{ct[:4]} {src}→{dst}{mark}", fontsize=7)
            ax.tick_params(labelsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("epoch", fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    for ax in axes[:, 0]:
        ax.set_ylabel("global weight", fontsize=7)
    fig.legend(list(seen.values()), [style.op_short(o) for o in seen], loc="outside lower center",
               ncol=min(len(seen), 9), fontsize=7)
    head = f"{traj.space.name} / {traj.dataset} / {traj.method} (seed {traj.seed})"
    fig.suptitle(f"{head}{', ' + title if title else ''}: global weights per edge; "
                 "thick line = op decoded at the last epoch")
    return fig


def bench_figure(table: pd.DataFrame, bench: BenchScores | None, title: str = "") -> Any:
    """Benchmark accuracy (if any) and parameter-free share of the decoded cell per epoch; one line per method."""
    from matplotlib.ticker import MaxNLocator

    has_bench = "bench_accuracy" in table and table["bench_accuracy"].notna().any()
    panels = [("parameter_free_share_normal", "parameter-free ops in\ndecoded normal cell (share)")]
    if has_bench:
        panels.insert(0, ("bench_accuracy", f"benchmark test accuracy (%)\n{bench.dataset if bench else ''}"))
    fig = style.new_figure(3.4 * len(panels), 2.7)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    methods = sorted(table["method"].unique(), key=style.method_sort_key)
    for ax, (col, label) in zip(axes, panels):
        for m in methods:
            g = table[table["method"] == m].groupby("epoch")[col]
            mean, lo, hi = g.mean(), g.min(), g.max()
            ax.plot(mean.index, mean.values, color=style.method_colour(m), label=m, marker="o", markersize=2.5)
            if table.loc[table["method"] == m, "seed"].nunique() > 1:
                ax.fill_between(mean.index, lo.values, hi.values, color=style.method_colour(m), alpha=0.2,
                                linewidth=0)
        if col == "bench_accuracy" and bench is not None and np.isfinite(bench.best):
            ax.axhline(bench.best, color="#333333", linestyle=":", linewidth=0.8, label="best in table")
        ax.set_xlabel("search epoch")
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        ax.set_ylabel(label)
    axes[0].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    return fig
