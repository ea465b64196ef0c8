"""midas.tables: aggregation over seeds, search cost, labels and sources, file formats."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from midas.cli import main
from midas.tables import PUBLISHED, Run, TableError, build, read_benchmark_seconds, write_tables

BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_run(folder, space, dataset, method, seed, acc, params=None, source="train", seconds=None,
              device="cpu"):
    """metrics.json (as midas train / nb201 lookup write it), a benchmark TSV and the search's config.yaml."""
    run = folder / f"{space}_{dataset}_{method}_{seed}"
    run.mkdir(parents=True)
    m = {"space": space, "dataset": dataset, "method": method, "seed": seed, "source": source,
         "test_acc": acc, "test_err": 100.0 - acc, "params_m": params}
    (run / "metrics.json").write_text(json.dumps(m))
    (run / "bench.tsv").write_text(BENCH_HEADER + f"{seconds}\t0:00:01\t1\t1\t1\t1\t0\t0\t50\t1\n")
    (run / "genotype.json").write_text("{}")
    (run / "config.yaml").write_text(yaml.safe_dump({"device": device}))
    return run


def test_mean_std_over_seeds_and_search_cost(tmp_path):
    rng = np.random.default_rng(0)
    accs = rng.uniform(80, 95, size=4)
    secs = rng.uniform(100, 5000, size=4)
    runs = [write_run(tmp_path, "darts", "cifar10", "midas", s, float(a), params=3.1, seconds=float(t))
            for s, (a, t) in enumerate(zip(accs, secs))]
    runs.append(write_run(tmp_path, "nb201", "cifar100", "darts", 0, 61.5, source="benchmark", seconds=36.0,
                          device="cuda"))
    build([r / "metrics.json" for r in runs], tmp_path / "out", "quick",
          [r / "bench.tsv" for r in runs], [r / "genotype.json" for r in runs])

    darts = pd.read_csv(tmp_path / "out" / "darts.csv")
    ours = darts[darts["origin"] == "ours"].iloc[0]
    err = 100.0 - accs
    assert ours["metric"] == "test_err"
    assert ours["mean"] == pytest.approx(err.mean(), abs=1e-4)
    assert ours["std"] == pytest.approx(err.std(ddof=1), abs=1e-4)
    assert ours["search_cost_h"] == pytest.approx(secs.mean() / 3600, abs=1e-4)
    assert ours["cost_unit"] == "CPU-h" and ours["seeds"] == "0 1 2 3" and ours["budget"] == "quick"
    assert ours["params_m"] == pytest.approx(3.1)

    nb = pd.read_csv(tmp_path / "out" / "nb201.csv")
    one = nb[nb["origin"] == "ours"].iloc[0]
    assert one["metric"] == "test_acc" and one["mean"] == pytest.approx(61.5) and pd.isna(one["std"])
    assert one["cost_unit"] == "GPU-h" and one["source"] == "benchmark" and one["dataset"] == "cifar100"

    md = (tmp_path / "out" / "darts.md").read_text()
    mean_std = f"{err.mean():.2f} ± {err.std(ddof=1):.2f} (n=4)"
    assert mean_std in md and "NOT comparable" in md
    tex = (tmp_path / "out" / "darts.tex").read_text()
    assert f"{err.mean():.2f} $\\pm$ {err.std(ddof=1):.2f}" in tex and "\\%" in tex


def test_published_numbers_beside_ours_with_sources(tmp_path):
    write_tables([Run("s2", "cifar10", "midas", 0, "train", 96.0, 4.0, 1.2, 60.0, "CPU-h")], tmp_path, "paper")
    rd = pd.read_csv(tmp_path / "rdarts.csv")
    pub = rd[rd["origin"] == "published"]
    assert len(pub) == 5 * 4 and not pub["verified"].any()   # 5 methods x s1..s4, all unverified
    assert pub[(pub["method"] == "DARTS") & (pub["space"] == "s4")]["mean"].iloc[0] == pytest.approx(7.20)
    assert "unverified" in (tmp_path / "rdarts.md").read_text()
    darts = pd.read_csv(tmp_path / "darts.csv")
    pc = darts[darts["method"] == "PC-DARTS"].iloc[0]
    assert pc["source"] == "PC-DARTS README" and pc["search_cost_h"] == pytest.approx(0.1 * 24)
    assert darts[darts["origin"] == "ours"].empty        # s2 belongs to the rdarts table only
    assert "paper-scale budget" in (tmp_path / "darts.md").read_text()
    nb = (tmp_path / "nb201.md").read_text()
    assert "94.37" in nb and "DrNAS README" in nb       # the optimum row and its source
    assert {p.table for p in PUBLISHED} == {"darts", "nb201", "rdarts"}


def test_bad_inputs_say_what_is_wrong(tmp_path):
    run = write_run(tmp_path, "darts", "cifar10", "midas", 0, 90.0, seconds=10.0)
    (tmp_path / "bad.tsv").write_text("x\ty\n1\t2\n")
    with pytest.raises(TableError, match="no numeric 's' column"):
        read_benchmark_seconds(tmp_path / "bad.tsv")
    with pytest.raises(TableError, match="does not exist"):
        read_benchmark_seconds(tmp_path / "missing.tsv")
    with pytest.raises(TableError, match="1 metrics files but 2"):
        build([run / "metrics.json"], tmp_path / "out", "q", [run / "bench.tsv"] * 2)
    with pytest.raises(TableError, match="seed listed twice"):
        build([run / "metrics.json"] * 2, tmp_path / "out", "q")
    (run / "metrics.json").write_text(json.dumps({"space": "darts"}))
    with pytest.raises(TableError, match="lacks dataset, method, seed, test_acc"):
        build([run / "metrics.json"], tmp_path / "out", "q")
    assert not (tmp_path / "out").exists()


def test_cli_writes_nine_files_and_reports_errors(tmp_path, capsys):
    run = write_run(tmp_path, "s3", "svhn", "midas-global", 2, 95.5, params=0.4, seconds=7200.0)
    out = tmp_path / "tables"
    assert main(["tables", "--metrics", str(run / "metrics.json"), "--search-benchmarks", str(run / "bench.tsv"),
                 "--out", str(out), "--budget", "quick"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{t}.{e}" for t in ("darts", "nb201", "rdarts") for e in ("csv", "md", "tex"))
    rd = pd.read_csv(out / "rdarts.csv")
    ours = rd[rd["origin"] == "ours"].iloc[0]
    assert (ours["space"], ours["dataset"], ours["mean"]) == ("s3", "svhn", pytest.approx(4.5))
    assert ours["cost_unit"] == "GPU-h or CPU-h"      # no genotype given: the unit is not known
    assert "s3 SVHN err" in (out / "rdarts.md").read_text()
    assert main(["tables", "--metrics", str(tmp_path / "nope.json"), "--out", str(out), "--budget", "q"]) == 2
    assert "nope.json does not exist" in capsys.readouterr().err
