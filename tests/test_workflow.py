"""The Snakemake workflow: config schema, paper-scale DAG, and a whole run on a tiny synthetic dataset."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, write_npz_dataset

from midas.config import defaults

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
BUDGET_SECTIONS = ("data", "benchmark", "search", "supernet", "midas", "train")


def snakemake(*args: str, cwd: Path = REPO, timeout: int = 240) -> subprocess.CompletedProcess[str]:
    """Run snakemake with this interpreter's environment first on PATH (jobs call `python -m midas`)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a dry run."""
    block = output.split("Job stats:")[1]
    counts = {}
    for line in block.splitlines()[3:]:
        m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
        if not m:
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


# --------------------------------------------------------------------------- static checks

def test_quick_default_covers_every_rule_and_method():
    cfg = load(REPO / "config" / "config.yaml")
    assert {"nb201", "darts"} <= set(cfg["spaces"]) and set(cfg["spaces"]) & {"s1", "s2", "s3", "s4"}
    assert set(cfg["methods"]) == {"midas", "midas-global", "darts"}
    assert cfg["budget"] != "paper"
    paper = load(REPO / "config" / "paper.yaml")
    assert set(paper["methods"]) == {"midas", "midas-global", "darts"} and paper["seeds"] == [0, 1, 2, 3]
    assert paper["budget"] == "paper"


def test_schema_budget_sections_match_midas_config_keys():
    """Every key midas accepts can be set from the workflow config, and the schema accepts no other."""
    schema = load(REPO / "workflow" / "schemas" / "config.schema.yaml")
    midas_defaults = defaults()
    for section in BUDGET_SECTIONS:
        node = schema["$defs"]["data"] if section == "data" else schema["properties"][section]
        assert node["additionalProperties"] is False
        assert set(node["properties"]) == set(midas_defaults[section]), section


def test_environment_yml_lists_the_pyproject_dependencies():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = load(REPO / "environment.yml")
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert sorted(pip) == sorted(deps)


# --------------------------------------------------------------------------- snakemake runs

@pytest.mark.parametrize("bad, named", [
    ({"search": {"epochz": 3}}, "epochz"),
    ({"seeds": ["zero"]}, "zero"),
    ({"spaces": {"darts": [1]}}, "1 is not of type 'string'"),
])
def test_schema_rejects_bad_config(tmp_path, bad, named):
    cfg = load(REPO / "config" / "config.yaml")
    for key, value in bad.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) and key != "spaces" else value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake("-n", "--configfile", str(path), "--directory", str(tmp_path), timeout=120)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert named in out, out[-2000:]
    assert "schema" in out.lower() or "validat" in out.lower()


TABLE_TARGETS = [f"results/tables/{t}.{ext}" for t in ("darts", "nb201", "rdarts") for ext in ("csv", "md", "tex")]


def test_paper_config_dry_run_job_counts(tmp_path):
    """The tables' part of the paper-scale DAG: one job per search / retrain / lookup, one aggregate."""
    res = snakemake("-n", "--quiet", "rules", "--configfile", str(REPO / "config" / "paper.yaml"),
                    "--directory", str(tmp_path), *TABLE_TARGETS, timeout=180)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    counts = job_counts(out)
    paper = load(REPO / "config" / "paper.yaml")
    per_pair = len(paper["methods"]) * len(paper["seeds"])
    pairs = {s: len(d) for s, d in paper["spaces"].items()}
    assert pairs == {"darts": 2, "nb201": 3, "s1": 3, "s2": 3, "s3": 3, "s4": 3}
    assert counts["search"] == sum(pairs.values()) * per_pair == 17 * 12
    assert counts["lookup"] == pairs["nb201"] * per_pair  # the paper config looks NB201 up
    assert counts["train"] == (sum(pairs.values()) - pairs["nb201"]) * per_pair
    assert counts["aggregate"] == 1
    assert set(counts) == {"search", "lookup", "train", "aggregate", "total"}


def test_paper_config_whole_dag_resolves(tmp_path):
    """`snakemake -n --configfile config/paper.yaml` (every target, analysis included) resolves before any
    external data (datasets, benchmark table) exists."""
    res = snakemake("-n", "--quiet", "rules", "--configfile", str(REPO / "config" / "paper.yaml"),
                    "--directory", str(tmp_path), timeout=180)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert job_counts(out)["search"] == 17 * 12


def test_quick_default_with_shared_data_override_dry_run(tmp_path):
    """The README's override for local data: nested --config values merge into the quick default."""
    res = snakemake("-n", "-p", "--directory", str(tmp_path), *TABLE_TARGETS, "--config",
                    "data={source: npz, train: \"../shared/data/cifar10/cifar10_train_part*.npz\", "
                    "test: ../shared/data/cifar10/cifar10_test.npz}",
                    "benchmark={table: ../shared/data/nasbench201/nats_bench.csv}", timeout=180)
    # (--directory: a fresh working directory, so runs in the checkout cannot affect the dry run)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    counts = job_counts(out)
    assert counts["search"] == 9 and counts["lookup"] == 3 and counts["train"] == 6
    search_cmd = next(line for line in out.splitlines() if "-m midas search" in line)
    assert "--set data.source=npz" in search_cmd and "data.subset_train=" in search_cmd  # merged, not replaced
    assert "--device cpu" in search_cmd


def nb201_accuracy(arch: str, column: int) -> float:
    """Synthetic benchmark accuracy: a deterministic function of the arch string."""
    return round(10.0 + (sum(map(ord, arch)) * (column + 3)) % 8000 / 100.0, 3)


def write_nb201_table(path: Path) -> None:
    """Every one of the 15,625 NB201 cells, so whatever the search picks is found."""
    rows = []
    for ops in itertools.product(NB201_OPS, repeat=6):
        arch = f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"
        rows.append({"CIFAR10TestAccuracy200Epochs": nb201_accuracy(arch, 0),
                     "CIFAR100TestAccuracy200Epochs": nb201_accuracy(arch, 1),
                     "ImageNetTestAccuracy200Epochs": nb201_accuracy(arch, 2), "ArchitectureString": arch})
    pd.DataFrame(rows).to_csv(path, index=False)


@pytest.mark.slow
def test_whole_workflow_on_tiny_data(tmp_path):
    data = write_npz_dataset(tmp_path / "data", n_train=64, n_test=32, classes=4, size=16)
    write_nb201_table(tmp_path / "nb201.csv")
    cfg = {
        "budget": "tiny-test",
        "spaces": {"nb201": ["cifar10"], "darts": ["cifar10"], "s3": ["cifar10"]},
        "methods": ["midas", "darts"], "seeds": [0], "threads": 1,
        "data": {"source": "npz", "train": data["train"], "test": data["test"], "augment": False},
        "benchmark": {"table": str(tmp_path / "nb201.csv")},
        "search": {"epochs": 1, "batch_size": 16, "eval_batch_size": 32, "weights_sample_cap": 32,
                   "memory_check": False},
        "supernet": {"channels": 4, "layers": 3, "cells_per_stage": 1},
        "midas": {"attn_dim": 4},
        "train": {"epochs": 1, "batch_size": 32, "channels": 4, "layers": 3, "cells_per_stage": 1,
                  "eval_batch_size": 32, "memory_check": False},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    tables = TABLE_TARGETS
    res = snakemake("--configfile", "config.yaml", "--directory", str(tmp_path), "--cores", "2", *tables,
                    cwd=tmp_path, timeout=600)
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]

    results = tmp_path / "results"
    for t in tables:
        assert (tmp_path / t).stat().st_size > 0
    for method in ("midas", "darts"):
        for space in ("nb201", "darts", "s3"):
            assert (results / "search" / space / "cifar10" / method / "seed0" / "weights.npz").exists()
            assert (results / "benchmarks" / "search" / space / "cifar10" / method / "seed0.tsv").exists()
            assert (results / "logs" / "search" / space / "cifar10" / method / "seed0.log").exists()

    # NB201: looked up in the table the test wrote, for the cell the search chose
    nb = pd.read_csv(results / "tables" / "nb201.csv")
    ours = nb[nb["origin"] == "ours"].set_index("method")
    assert set(ours.index) == {"midas", "darts"}
    for method in ("midas", "darts"):
        arch = json.loads((results / "search/nb201/cifar10" / method / "seed0/genotype.json").read_text())["genotype"]
        assert ours.loc[method, "mean"] == pytest.approx(nb201_accuracy(arch, 0), abs=1e-3)
        assert ours.loc[method, "source"] == "benchmark" and ours.loc[method, "budget"] == "tiny-test"
        assert ours.loc[method, "search_cost_h"] > 0 and ours.loc[method, "cost_unit"] == "CPU-h"
    assert (nb["origin"] == "published").sum() > 0

    # DARTS-like spaces: retrained; the table's error is the metrics file's
    for table, space in (("darts", "darts"), ("rdarts", "s3")):
        df = pd.read_csv(results / "tables" / f"{table}.csv")
        mine = df[df["origin"] == "ours"].set_index("method")
        assert set(mine.index) == {"midas", "darts"} and set(mine["space"]) == {space}
        for method in ("midas", "darts"):
            m = json.loads((results / "train" / space / "cifar10" / method / "seed0/metrics.json").read_text())
            assert mine.loc[method, "mean"] == pytest.approx(m["test_err"], abs=1e-3)
            assert mine.loc[method, "source"] == "train"
        md = (results / "tables" / f"{table}.md").read_text()
        assert "MIDAS (ours)" in md and "tiny-test" in md and "NOT comparable" in md
    assert "unverified" in (results / "tables" / "rdarts.md").read_text()
    assert r"\begin{tabular}" in (results / "tables" / "darts.tex").read_text()


def _gpu_slot():
    spec = importlib.util.spec_from_file_location("gpu_slot", REPO / "workflow" / "scripts" / "gpu_slot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_slot_gives_each_job_a_different_free_gpu(tmp_path, monkeypatch):
    gpu_slot = _gpu_slot()
    monkeypatch.setattr(gpu_slot, "LOCK_DIR", tmp_path / "locks")
    first, fd1 = gpu_slot.acquire(2)
    second, fd2 = gpu_slot.acquire(2)
    assert (first, second) == (0, 1)     # GPU 0 is held, so the second job gets GPU 1
    os.close(fd1)                        # the job on GPU 0 ends
    third, fd3 = gpu_slot.acquire(2)
    assert third == 0
    os.close(fd2)
    os.close(fd3)


def test_gpu_slot_leaves_scheduler_assigned_gpus_alone(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="3", MIDAS_GPU_LOCK_DIR=str(tmp_path / "locks"))
    res = subprocess.run([sys.executable, str(REPO / "workflow/scripts/gpu_slot.py"), "--", sys.executable, "-c",
                          "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "3"
    assert not (tmp_path / "locks").exists()
