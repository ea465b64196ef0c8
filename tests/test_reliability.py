"""Runs that survive: kill-and-resume, determinism, corrupt checkpoints, bad input (issue 5)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, tiny_overrides, write_npz_dataset

from midas.cli import main as cli_main

TIME_COLUMNS = {"epoch_time_s", "wall_time_s"}


def _cmd(out: Path, data: dict[str, str], *extra: str, epochs: int = 4) -> list[str]:
    cmd = [sys.executable, "-m", "midas", "search", "--space", "s3", "--method", "midas",
           "--dataset", "tiny", "--seed", "3", "--out", str(out)]
    for o in tiny_overrides(data, epochs=epochs):
        cmd += ["--set", o]
    return cmd + list(extra)


def _log_rows(out: Path) -> list[dict[str, str]]:
    with (out / "search_log.csv").open() as fh:
        return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in csv.DictReader(fh)]


def _final_state(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoint.pt", weights_only=True)["searcher"]["model"]


def _assert_same_run(a: Path, b: Path) -> None:
    ga, gb = (json.loads((p / "genotype.json").read_text()) for p in (a, b))
    for g in (ga, gb):
        g.pop("search_time_s")
    assert ga == gb
    assert _log_rows(a) == _log_rows(b)
    with np.load(a / "weights.npz") as wa, np.load(b / "weights.npz") as wb:
        assert sorted(wa.files) == sorted(wb.files)
        for k in wa.files:
            assert np.array_equal(wa[k], wb[k]), k
    sa, sb = _final_state(a), _final_state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return env


def _kill_once_written(cmd: list[str], marker: Path, settle: float = 0.0, timeout: float = 180,
                       **popen: object) -> None:
    """Start ``cmd`` in its own process group; SIGKILL the whole group soon after ``marker`` appears."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            **popen)  # type: ignore[call-overload]
    deadline = time.time() + timeout
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, f"{cmd[2:4]} ended before it could be killed"
        time.sleep(0.02)
    time.sleep(settle)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_search_killed_mid_run_resumes_bitwise(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    ref = tmp_path / "reference"
    subprocess.run(_cmd(ref, tiny_data), check=True, env=_env(), capture_output=True)

    killed = tmp_path / "killed"
    # the first epoch's log row exists: the process is now inside a later epoch
    _kill_once_written(_cmd(killed, tiny_data), killed / "search_log.csv", settle=0.15, env=_env())
    assert not (killed / "genotype.json").exists(), "killed too late to test a resume"

    done = subprocess.run(_cmd(killed, tiny_data), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    _assert_same_run(ref, killed)


def test_same_seed_same_result_different_seed_differs(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    from midas.config import resolve
    from midas.search import run_search

    def run(seed: int, name: str) -> Path:
        cfg = resolve(overrides=tiny_overrides(tiny_data), space="nb201", method="midas", dataset="tiny", seed=seed)
        run_search(cfg, tmp_path / name)
        return tmp_path / name

    a, b, c = run(0, "a"), run(0, "b"), run(1, "c")
    _assert_same_run(a, b)
    wa, wc = np.load(a / "weights.npz"), np.load(c / "weights.npz")
    assert not np.array_equal(wa["normal_weights"], wc["normal_weights"])


def _search_args(out: Path, data: dict[str, str], *extra: str, space: str = "nb201",
                 method: str = "midas") -> list[str]:
    args = ["search", "--space", space, "--method", method, "--dataset", "tiny", "--out", str(out)]
    for o in tiny_overrides(data):
        args += ["--set", o]
    return args + list(extra)


def test_corrupt_checkpoint_clear_error_and_fresh_start(tmp_path: Path, tiny_data: dict[str, str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = _search_args(out, tiny_data, space="nb201", method="darts")
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert "corrupt or truncated" in err and "--fresh" in err
    assert not (out / "genotype.json").exists()
    assert cli_main(args + ["--fresh"]) == 0
    assert (out / "genotype.json").exists()


def test_truncated_real_checkpoint(tmp_path: Path, tiny_data: dict[str, str],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = _search_args(out, tiny_data, space="nb201", method="midas")
    assert cli_main(args) == 0
    blob = (out / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(blob[: len(blob) // 2])
    (out / "genotype.json").unlink()
    assert cli_main(args) == 2
    assert "corrupt or truncated" in capsys.readouterr().err


def test_resume_with_different_config_is_refused(tmp_path: Path, tiny_data: dict[str, str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = _search_args(out, tiny_data, space="nb201", method="midas")
    assert cli_main(args) == 0
    assert cli_main(args + ["--set", "search.lr=0.5"]) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "search.lr" in err


def test_checkpoint_loads_with_weights_only(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    out = tmp_path / "run"
    args = _search_args(out, tiny_data, space="s2", method="darts")
    assert cli_main(args) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)  # raises if anything needs unpickling code
    assert {"searcher", "rng", "rows", "epoch", "config"} <= set(state)
    assert {"python", "numpy", "torch"} <= set(state["rng"])


# ------------------------------------------------------------------ bad input: message, exit code, no output

@pytest.mark.parametrize(("extra", "code", "needle"), [
    (["--space", "nb301"], 2, "unknown search space 'nb301'"),
    (["--method", "enas"], 2, "'method' = 'enas'; choose one of"),
    (["--set", "search.epochs=ten"], 2, "'search.epochs' = 'ten' has type str; expected int"),
    (["--set", "search.epoch=3"], 2, "did you mean search.epochs"),
    (["--set", "midas.patch_grid=0"], 2, "must be positive"),
    (["--set", "data.train=/nonexistent/where/*.npz"], 2, "no .npz files for the train split"),
    (["--set", "search.batch_size=100000000"], 1, "Lower the batch size"),
])
def test_bad_input_clear_message_no_output(tmp_path: Path, tiny_data: dict[str, str],
                                           capsys: pytest.CaptureFixture[str],
                                           extra: list[str], code: int, needle: str) -> None:
    out = tmp_path / "run"
    args = _search_args(out, tiny_data)
    assert cli_main(args + extra) == code
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("midas: error:") and needle in last
    assert not out.exists()


def test_unknown_dataset_without_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert cli_main(["search", "--space", "nb201", "--dataset", "mnist-ish", "--out", str(out),
                     "--set", "device=cpu"]) == 2
    err = capsys.readouterr().err
    assert "dataset 'mnist-ish' is not built in" in err and "data.source" in err
    assert not out.exists()


def test_missing_torchvision_dataset_says_where_and_how(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert cli_main(["search", "--space", "nb201", "--dataset", "cifar10", "--out", str(out),
                     "--set", f"data.root={tmp_path / 'nodata'}", "--set", "device=cpu"]) == 2
    err = capsys.readouterr().err
    assert "cifar10 was not found under" in err and "nodata" in err and "data.download=true" in err


def test_wrong_shape_npz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((10, 3, 8, 8), dtype=np.float32), y=np.zeros(10, dtype=np.int64))
    out = tmp_path / "run"
    assert cli_main(["search", "--space", "nb201", "--dataset", "tiny", "--out", str(out), "--set", "device=cpu",
                     "--set", "data.source=npz", "--set", f"data.train={bad}", "--set", f"data.test={bad}"]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "'x' must be uint8 of shape (N, H, W, C)" in err
    assert not out.exists()


def test_nan_loss_stops_keeps_checkpoint_names_step(tmp_path: Path, tiny_data: dict[str, str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    args = _search_args(out, tiny_data, "--set", "search.epochs=3", "--set", "search.lr=1e30",
                        "--set", "search.grad_clip=1e30", "--set", "search.lr_min=1e30")
    assert cli_main(args) == 1
    err = capsys.readouterr().err
    assert "loss became" in err and "epoch" in err and "step" in err
    assert not (out / "genotype.json").exists()
    assert not (out / "weights.npz").exists()


@pytest.mark.slow
def test_train_killed_mid_run_resumes_bitwise(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    from midas.genotypes import DARTS_V2

    geno = tmp_path / "genotype.json"
    geno.write_text(json.dumps({"space": "darts", "genotype": DARTS_V2.to_dict()}))
    sets = ["data.source=npz", f"data.train={tiny_data['train']}", f"data.test={tiny_data['test']}",
            "train.epochs=5", "train.batch_size=16", "train.layers=3", "train.channels=4",
            "device=cpu", "threads=1", "progress=log"]

    def cmd(out: Path) -> list[str]:
        return [sys.executable, "-m", "midas", "train", "--genotype", str(geno), "--dataset", "tiny",
                "--seed", "2", "--out", str(out), *[a for s in sets for a in ("--set", s)]]

    ref = tmp_path / "reference"
    subprocess.run(cmd(ref), check=True, env=_env(), capture_output=True)
    killed = tmp_path / "killed"
    _kill_once_written(cmd(killed), killed / "train_log.csv", settle=0.1, env=_env())
    assert not (killed / "metrics.json").exists(), "killed too late to test a resume"
    done = subprocess.run(cmd(killed), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    def rows(out: Path) -> list[dict[str, str]]:
        with (out / "train_log.csv").open() as fh:
            return [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in csv.DictReader(fh)]

    assert rows(ref) == rows(killed)
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (ref, killed))
    assert {k: v for k, v in ma.items() if "time" not in k} == {k: v for k, v in mb.items() if "time" not in k}
    sa = torch.load(ref / "checkpoint.pt", weights_only=True)["model"]
    sb = torch.load(killed / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_snakemake_killed_job_is_rerun_and_resumes(tmp_path: Path) -> None:
    """Kill the whole Snakemake process group mid-search; --rerun-incomplete resumes from the checkpoint."""
    data = write_npz_dataset(tmp_path / "data", n_train=160, n_test=32, classes=4, size=16)
    cfg = {"budget": "kill-test", "spaces": {"nb201": ["cifar10"]}, "methods": ["midas"], "seeds": [0],
           "threads": 1, "data": {"source": "npz", "train": data["train"], "test": data["test"]},
           "search": {"epochs": 6, "batch_size": 16, "eval_batch_size": 32, "weights_sample_cap": 32},
           "supernet": {"channels": 4, "cells_per_stage": 1}, "midas": {"attn_dim": 4}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    target = "results/search/nb201/cifar10/midas/seed0/genotype.json"
    run_dir = tmp_path / "results/search/nb201/cifar10/midas/seed0"
    env = dict(_env(), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [str(Path(sys.executable).with_name("snakemake")), "--snakefile", str(REPO / "Snakefile"),
           "--configfile", "config.yaml", "--directory", str(tmp_path), "--cores", "1", target]

    # Snakemake and its job die together, as on a node failure
    _kill_once_written(cmd, run_dir / "checkpoint.pt", cwd=tmp_path, env=env)
    assert not (run_dir / "genotype.json").exists(), "killed too late to test a resume"

    # a killed Snakemake leaves its lock: --unlock, then rerun (the README's recovery recipe)
    subprocess.run(cmd + ["--unlock"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    done = subprocess.run(cmd + ["--rerun-incomplete"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    log = (tmp_path / "results/logs/search/nb201/cifar10/midas/seed0.log").read_text()
    assert "resuming" in log and "from epoch" in log
    with (run_dir / "search_log.csv").open() as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh)] == [1, 2, 3, 4, 5, 6]
