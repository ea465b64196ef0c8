"""Evaluation networks, retraining protocol and `midas train` end to end (tiny, CPU)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

from midas import cli, config
from midas import train as train_mod
from midas.errors import CheckpointError
from midas.evalnets import NetworkCIFAR, TinyNetwork, build_eval_network, count_parameters, drop_path
from midas.flops import flops_summary
from midas.genotypes import DARTS_V2, parse_genotype, parse_nb201
from midas.spaces import get_space

RESNET_CELL = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def test_darts_v2_parameter_count_matches_reference() -> None:
    # DARTS's train.py prints "param size = 3.349342MB" for DARTS_V2, C=36, 20 cells, aux head excluded
    net = NetworkCIFAR(DARTS_V2, 36, 10, 20, auxiliary=True)
    assert count_parameters(net) == 3_349_342
    assert count_parameters(net, include_auxiliary=True) > 3_349_342


def test_nb201_network_matches_benchmark_cost() -> None:
    # NATS-Bench's get_cost_info(hp="12") for this cell on CIFAR-10: params 0.802426 M, flops 113.95137 M
    # (quoted in D-X-Y/NATS-Bench issue #36); the benchmark's "flops" are multiply-accumulates.
    arch = parse_nb201("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    net = TinyNetwork(arch, get_space("nb201"), 16, 5, 10)
    assert count_parameters(net) == 802_426
    assert flops_summary(net, (3, 32, 32))["macs_m"] == pytest.approx(113.95137, rel=1e-5)


@pytest.mark.parametrize("size", [32, 16])
def test_forward_shapes_and_auxiliary_head(size: int) -> None:
    torch.manual_seed(0)
    net = build_eval_network(get_space("darts"), DARTS_V2, 7, channels=4, layers=3, cells_per_stage=1,
                             auxiliary=True, drop_path=True)
    net.set_drop_path(0.2)
    x = torch.randn(3, 3, size, size)
    logits, aux = net.train()(x)
    assert logits.shape == (3, 7) and aux is not None and aux.shape == (3, 7)
    logits, aux = net.eval()(x)
    assert logits.shape == (3, 7) and aux is None
    assert count_parameters(net) < count_parameters(net, include_auxiliary=True)


def test_drop_path_zeroes_samples_and_keeps_expectation() -> None:
    torch.manual_seed(0)
    x = torch.ones(4000, 2, 1, 1)
    y = drop_path(x, torch.tensor(0.3))
    dropped = (y[:, 0, 0, 0] == 0).float().mean().item()
    assert dropped == pytest.approx(0.3, abs=0.03)
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.7))
    assert torch.equal(drop_path(x, torch.tensor(0.0)), x)


def test_drop_path_schedule_is_linear() -> None:
    assert [train_mod.drop_path_at(0.2, e, 4) for e in range(4)] == pytest.approx([0.0, 0.05, 0.1, 0.15])


@pytest.mark.parametrize(("space", "dataset", "layers", "channels"), [
    ("darts", "cifar10", 20, 36), ("darts", "cifar100", 20, 36), ("s1", "cifar10", 20, 36),
    ("s3", "cifar10", 20, 36), ("s2", "cifar10", 20, 16), ("s4", "cifar10", 20, 16),
    ("s1", "cifar100", 8, 16), ("s4", "svhn", 8, 16),
])
def test_protocol_sizes_by_space_and_dataset(space: str, dataset: str, layers: int, channels: int) -> None:
    t = train_mod.train_protocol(config.resolve(dataset=dataset), get_space(space))
    assert (t["layers"], t["channels"]) == (layers, channels)
    assert (t["epochs"], t["batch_size"], t["lr"], t["cutout"], t["drop_path"], t["auxiliary_weight"]) == (
        600, 96, 0.025, 16, 0.2, 0.4)
    assert t["nesterov"] is False


def test_nb201_protocol_and_explicit_values_win() -> None:
    t = train_mod.train_protocol(config.resolve(), get_space("nb201"))
    assert (t["epochs"], t["batch_size"], t["lr"], t["nesterov"], t["weight_decay"]) == (200, 256, 0.1, True, 5e-4)
    assert (t["cutout"], t["drop_path"], t["auxiliary_weight"], t["channels"]) == (0, 0.0, 0.0, 16)
    t = train_mod.train_protocol(config.resolve(overrides=["train.epochs=3", "train.channels=8"]), get_space("s2"))
    assert (t["epochs"], t["channels"], t["layers"]) == (3, 8, 20)


# ---------------------------------------------------------------------- end to end

def _write_genotype(folder: Path, space: str, genotype: object, **extra: object) -> Path:
    path = folder / f"{space}_genotype.json"
    path.write_text(json.dumps({"space": space, "genotype": genotype, **extra}))
    return path


def _sets(data: dict[str, str], *extra: str, epochs: int = 2) -> list[str]:
    return ["data.source=npz", f"data.train={data['train']}", f"data.test={data['test']}",
            f"train.epochs={epochs}", "train.batch_size=32", "train.eval_batch_size=64", "train.layers=3",
            "train.channels=4", "train.cells_per_stage=1", "device=cpu", "threads=1", "progress=log", *extra]


def _args(genotype: Path, out: Path, data: dict[str, str], *extra: str, epochs: int = 2) -> list[str]:
    sets = _sets(data, *extra, epochs=epochs)
    return ["train", "--genotype", str(genotype), "--dataset", "tiny", "--seed", "1", "--out", str(out),
            *[a for s in sets for a in ("--set", s)]]


def _log(out: Path) -> list[dict[str, str]]:
    with (out / "train_log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    return [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in rows]


@pytest.fixture(scope="module")
def darts_run(tmp_path_factory: pytest.TempPathFactory, tiny_data: dict[str, str]) -> dict[str, object]:
    """One uninterrupted 2-epoch run of DARTS_V2 (drop path, cutout, aux head on), recording drop-path values."""
    folder = tmp_path_factory.mktemp("train")
    geno = _write_genotype(folder, "darts", DARTS_V2.to_dict(), method="darts", seed=5, dataset="tiny")
    out = folder / "run"
    seen: list[float] = []
    original = NetworkCIFAR.set_drop_path

    def record(self: NetworkCIFAR, prob: float) -> None:
        seen.append(prob)
        original(self, prob)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(NetworkCIFAR, "set_drop_path", record)
        assert cli.main(_args(geno, out, tiny_data)) == 0
    return {"genotype": geno, "out": out, "drop_path": seen, "folder": folder}


def test_train_cli_writes_all_outputs(darts_run: dict[str, object]) -> None:
    out = darts_run["out"]
    assert isinstance(out, Path)
    m = json.loads((out / "metrics.json").read_text())
    assert m["source"] == "train" and m["space"] == "darts" and m["method"] == "darts" and m["seed"] == 1
    assert m["search_seed"] == 5 and m["dataset"] == "tiny" and m["epochs"] == 2
    assert 0.0 <= m["test_acc"] <= 100.0 and m["test_err"] == pytest.approx(100.0 - m["test_acc"])
    assert m["best_test_acc"] >= m["test_acc"]
    net = NetworkCIFAR(DARTS_V2, 4, 4, 3, auxiliary=True)  # tiny data: 4 classes, 16x16
    assert m["params"] == count_parameters(net) and m["params_m"] == pytest.approx(m["params"] / 1e6)
    assert m["flops_m"] == pytest.approx(2 * m["macs_m"]) and m["flops_m"] > 0
    assert parse_genotype(m["genotype"], "darts") == DARTS_V2
    rows = _log(out)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[1]["lr"]) < float(rows[0]["lr"]) == pytest.approx(0.025)
    assert float(rows[-1]["test_acc"]) == pytest.approx(m["test_acc"], abs=1e-3)
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["space"] == "darts" and cfg["train"]["layers"] == 3 and cfg["train"]["cutout"] == 16
    assert (out / "checkpoint.pt").exists()
    # drop path grows linearly over the epochs: drop_path * epoch / epochs
    assert darts_run["drop_path"] == pytest.approx([0.0, 0.1])


def test_resume_is_bitwise_identical(darts_run: dict[str, object], tiny_data: dict[str, str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    geno, full, folder = darts_run["genotype"], darts_run["out"], darts_run["folder"]
    assert isinstance(folder, Path) and isinstance(geno, Path) and isinstance(full, Path)
    out = folder / "interrupted"
    calls = {"n": 0}
    original = train_mod.evaluate

    def interrupt_second_epoch(*a: object, **k: object) -> tuple[float, float]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*a, **k)

    monkeypatch.setattr(train_mod, "evaluate", interrupt_second_epoch)
    assert cli.main(_args(geno, out, tiny_data)) == 130
    assert not (out / "metrics.json").exists() and len(_log(out)) == 1
    monkeypatch.setattr(train_mod, "evaluate", original)
    assert cli.main(_args(geno, out, tiny_data)) == 0
    assert _log(out) == _log(full)
    a = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    b = torch.load(full / "checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_changed_config_refuses_to_resume(darts_run: dict[str, object], tiny_data: dict[str, str]) -> None:
    geno, out = darts_run["genotype"], darts_run["out"]
    assert isinstance(geno, Path) and isinstance(out, Path)
    with pytest.raises(CheckpointError, match="train.lr"):
        train_mod.run_train(config.resolve(overrides=_sets(tiny_data, "train.lr=0.5"), dataset="tiny", seed=1),
                            geno, out)


def test_nb201_genotype_trains_with_the_nb201_network(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    geno = _write_genotype(tmp_path, "nb201", RESNET_CELL)
    assert cli.main(_args(geno, tmp_path / "run", tiny_data, epochs=1)) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["source"] == "train" and m["space"] == "nb201" and m["genotype"] == RESNET_CELL
    assert m["protocol"]["nesterov"] is True and m["protocol"]["auxiliary_weight"] == 0.0
    net = TinyNetwork(parse_nb201(RESNET_CELL), get_space("nb201"), 4, 1, 4)
    assert m["params"] == count_parameters(net)


def test_non_finite_loss_names_epoch_and_step(tmp_path: Path, tiny_data: dict[str, str],
                                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    geno = _write_genotype(tmp_path, "nb201", RESNET_CELL)

    def nan_forward(model: torch.nn.Module, x: torch.Tensor, amp: str, device: torch.device) -> tuple:
        logits, _ = model(x)
        return logits * float("nan"), None

    monkeypatch.setattr(train_mod, "_forward", nan_forward)
    assert cli.main(_args(geno, tmp_path / "run", tiny_data, epochs=1)) == 1
    assert "epoch 1 step 1" in capsys.readouterr().err


def test_wrong_genotype_file_is_a_clear_error(tmp_path: Path, tiny_data: dict[str, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    geno = _write_genotype(tmp_path, "s2", {"normal": [["sep_conv_5x5", 0]] * 8, "reduce": [["skip_connect", 0]] * 8})
    assert cli.main(_args(geno, tmp_path / "run", tiny_data, epochs=1)) == 2
    assert "sep_conv_5x5" in capsys.readouterr().err


def test_channels_last_and_bf16_autocast_run(tmp_path: Path, tiny_data: dict[str, str]) -> None:
    # the CUDA speed switches also work on CPU (torch.compile is left out here: it compiles for minutes)
    geno = _write_genotype(tmp_path, "s2", {"normal": [["sep_conv_3x3", 0], ["skip_connect", 1]] * 4,
                                            "reduce": [["sep_conv_3x3", 0], ["sep_conv_3x3", 1]] * 4})
    assert cli.main(_args(geno, tmp_path / "run", tiny_data, "train.channels_last=true", "amp=bf16", epochs=1)) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["space"] == "s2" and 0.0 <= m["test_acc"] <= 100.0
    assert float(_log(tmp_path / "run")[0]["train_loss"]) > 0
