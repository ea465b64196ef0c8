"""Unimodality of the per-sample weight distributions (Hartigan's dip test).

For each (cell type, edge, op) the per-sample weights (patch weights averaged) over
the validation samples form one distribution. The dip test (``diptest`` package,
tabulated p-values) rejects unimodality at p < alpha. Two details matter:

- weights.npz stores float16, so weights take few distinct values when their spread
  is small; the dip test reads such ties as structure. Values are therefore
  dequantized first: uniform noise within half a float16 step is added (seeded), which
  changes nothing beyond the storage precision.
- a constant distribution (DARTS: every sample has the same alpha) is unimodal
  trivially; it is marked ``constant`` and counted separately in the shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from midas.analysis import style
from midas.analysis.load import Run

#: spread (max - min) below which a distribution counts as constant
CONSTANT_RANGE = 1e-6


def dequantize(values: np.ndarray, rng: np.random.Generator, dtype: type = np.float16) -> np.ndarray:
    """Spread values stored as ``dtype`` uniformly within half a representable step either side."""
    v = np.asarray(values, dtype=np.float64)
    step = np.spacing(np.abs(v).astype(dtype)).astype(np.float64)
    return v + rng.uniform(-0.5, 0.5, size=v.shape) * step


def dip_test(values: np.ndarray) -> tuple[float, float, bool]:
    """(dip statistic, p-value, constant) for a 1-d sample; constant or n < 4 -> (0, 1, True)."""
    import diptest

    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if len(x) < 4 or np.ptp(x) <= CONSTANT_RANGE:
        return 0.0, 1.0, True
    dip, p = diptest.diptest(x)
    return float(dip), float(p), False


def distribution_rows(run: Run, alpha: float = 0.05, seed: int = 0) -> list[dict[str, Any]]:
    """One row per (cell type, edge, op) of a run: dip, p-value, constant, unimodal, decoded."""
    rng = np.random.default_rng(seed)
    decoded = {(ct, e, op) for ct, e, op in run.decoded_edges()}
    rows = []
    for ct in run.cell_types:
        s = run.sample_weights(ct)  # N, E, K
        stored = run.weights[ct].dtype
        for e in range(s.shape[1]):
            for k in range(s.shape[2]):
                raw = s[:, e, k]
                constant = np.ptp(raw) <= CONSTANT_RANGE
                # patch means of float16 values are not float16 themselves, but their spacing is not finer
                x = raw if constant or stored != np.float16 else dequantize(raw, rng)
                dip, p, const = dip_test(x)
                op = str(run.ops[ct][e, k])
                rows.append({"space": run.space.name, "dataset": run.dataset, "method": run.method,
                             "seed": run.seed, "cell_type": ct, "edge": e, "src": run.space.edges[e][0],
                             "dst": run.space.edges[e][1], "op": op, "decoded": (ct, e, op) in decoded,
                             "n": len(raw), "mean": raw.mean(), "std": raw.std(), "dip": dip, "p_value": p,
                             "constant": bool(const or constant), "unimodal": bool(p >= alpha)})
    return rows


def summary(dists: pd.DataFrame) -> pd.DataFrame:
    """Share of unimodal distributions per (space, dataset, method): all, non-constant, decoded ops."""
    rows = []
    for (space, dataset, method), g in dists.groupby(["space", "dataset", "method"], sort=False):
        varying = g[~g["constant"]]
        dec = g[g["decoded"]]
        per_seed = g.groupby("seed")["unimodal"].mean()
        rows.append({"space": space, "dataset": dataset, "method": method, "n_seeds": g["seed"].nunique(),
                     "n_distributions": len(g), "n_constant": int(g["constant"].sum()),
                     "share_unimodal": g["unimodal"].mean(),
                     "share_unimodal_seed_std": per_seed.std() if len(per_seed) > 1 else np.nan,
                     "share_unimodal_nonconstant": varying["unimodal"].mean() if len(varying) else np.nan,
                     "share_unimodal_decoded": dec["unimodal"].mean() if len(dec) else np.nan,
                     "median_dip": g["dip"].median()})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    return out.sort_values("method", key=lambda s: s.map(style.method_sort_key)).reset_index(drop=True)


def analyze(runs: Sequence[Run], alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary table, per-distribution table)."""
    dists = pd.DataFrame([row for i, r in enumerate(runs) for row in distribution_rows(r, alpha, seed=i)])
    return summary(dists), dists


def figure(runs: Sequence[Run], dists: pd.DataFrame, title: str = "") -> Any:
    """Histogram + KDE of the decoded op's per-sample weight on each decoded edge; one column per method.

    Uses the first seed of each method; the dip-test p-value is printed in each panel.
    """
    from matplotlib.ticker import MaxNLocator
    from scipy.stats import gaussian_kde

    first: dict[str, Run] = {}
    for r in sorted(runs, key=lambda r: r.seed):
        first.setdefault(r.method, r)
    methods = sorted(first, key=style.method_sort_key)
    slots = max(len(first[m].decoded_edges()) for m in methods) or 1
    fig = style.new_figure(2.3 * len(methods), 0.95 * slots + 0.6)
    axes = fig.subplots(slots, len(methods), squeeze=False)
    for j, method in enumerate(methods):
        run = first[method]
        dec = run.decoded_edges()
        for i in range(slots):
            ax = axes[i, j]
            if i >= len(dec):
                ax.set_axis_off()
                continue
            ct, e, op = dec[i]
            k = list(run.ops[ct][e]).index(op)
            x = run.sample_weights(ct)[:, e, k]
            row = dists[(dists["method"] == method) & (dists["seed"] == run.seed) & (dists["cell_type"] == ct)
                        & (dists["edge"] == e) & (dists["op"] == op)].iloc[0]
            colour = style.op_colour(op)
            if row["constant"]:
                ax.axvline(x[0], color=colour, linewidth=2)
                ax.set_xlim(x[0] - 0.05, x[0] + 0.05)
                note = "constant"
            else:
                ax.hist(x, bins=30, density=True, color=colour, alpha=0.45, linewidth=0, histtype="stepfilled")
                grid = np.linspace(x.min(), x.max(), 200)
                try:
                    ax.plot(grid, gaussian_kde(x)(grid), color=colour)
                except (np.linalg.LinAlgError, ValueError):
                    pass
                note = f"dip p={row['p_value']:.2f}" + ("" if row["unimodal"] else " (multimodal)")
            src, dst = run.space.edges[e]
            ax.set_title(f"{ct[:4]} {src}→{dst} {style.op_short(op)}: {note}", fontsize=7)
            ax.set_yticks([])
            ax.grid(False)
            ax.tick_params(labelsize=6)
            ax.xaxis.set_major_locator(MaxNLocator(4))
            if i == 0:
                ax.text(0.5, 1.45, f"{method} (seed {run.seed})", transform=ax.transAxes, ha="center",
                        fontsize=9, fontweight="bold")
        axes[min(len(dec), slots) - 1, j].set_xlabel("per-sample weight")
    if title:
        fig.suptitle(title)
    return fig
