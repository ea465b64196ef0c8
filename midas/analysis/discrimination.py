"""Discrimination among candidate operations: how clearly an edge's weights pick one op.

Two numbers per weight vector w over the K candidates of an edge: the margin between
the largest and the second-largest weight (1 = one-hot, 0 = a tie at the top), and
the normalized entropy H(w) / log K (0 = one-hot, 1 = uniform). They are computed at
three levels: the global weight of each edge (what decoding uses), each validation
sample (patch weights averaged), and each patch of each sample. MIDAS's claim is that
patchwise attention gives larger margins / lower entropy than global attention
(``midas-global``) and DARTS's alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from midas.analysis import style
from midas.analysis.load import Run

LEVELS = ("global", "sample", "patch")
LEVEL_LABELS = {"global": "global (per edge)", "sample": "per sample", "patch": "per patch"}


def _normalize(w: np.ndarray, axis: int) -> np.ndarray:
    w = np.clip(np.asarray(w, dtype=np.float64), 0.0, None)
    total = w.sum(axis=axis, keepdims=True)
    k = w.shape[axis]
    return np.divide(w, total, out=np.full_like(w, 1.0 / k), where=total > 0)


def margin(w: np.ndarray, axis: int = -1) -> np.ndarray:
    """Largest minus second-largest weight along ``axis`` (weights renormalized to sum 1)."""
    p = _normalize(w, axis)
    if p.shape[axis] < 2:
        return np.ones(np.delete(p.shape, axis % p.ndim))
    top = np.sort(p, axis=axis)
    return np.take(top, -1, axis=axis) - np.take(top, -2, axis=axis)


def normalized_entropy(w: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy / log K along ``axis``: 0 for one-hot, 1 for uniform weights."""
    p = _normalize(w, axis)
    k = p.shape[axis]
    if k < 2:
        return np.zeros(np.delete(p.shape, axis % p.ndim))
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -plogp.sum(axis=axis) / np.log(k)


def edge_rows(run: Run) -> list[dict[str, Any]]:
    """One row per (cell type, edge): the statistics at each level (sample/patch: mean over the set)."""
    rows = []
    for ct in run.cell_types:
        g = run.global_weights[ct]
        s = run.sample_weights(ct)  # N, E, K
        p = run.patch_weights(ct)  # N, E, K, P
        gm, ge = margin(g), normalized_entropy(g)
        sm, se = margin(s), normalized_entropy(s)  # N, E
        pm, pe = margin(p, axis=2), normalized_entropy(p, axis=2)  # N, E, P
        for e in range(g.shape[0]):
            src, dst = run.space.edges[e]
            rows.append({
                "space": run.space.name, "dataset": run.dataset, "method": run.method, "seed": run.seed,
                "cell_type": ct, "edge": e, "src": src, "dst": dst,
                "top_op": str(run.ops[ct][e][int(np.argmax(g[e]))]),
                "global_margin": gm[e], "global_entropy": ge[e],
                "sample_margin_mean": sm[:, e].mean(), "sample_entropy_mean": se[:, e].mean(),
                "patch_margin_mean": pm[:, e].mean(), "patch_entropy_mean": pe[:, e].mean(),
            })
    return rows


def level_values(run: Run, max_points: int = 20000, seed: int = 0) -> pd.DataFrame:
    """Long table of every margin/entropy value per level (subsampled to ``max_points`` per level)."""
    rng = np.random.default_rng(seed)
    frames = []
    for level in LEVELS:
        ms, es = [], []
        for ct in run.cell_types:
            if level == "global":
                w, axis = run.global_weights[ct], -1
            elif level == "sample":
                w, axis = run.sample_weights(ct), -1
            else:
                w, axis = run.patch_weights(ct), 2
            ms.append(margin(w, axis).ravel())
            es.append(normalized_entropy(w, axis).ravel())
        m, e = np.concatenate(ms), np.concatenate(es)
        if len(m) > max_points:
            keep = rng.choice(len(m), max_points, replace=False)
            m, e = m[keep], e[keep]
        frames.append(pd.DataFrame({"space": run.space.name, "dataset": run.dataset, "method": run.method,
                                    "seed": run.seed, "level": level, "margin": m, "entropy": e}))
    return pd.concat(frames, ignore_index=True)


def summary(values: pd.DataFrame) -> pd.DataFrame:
    """Per (space, dataset, method, level): mean and median over values and seeds, and the seed spread."""
    per_seed = values.groupby(["space", "dataset", "method", "level", "seed"], sort=False).agg(
        margin=("margin", "mean"), entropy=("entropy", "mean")).reset_index()
    agg = values.groupby(["space", "dataset", "method", "level"], sort=False).agg(
        n_values=("margin", "size"), margin_mean=("margin", "mean"), margin_median=("margin", "median"),
        entropy_mean=("entropy", "mean"), entropy_median=("entropy", "median")).reset_index()
    spread = per_seed.groupby(["space", "dataset", "method", "level"], sort=False).agg(
        n_seeds=("seed", "nunique"), margin_seed_std=("margin", "std"),
        entropy_seed_std=("entropy", "std")).reset_index()
    out = agg.merge(spread, on=["space", "dataset", "method", "level"])
    out["level"] = pd.Categorical(out["level"], LEVELS, ordered=True)
    out["_m"] = out["method"].map(lambda m: style.method_sort_key(m))
    return out.sort_values(["space", "dataset", "_m", "level"]).drop(columns="_m").reset_index(drop=True)


def analyze(runs: Sequence[Run], max_points: int = 20000) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(summary table, per-edge table, long value table for the figure)."""
    values = pd.concat([level_values(r, max_points, seed=i) for i, r in enumerate(runs)], ignore_index=True)
    edges = pd.DataFrame([row for r in runs for row in edge_rows(r)])
    return summary(values), edges, values


def figure(values: pd.DataFrame, title: str = "") -> Any:
    """Violins of margin and normalized entropy per method (hue = level), one column per space."""
    import seaborn as sns
    from matplotlib.patches import Patch

    spaces = list(dict.fromkeys(values["space"]))
    methods = sorted(values["method"].unique(), key=style.method_sort_key)
    levels = [lv for lv in LEVELS if lv in set(values["level"])]
    fig = style.new_figure(max(3.2, 2.6 * len(spaces)), 4.6)
    axes = fig.subplots(2, len(spaces), squeeze=False, sharey=False)
    palette = dict(zip([LEVEL_LABELS[lv] for lv in levels], ["#BBBBBB", "#77AADD", "#114477"]))
    data = values.assign(level=values["level"].map(LEVEL_LABELS))
    for col, space in enumerate(spaces):
        sub = data[data["space"] == space]
        for row, (metric, label) in enumerate((("margin", "top-1 minus top-2 weight"),
                                                ("entropy", "normalized entropy"))):
            ax = axes[row, col]
            sns.violinplot(data=sub, x="method", y=metric, hue="level", order=methods,
                           hue_order=[LEVEL_LABELS[lv] for lv in levels], palette=palette, cut=0,
                           density_norm="width", inner="quart", linewidth=0.6, ax=ax, legend=False)
            ax.set_xlabel("" if row == 0 else "method")
            ax.set_ylabel(label if col == 0 else "")
            if row == 0:
                ax.set_title(space)
    handles = [Patch(facecolor=palette[LEVEL_LABELS[lv]], edgecolor="#333333", linewidth=0.5) for lv in levels]
    fig.legend(handles, [LEVEL_LABELS[lv] for lv in levels], loc="outside lower center", ncol=len(levels))
    if title:
        fig.suptitle(title)
    return fig
