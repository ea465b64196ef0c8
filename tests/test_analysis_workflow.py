"""The analysis rules of the workflow: figures and tables from search outputs, and the Snakemake report.

The search outputs are synthetic (written in the format of `midas search`), so the test
exercises the analysis rules and the report, not the searches (tests/test_analysis_cli.py
runs real searches through the same analysis code).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO
from test_analysis_stats import class_dependent, write_synthetic_run

pytestmark = pytest.mark.slow

SPACES = {"nb201": ["tiny"], "s2": ["tiny"]}
METHODS = ["midas", "midas-global", "darts"]
SEEDS = [0, 1]
ANALYSIS_RULES = ["analysis_discrimination", "analysis_class_aware", "analysis_unimodal", "analysis_trajectories",
                  "analysis_cells"]


def snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = tmp_path_factory.mktemp("wf")
    cfg = {"budget": "tiny-test", "spaces": SPACES, "methods": METHODS, "seeds": SEEDS,
           "data": {"source": "npz", "train": "unused.npz", "test": "unused.npz"},
           "search": {"epochs": 3}, "analysis": {"probe_folds": 3}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    for space, datasets in SPACES.items():
        for dataset in datasets:
            for method in METHODS:
                for seed in SEEDS:
                    kwargs = {"constant": True} if method == "darts" else {"grid": 1 if method == "midas-global" else 2}
                    weights, y = class_dependent(40, space, seed=seed, **kwargs)
                    write_synthetic_run(wd / "results" / "search" / space / dataset / method / f"seed{seed}",
                                        weights, y, space, method=method, seed=seed, genotype=_genotype(space))
                    # the search rule's benchmark file is one of its outputs: present, so no search reruns
                    bench = wd / "results" / "benchmarks" / "search" / space / dataset / method / f"seed{seed}.tsv"
                    bench.parent.mkdir(parents=True, exist_ok=True)
                    bench.write_text("s\th:m:s\n1.0\t0:00:01\n")
    return wd


def _genotype(space: str) -> object:
    if space == "nb201":
        return "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    return {"normal": [["sep_conv_3x3", 0], ["skip_connect", 1]] * 4, "normal_concat": [2, 3, 4, 5],
            "reduce": [["skip_connect", 0], ["sep_conv_3x3", 1]] * 4, "reduce_concat": [2, 3, 4, 5]}


def test_figure_rules_and_report(workflow_dir: Path) -> None:
    run = snakemake(workflow_dir, "--cores", "2", "--until", *ANALYSIS_RULES)
    assert run.returncode == 0, run.stderr[-4000:]
    figures = workflow_dir / "figures"
    expected = ["discrimination_tiny"] + [f"{k}_{s}_tiny" for s in SPACES for k in
                                          ("class_aware", "class_means", "unimodal", "trajectories")]
    expected += [f"weights_{s}_tiny_{m}" for s in SPACES for m in METHODS]
    expected += [f"cells/{s}_tiny_{m}_seed{seed}" for s in SPACES for m in METHODS for seed in SEEDS]
    for name in expected:
        for ext in ("pdf", "png"):
            path = figures / f"{name}.{ext}"
            assert path.exists() and path.stat().st_size > 1000, path
    tables = workflow_dir / "results" / "analysis"
    import pandas as pd

    uni = pd.read_csv(tables / "unimodal_nb201_tiny.csv").set_index("method")
    assert list(uni.index) == METHODS and (uni["n_seeds"] == len(SEEDS)).all()
    assert uni.loc["darts", "share_unimodal"] == 1.0
    probe = pd.read_csv(tables / "class_aware_s2_tiny.csv")
    assert len(probe) == len(METHODS) * len(SEEDS)
    assert probe.loc[probe["method"] == "midas", "probe_acc"].min() > 0.8
    traj = pd.read_csv(tables / "trajectories_nb201_tiny.csv")
    assert sorted(set(traj["epoch"])) == [1, 2, 3]

    # the report: every analysis table and PNG figure, captions rendered with the budget
    targets = [str(p.relative_to(workflow_dir)) for p in sorted(figures.rglob("*.png"))]
    targets += [str(p.relative_to(workflow_dir)) for p in sorted(tables.glob("*.csv"))]
    rep = snakemake(workflow_dir, "--report", "report.html", *targets)
    assert rep.returncode == 0, rep.stderr[-4000:]
    html = (workflow_dir / "report.html").read_text(errors="replace")
    assert len(html) > 100_000 and "tiny-test" in html
    assert "WARNING" not in rep.stderr, rep.stderr[-2000:]  # e.g. malformed caption RST
    for name in ("discrimination_tiny.png", "unimodal_s2_tiny.csv", "nb201_tiny_darts_seed1.png"):
        assert name in html
    assert np.isfinite(pd.read_csv(tables / "discrimination_tiny.csv")["margin_mean"]).all()
