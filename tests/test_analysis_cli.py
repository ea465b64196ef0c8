"""`midas analyze` end to end: tables and figures from synthetic and real (tiny) search outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, tiny_overrides
from test_analysis_stats import class_dependent, write_synthetic_run

from midas.cli import main

PDF, PNG = b"%PDF", b"\x89PNG"


def assert_figure(stem: Path) -> None:
    for suffix, magic in ((".pdf", PDF), (".png", PNG)):
        path = stem.with_suffix(suffix)
        assert path.exists(), path
        data = path.read_bytes()
        assert data.startswith(magic) and len(data) > 2000, path


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """darts-space runs of the three methods: class-aware MIDAS, a weaker global one, constant DARTS."""
    root = tmp_path_factory.mktemp("runs")
    runs = []
    for method, kwargs in (("midas", {}), ("midas-global", {"grid": 1, "strength": 0.5}),
                           ("darts", {"constant": True})):
        weights, y = class_dependent(60, "darts", **kwargs)
        runs.append(write_synthetic_run(root / method / "seed0", weights, y, "darts", method=method))
    return runs


def test_discrimination_command(synthetic_runs: list[Path], tmp_path: Path) -> None:
    table = tmp_path / "disc.csv"
    rc = main(["analyze", "discrimination", "--runs", *map(str, synthetic_runs), "--table", str(table),
               "--edges-table", str(tmp_path / "edges.csv"), "--figure", str(tmp_path / "fig" / "disc.pdf")])
    assert rc == 0
    df = pd.read_csv(table)
    assert set(df["method"]) == {"midas", "midas-global", "darts"} and set(df["level"]) == {"global", "sample", "patch"}
    darts = df[df["method"] == "darts"].set_index("level")
    # DARTS weights are the same for every sample: every level gives the same numbers
    assert darts.loc["sample", "margin_mean"] == pytest.approx(darts.loc["global", "margin_mean"], abs=1e-3)
    assert len(pd.read_csv(tmp_path / "edges.csv")) == 3 * 2 * 14
    assert_figure(tmp_path / "fig" / "disc")


def test_class_aware_command(synthetic_runs: list[Path], tmp_path: Path) -> None:
    rc = main(["analyze", "class-aware", "--runs", *map(str, synthetic_runs), "--table", str(tmp_path / "p.csv"),
               "--eta-table", str(tmp_path / "eta.csv"), "--figure", str(tmp_path / "ca.pdf"),
               "--heatmap", str(tmp_path / "heat.pdf"), "--folds", "3", "--title", "synthetic"])
    assert rc == 0
    probes = pd.read_csv(tmp_path / "p.csv").set_index("method")
    assert probes.loc["midas", "probe_acc"] > 0.9
    assert probes.loc["darts", "probe_acc"] == pytest.approx(probes.loc["darts", "majority_acc"])
    eta = pd.read_csv(tmp_path / "eta.csv")
    assert eta.loc[eta["method"] == "darts", "eta_squared"].isna().all()
    assert_figure(tmp_path / "ca")
    assert_figure(tmp_path / "heat")


def test_unimodal_and_cell_commands(synthetic_runs: list[Path], tmp_path: Path) -> None:
    rc = main(["analyze", "unimodal", "--runs", *map(str, synthetic_runs), "--table", str(tmp_path / "u.csv"),
               "--dist-table", str(tmp_path / "d.csv"), "--figure", str(tmp_path / "uni.pdf")])
    assert rc == 0
    u = pd.read_csv(tmp_path / "u.csv").set_index("method")
    assert u.loc["darts", "n_constant"] == u.loc["darts", "n_distributions"] and u.loc["darts", "share_unimodal"] == 1
    assert_figure(tmp_path / "uni")
    assert main(["analyze", "cell", "--genotype", str(synthetic_runs[0] / "genotype.json"),
                 "--figure", str(tmp_path / "cell.pdf")]) == 0
    assert_figure(tmp_path / "cell")


def test_missing_run_folder_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["analyze", "unimodal", "--runs", str(tmp_path / "absent"), "--table", str(tmp_path / "u.csv")])
    assert rc == 2
    assert "weights.npz does not exist" in capsys.readouterr().err
    assert not (tmp_path / "u.csv").exists()


@pytest.fixture(scope="module")
def real_nb201_runs(tiny_data: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two real NB201 searches (midas, darts) of 2 epochs on the tiny data set."""
    root = tmp_path_factory.mktemp("search")
    runs = []
    for method in ("midas", "darts"):
        out = root / method
        args = ["search", "--space", "nb201", "--method", method, "--dataset", "tiny", "--out", str(out)]
        for o in tiny_overrides(tiny_data, epochs=2):
            args += ["--set", o]
        assert main(args) == 0
        runs.append(out)
    return runs


def test_analyses_read_real_search_outputs(real_nb201_runs: list[Path], tmp_path: Path) -> None:
    runs = list(map(str, real_nb201_runs))
    assert main(["analyze", "discrimination", "--runs", *runs, "--table", str(tmp_path / "d.csv")]) == 0
    assert main(["analyze", "class-aware", "--runs", *runs, "--table", str(tmp_path / "c.csv"), "--folds", "3"]) == 0
    assert main(["analyze", "unimodal", "--runs", *runs, "--table", str(tmp_path / "u.csv")]) == 0
    c = pd.read_csv(tmp_path / "c.csv").set_index("method")
    assert np.isfinite(c.loc["midas", "probe_acc"]) and c.loc["darts", "constant"]
    args = ["analyze", "trajectories", "--runs", *runs, "--table", str(tmp_path / "t.csv"),
            "--weights-figure", str(tmp_path / "tw.pdf"), "--figure", str(tmp_path / "t.pdf")]
    bench = SHARED_DATA / "nasbench201" / "nats_bench.csv"
    if bench.exists():
        args += ["--set", f"benchmark.table={bench}", "--bench-dataset", "cifar10"]
    assert main(args) == 0
    t = pd.read_csv(tmp_path / "t.csv")
    assert len(t) == 4 and set(t["epoch"]) == {1, 2}
    assert t["parameter_free_share_normal"].between(0, 1).all()
    if bench.exists():  # every NB201 cell is in the table: each epoch's decoded cell has an accuracy
        assert t["bench_accuracy"].between(5, 100).all()
    assert_figure(tmp_path / "tw")
    assert_figure(tmp_path / "t")
    assert main(["analyze", "cell", "--genotype", f"{runs[0]}/genotype.json", "--figure", str(tmp_path / "c")]) == 0
    assert_figure(tmp_path / "c")
