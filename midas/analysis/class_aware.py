"""Class-aware weights: how much of the per-sample architecture weights the class label explains.

Three views of the same (N, E, K) per-sample weights (patch weights averaged):
- eta squared per (edge, op): between-class sum of squares / total sum of squares of
  the weight over the validation samples (0 = the class explains nothing, 1 = the
  weight is a function of the class). Undefined when the weight does not vary at all
  (DARTS: alpha is the same for every input); reported as NaN with ``constant`` set.
- per-class means (class x op) for the edges with the largest mean eta squared;
- a linear probe: multinomial logistic regression on the concatenated weight vector
  of all edges and cell types, stratified k-fold cross-validated, against the
  cross-validated majority-class baseline and the same probe trained on shuffled labels.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from midas.analysis import style
from midas.analysis.load import Run

#: a weight whose total sum of squares over samples is below this is treated as constant
CONSTANT_SS = 1e-12


def eta_squared(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Eta squared of ``labels`` for each column of ``values`` (N, ...); NaN where the column is constant."""
    x = np.asarray(values, dtype=np.float64)
    y = np.asarray(labels)
    grand = x.mean(axis=0)
    ss_total = ((x - grand) ** 2).sum(axis=0)
    ss_between = np.zeros_like(grand)
    for c in np.unique(y):
        xc = x[y == c]
        ss_between += len(xc) * (xc.mean(axis=0) - grand) ** 2
    constant = ss_total <= CONSTANT_SS * max(len(x), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.where(constant, np.nan, ss_between / np.where(constant, 1.0, ss_total))
    return np.clip(eta, 0.0, 1.0)


def null_eta_squared(labels: np.ndarray) -> float:
    """Expected eta squared when the class explains nothing: (classes - 1) / (samples - 1).

    Eta squared is biased upward on finite samples; this is the level to compare against.
    """
    n, c = len(labels), len(np.unique(labels))
    return (c - 1) / (n - 1) if n > 1 else float("nan")


def class_means(values: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, ...) mean of ``values`` per class (NaN for a class without samples)."""
    x = np.asarray(values, dtype=np.float64)
    out = np.full((num_classes, *x.shape[1:]), np.nan)
    for c in range(num_classes):
        sel = labels == c
        if sel.any():
            out[c] = x[sel].mean(axis=0)
    return out


def _folds(labels: np.ndarray, max_folds: int) -> int:
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    return int(min(max_folds, counts.min())) if len(counts) > 1 else 0


def linear_probe(features: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0,
                 max_iter: int = 300) -> dict[str, Any]:
    """Cross-validated accuracy of a linear probe predicting the class from ``features`` (N, F).

    Returns probe accuracy (mean, std over folds), the same probe on shuffled labels,
    the cross-validated majority-class baseline, chance (1 / classes), the number of
    folds and whether the features were constant (then the probe is the majority baseline).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    y = np.asarray(labels, dtype=np.int64)
    n_classes = len(np.unique(y))
    k = _folds(y, folds)
    varying = x.std(axis=0) > 1e-9
    result: dict[str, Any] = {"n_samples": len(y), "n_features": x.shape[1], "n_varying_features": int(varying.sum()),
                              "classes": n_classes, "chance": 1.0 / max(n_classes, 1), "folds": k,
                              "constant": not varying.any()}
    if k < 2:
        result.update(probe_acc=np.nan, probe_std=np.nan, shuffled_acc=np.nan, majority_acc=np.nan,
                      note="fewer than 2 samples in some class or a single class: no cross-validation")
        return result
    x = x[:, varying]
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(y)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)

    def score(target: np.ndarray) -> list[float]:
        accs = []
        for tr, te in cv.split(x, target):
            if x.shape[1] == 0:  # nothing varies: the best a probe can do is the majority class
                pred = np.full(len(te), np.bincount(target[tr]).argmax())
            else:
                model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence warnings on tiny sets are not informative
                    model.fit(x[tr], target[tr])
                pred = model.predict(x[te])
            accs.append(float((pred == target[te]).mean()))
        return accs

    majority = [float((y[te] == np.bincount(y[tr]).argmax()).mean()) for tr, te in cv.split(x, y)]
    probe = score(y)
    result.update(probe_acc=float(np.mean(probe)), probe_std=float(np.std(probe)),
                  shuffled_acc=float(np.mean(score(shuffled))), majority_acc=float(np.mean(majority)),
                  note="weights identical for all samples: probe = majority baseline" if result["constant"] else "")
    return result


def probe_features(run: Run, patches: bool = False) -> np.ndarray:
    """(N, F) concatenated per-sample weights of all edges and cell types (patch means unless ``patches``)."""
    parts = [(run.patch_weights(ct) if patches else run.sample_weights(ct)).reshape(len(run.labels), -1)
             for ct in run.cell_types]
    return np.concatenate(parts, axis=1)


def eta_rows(run: Run) -> list[dict[str, Any]]:
    rows = []
    null = null_eta_squared(run.labels)
    for ct in run.cell_types:
        s = run.sample_weights(ct)
        eta = eta_squared(s, run.labels)  # E, K
        for e in range(eta.shape[0]):
            for k in range(eta.shape[1]):
                rows.append({"space": run.space.name, "dataset": run.dataset, "method": run.method,
                             "seed": run.seed, "cell_type": ct, "edge": e, "src": run.space.edges[e][0],
                             "dst": run.space.edges[e][1], "op": str(run.ops[ct][e, k]),
                             "eta_squared": eta[e, k], "eta_squared_null": null,
                             "constant": bool(np.isnan(eta[e, k])),
                             "weight_mean": s[:, e, k].mean(), "weight_std": s[:, e, k].std()})
    return rows


def probe_row(run: Run, folds: int, max_samples: int, patches: bool, seed: int = 0) -> dict[str, Any]:
    x, y = probe_features(run, patches), run.labels
    if max_samples and len(y) > max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), max_samples, replace=False))
        x, y = x[keep], y[keep]
    res = linear_probe(x, y, folds=folds, seed=seed)
    return {"space": run.space.name, "dataset": run.dataset, "method": run.method, "seed": run.seed,
            "features": "patches" if patches else "patch means", **res}


def analyze(runs: Sequence[Run], folds: int = 5, max_samples: int = 5000,
            patches: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(probe table: one row per run, eta-squared table: one row per run x cell type x edge x op)."""
    probes = pd.DataFrame([probe_row(r, folds, max_samples, patches) for r in runs])
    etas = pd.DataFrame([row for r in runs for row in eta_rows(r)])
    return probes, etas


def top_edges(etas: pd.DataFrame, method: str, count: int) -> list[tuple[str, int]]:
    """The (cell type, edge) pairs of ``method`` with the largest mean eta squared over ops and seeds."""
    sub = etas[(etas["method"] == method) & ~etas["constant"]]
    if sub.empty:
        sub = etas[etas["method"] == method]
        ranked = sub.groupby(["cell_type", "edge"], sort=False).size().reset_index()
        return [(r.cell_type, int(r.edge)) for r in ranked.head(count).itertuples()]
    ranked = sub.groupby(["cell_type", "edge"]).eta_squared.mean().sort_values(ascending=False)
    return [(ct, int(e)) for ct, e in ranked.index[:count]]


def summary_figure(probes: pd.DataFrame, etas: pd.DataFrame, title: str = "") -> Any:
    """Left: eta squared per (edge, op) per method; right: probe vs shuffled-label probe vs majority."""
    methods = sorted(probes["method"].unique(), key=style.method_sort_key)
    fig = style.new_figure(7.0, 2.8)
    ax_eta, ax_probe = fig.subplots(1, 2, width_ratios=[1, 1.3])
    data = etas.assign(eta=etas["eta_squared"]).dropna(subset=["eta"])
    groups = [data.loc[data["method"] == m, "eta"].to_numpy() for m in methods]
    box = ax_eta.boxplot(groups, positions=range(len(methods)), widths=0.6, showfliers=False, patch_artist=True,
                         medianprops={"color": "#333333"})
    for patch, m in zip(box["boxes"], methods):
        patch.set_facecolor(style.method_colour(m))
        patch.set_alpha(0.6)
    rng = np.random.default_rng(0)
    for i, g in enumerate(groups):
        ax_eta.scatter(i + rng.uniform(-0.22, 0.22, len(g)), g, s=2, color="#333333", alpha=0.4, linewidths=0)
    ax_eta.set_xticks(range(len(methods)), methods)
    for i, m in enumerate(methods):
        if etas.loc[etas["method"] == m, "constant"].all():
            ax_eta.text(i, 0.5, "constant\n(eta² undefined)", ha="center", va="center", fontsize=7, color="#555555")
    ax_eta.axhline(etas["eta_squared_null"].mean(), color="#333333", linestyle=":", linewidth=0.8)
    ax_eta.text(len(methods) - 0.5, etas["eta_squared_null"].mean(), " no class effect\n (expected)", fontsize=6,
                va="bottom", ha="right", color="#333333")
    ax_eta.set_ylim(-0.02, 1.02)
    ax_eta.set_xlabel("method")
    ax_eta.set_ylabel("eta² of class per (edge, op)")
    bars = [("probe_acc", "linear probe", None), ("shuffled_acc", "probe, shuffled labels", "//"),
            ("majority_acc", "majority class", "..")]
    width = 0.26
    for j, (col, label, hatch) in enumerate(bars):
        means = [probes.loc[probes["method"] == m, col].mean() for m in methods]
        errs = [probes.loc[probes["method"] == m, col].std() if (probes["method"] == m).sum() > 1 else 0.0
                for m in methods]
        xs = np.arange(len(methods)) + (j - 1) * width
        ax_probe.bar(xs, means, width, yerr=errs, capsize=2, label=label,
                     color=[style.method_colour(m) for m in methods], alpha=1.0 if j == 0 else 0.45,
                     hatch=hatch, edgecolor="#333333", linewidth=0.5)
    chance = probes["chance"].mean()
    ax_probe.axhline(chance, color="#333333", linestyle=":", linewidth=0.8)
    ax_probe.set_xticks(np.arange(len(methods)), methods)
    ax_probe.set_xlabel("method")
    ax_probe.set_ylabel("cross-validated accuracy")
    ax_probe.set_ylim(0, 1)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="#999999", alpha=1.0 if j == 0 else 0.45, hatch=h, edgecolor="#333333", linewidth=0.5)
               for j, (_, _, h) in enumerate(bars)]
    handles.append(Line2D([], [], color="#333333", linestyle=":", linewidth=0.8))
    ax_probe.legend(handles, [b[1] for b in bars] + ["chance (1 / classes)"], loc="upper right", fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def heatmap_figure(runs: Sequence[Run], etas: pd.DataFrame, count: int = 3,
                   class_names: Sequence[str] | None = None, title: str = "") -> Any:
    """Per-class mean weight (class x op) for the ``count`` most class-dependent edges of each method."""
    by_method: dict[str, list[Run]] = {}
    for r in runs:
        by_method.setdefault(r.method, []).append(r)
    methods = sorted(by_method, key=style.method_sort_key)
    num_classes = int(max(r.labels.max() for r in runs) + 1)
    names = list(class_names) if class_names is not None and len(class_names) >= num_classes else \
        [str(c) for c in range(num_classes)]
    fig = style.new_figure(2.2 * count + 0.8, 0.35 * num_classes * len(methods) + 0.9 * len(methods))
    axes = fig.subplots(len(methods), count, squeeze=False)
    image = None
    for i, method in enumerate(methods):
        edges = top_edges(etas, method, count)
        for j in range(count):
            ax = axes[i, j]
            if j >= len(edges):
                ax.set_axis_off()
                continue
            ct, e = edges[j]
            means = np.nanmean([class_means(r.sample_weights(ct)[:, e, :], r.labels, num_classes)
                                for r in by_method[method]], axis=0)  # C, K
            ops = by_method[method][0].ops[ct][e]
            centred = means - np.nanmean(means, axis=0, keepdims=True)
            scale = np.nanmax(np.abs(centred)) or 1.0
            image = ax.imshow(centred / scale, cmap="PuOr_r", vmin=-1, vmax=1, aspect="auto")
            sel = etas[(etas["method"] == method) & (etas["cell_type"] == ct) & (etas["edge"] == e)]
            eta = sel["eta_squared"].mean()
            src, dst = runs[0].space.edges[e]
            if np.isnan(eta):
                ax.text(0.5, 0.5, "same weights\nfor every sample", transform=ax.transAxes, ha="center",
                        va="center", fontsize=7, color="#555555")
                ax.set_title(f"{method}: {ct} {src}→{dst}\neta² undefined (constant)", fontsize=7)
            else:
                ax.set_title(f"{method}: {ct} {src}→{dst}\nmean eta²={eta:.2f}, range ±{scale:.3g}", fontsize=7)
            ax.set_xticks(range(len(ops)), [style.op_short(o) for o in ops], rotation=60, fontsize=7)
            ax.set_yticks(range(num_classes), names if j == 0 else [""] * num_classes, fontsize=7)
            ax.grid(False)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="class mean − mean over classes\n(scaled per panel)")
    if title:
        fig.suptitle(title)
    return fig
