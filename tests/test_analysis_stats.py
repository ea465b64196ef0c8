"""The analysis statistics on synthetic weight sets whose answers are known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from midas.analysis import class_aware, discrimination, unimodal
from midas.analysis.load import load_run
from midas.errors import DataError
from midas.genotypes import DARTS_V2
from midas.spaces import get_space

CLASSES = 4


def write_synthetic_run(folder: Path, weights: dict[str, np.ndarray], labels: np.ndarray, space: str = "darts",
                        method: str = "midas", seed: int = 0, genotype: object = None,
                        epochs: int = 3) -> Path:
    """A search output folder in the format of `midas search` (weights.npz, genotype.json, search_log.csv).

    ``weights`` maps cell type -> (N, E, K, G, G) per-sample weights.
    """
    sp = get_space(space)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"labels": labels.astype(np.int64), "edges": np.asarray(sp.edges)}
    gw = {}
    for ct in sp.cell_types:
        w = weights[ct]
        arrays[f"{ct}_weights"] = w.astype(np.float16)
        arrays[f"{ct}_ops"] = np.asarray(sp.ops(ct), dtype=str)
        arrays[f"{ct}_global"] = w.mean(axis=(0, 3, 4)).astype(np.float32)
        gw[ct] = {"ops": [list(o) for o in sp.ops(ct)], "weights": w.mean(axis=(0, 3, 4)).tolist()}
    meta = {"space": space, "method": method, "seed": seed, "dataset": "synthetic",
            "patch_grid": weights[sp.cell_types[0]].shape[-1], "topology": "pairs"}
    np.savez(folder / "weights.npz", **arrays, **{k: np.asarray(v) for k, v in meta.items()})
    if genotype is None:
        genotype = DARTS_V2.to_dict() if sp.family == "darts" else \
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    (folder / "genotype.json").write_text(json.dumps({**meta, "genotype": genotype, "global_weights": gw}))
    rows = ["epoch,val_acc,genotype,global_weights"]
    for e in range(1, epochs + 1):
        drift = {ct: {"ops": gw[ct]["ops"], "weights": (np.asarray(gw[ct]["weights"]) * e / epochs
                                                           + (1 - e / epochs) / len(gw[ct]["ops"][0])).tolist()}
                 for ct in gw}
        cell = lambda obj: '"' + json.dumps(obj).replace('"', '""') + '"'  # noqa: E731 - CSV quoting
        rows.append(f"{e},{0.1 * e},{cell(genotype)},{cell(drift)}")
    (folder / "search_log.csv").write_text("\n".join(rows) + "\n")
    return folder


def softmax(logits: np.ndarray, axis: int = 2) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def class_dependent(n: int, space: str = "darts", grid: int = 2, strength: float = 3.0, seed: int = 0,
                    independent: bool = False, constant: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-sample weights whose logits are a class-specific pattern (+ small noise), or pure noise."""
    rng = np.random.default_rng(seed)
    sp = get_space(space)
    labels = np.arange(n) % CLASSES
    out = {}
    for ct in sp.cell_types:
        e, k = len(sp.edges), len(sp.ops(ct)[0])
        if constant:  # DARTS: the same alpha for every sample
            alpha = rng.normal(0, 1, size=(1, e, k, 1, 1))
            out[ct] = np.broadcast_to(softmax(alpha), (n, e, k, 1, 1)).copy()
            continue
        pattern = rng.normal(0, strength, size=(CLASSES, e, k, 1, 1))
        noise = rng.normal(0, 0.3, size=(n, e, k, grid, grid))
        logits = noise if independent else pattern[labels] + noise
        out[ct] = softmax(logits)
    return out, labels


# ------------------------------------------------------------------ discrimination

def test_margin_and_entropy_known_values() -> None:
    w = np.array([[1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.3, 0.2, 0.0]])
    np.testing.assert_allclose(discrimination.margin(w), [1.0, 0.0, 0.2])
    h = -(0.5 * np.log(0.5) + 0.3 * np.log(0.3) + 0.2 * np.log(0.2)) / np.log(4)
    np.testing.assert_allclose(discrimination.normalized_entropy(w), [0.0, 1.0, h])
    # unnormalized weights (float16 storage) are renormalized; axis argument is honoured
    np.testing.assert_allclose(discrimination.margin(2 * w.T, axis=0), [1.0, 0.0, 0.2])


def test_patch_level_sees_what_patch_averaging_hides(tmp_path: Path) -> None:
    """Each patch picks a different op: patches are decisive, their average is not."""
    n, sp = 40, get_space("nb201")
    w = np.full((n, len(sp.edges), 5, 2, 2), 0.01)
    for p, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        w[:, :, p, i, j] = 0.96
    run = load_run(write_synthetic_run(tmp_path / "r", {"normal": w}, np.arange(n) % CLASSES, "nb201"))
    table, edges, values = discrimination.analyze([run])
    by_level = table.set_index("level")
    assert by_level.loc["patch", "margin_mean"] > 0.9
    assert by_level.loc["sample", "margin_mean"] < 0.05
    assert by_level.loc["patch", "entropy_mean"] < by_level.loc["sample", "entropy_mean"]
    assert len(edges) == len(sp.edges) and set(values["level"]) == {"global", "sample", "patch"}


# ------------------------------------------------------------------ class-aware

def test_eta_squared_dependent_independent_constant() -> None:
    rng = np.random.default_rng(1)
    y = np.arange(400) % CLASSES
    dependent = y[:, None] * 1.0 + rng.normal(0, 0.05, size=(400, 3))
    independent = rng.normal(0, 1, size=(400, 3))
    assert (class_aware.eta_squared(dependent, y) > 0.95).all()
    assert (class_aware.eta_squared(independent, y) < 0.05).all()
    eta = class_aware.eta_squared(np.full((400, 2), 0.125), y)
    assert np.isnan(eta).all()


def test_probe_on_class_dependent_weights_beats_chance() -> None:
    weights, y = class_dependent(200, "nb201", grid=1)
    x = weights["normal"].reshape(len(y), -1)
    res = class_aware.linear_probe(x, y, folds=4)
    assert res["probe_acc"] > 0.9
    assert res["shuffled_acc"] < 0.5 and abs(res["majority_acc"] - 0.25) < 0.05
    assert not res["constant"]


def test_probe_on_class_independent_weights_is_chance() -> None:
    weights, y = class_dependent(200, "nb201", grid=1, independent=True)
    res = class_aware.linear_probe(weights["normal"].reshape(len(y), -1), y, folds=4)
    assert res["probe_acc"] < 0.45


def test_darts_like_constant_weights_do_not_crash(tmp_path: Path) -> None:
    weights, y = class_dependent(80, "darts", constant=True)
    run = load_run(write_synthetic_run(tmp_path / "d", weights, y, "darts", method="darts"))
    probes, etas = class_aware.analyze([run], folds=4)
    row = probes.iloc[0]
    assert bool(row["constant"]) and row["probe_acc"] == pytest.approx(row["majority_acc"])
    assert etas["constant"].all() and etas["eta_squared"].isna().all()
    with_midas, y2 = class_dependent(80, "darts")
    midas = load_run(write_synthetic_run(tmp_path / "m", with_midas, y2, "darts"))
    probes, etas = class_aware.analyze([midas, run], folds=4)
    fig = class_aware.heatmap_figure([midas, run], etas, count=2)
    assert len(fig.axes) >= 4
    assert probes.set_index("method").loc["midas", "probe_acc"] > 0.9
    assert etas.loc[etas["method"] == "midas", "eta_squared"].median() > 0.8


def test_class_means_recover_pattern() -> None:
    y = np.repeat(np.arange(3), 5)
    x = np.stack([y * 2.0, -y * 1.0], axis=1)
    np.testing.assert_allclose(class_aware.class_means(x, y, 4)[:3], [[0, 0], [2, -1], [4, -2]])
    assert np.isnan(class_aware.class_means(x, y, 4)[3]).all()


# ------------------------------------------------------------------ unimodality

def test_dip_test_rejects_bimodal_keeps_unimodal() -> None:
    rng = np.random.default_rng(2)
    bimodal = np.concatenate([rng.normal(0.1, 0.01, 500), rng.normal(0.3, 0.01, 500)])
    dip_b, p_b, const_b = unimodal.dip_test(bimodal)
    dip_u, p_u, const_u = unimodal.dip_test(rng.normal(0.2, 0.02, 1000))
    assert p_b < 0.05 and p_u >= 0.05 and dip_b > dip_u
    assert not const_b and not const_u
    assert unimodal.dip_test(np.full(100, 0.125)) == (0.0, 1.0, True)


def test_float16_storage_would_fake_multimodality_without_dequantizing() -> None:
    rng = np.random.default_rng(3)
    stored = (0.125 + rng.normal(0, 2e-4, 2000)).astype(np.float16).astype(np.float64)
    assert len(np.unique(stored)) < 40  # few distinct values: ties
    assert unimodal.dip_test(stored)[1] < 0.05
    assert unimodal.dip_test(unimodal.dequantize(stored, rng))[1] >= 0.05


def test_unimodal_table_marks_bimodal_constant_and_decoded(tmp_path: Path) -> None:
    n, sp = 400, get_space("nb201")
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 0.05, size=(n, len(sp.edges), 5, 1, 1))
    logits[: n // 2, 0, 3] += 2.0  # edge 0, op nor_conv_3x3: two clusters of samples
    w = softmax(logits)
    w[:, 5] = 0.2  # edge 5 constant
    run = load_run(write_synthetic_run(tmp_path / "u", {"normal": w}, np.arange(n) % CLASSES, "nb201"))
    summary, dists = unimodal.analyze([run])
    d = dists.set_index(["edge", "op"])
    assert not d.loc[(0, "nor_conv_3x3"), "unimodal"]
    assert d.loc[(5, "none"), "constant"] and d.loc[(5, "none"), "unimodal"]
    assert d.loc[(0, "nor_conv_3x3"), "decoded"] and not d.loc[(0, "none"), "decoded"]
    assert dists["decoded"].sum() == len(sp.edges)
    row = summary.iloc[0]
    assert row["n_constant"] == 5 and 0 < row["share_unimodal"] < 1
    assert row["share_unimodal_nonconstant"] < row["share_unimodal"]


# ------------------------------------------------------------------ loading

def test_load_run_reports_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="weights.npz does not exist"):
        load_run(tmp_path / "nothing")
    weights, y = class_dependent(8, "nb201")
    folder = write_synthetic_run(tmp_path / "bad", weights, y, "nb201")
    np.savez(folder / "weights.npz", labels=y, space=np.asarray("nb201"),
             normal_weights=np.zeros((3, 6, 5, 1, 1)), normal_ops=np.asarray(get_space("nb201").ops("normal")),
             normal_global=np.zeros((6, 5)))
    with pytest.raises(DataError, match="normal_weights has shape"):
        load_run(folder)
    (folder / "weights.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable npz"):
        load_run(folder)


def test_null_eta_squared_matches_shuffled_expectation() -> None:
    """Under no class effect, eta squared averages (C - 1) / (N - 1), not 0."""
    rng = np.random.default_rng(5)
    y = np.arange(200) % 10
    etas = class_aware.eta_squared(rng.normal(size=(200, 400)), y)
    assert class_aware.null_eta_squared(y) == pytest.approx(9 / 199)
    assert etas.mean() == pytest.approx(9 / 199, rel=0.15)
