"""NAS-Bench-201 lookup (compact table, canonical arch strings) and export from the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from midas import cli, config, nb201_bench
from midas.errors import DataError, GenotypeError
from midas.evalnets import TinyNetwork, count_parameters
from midas.genotypes import parse_nb201
from midas.spaces import get_space

BEST_C100 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
COLUMNS = {"cifar10": "acc_c10", "cifar100": "acc_c100", "imagenet16-120": "acc_in16"}


def _table(path: Path) -> Path:
    pd.DataFrame({
        "arch": [ALL_NONE, RESNET, BEST_C100],
        "acc_c10": [10.0, 93.91, 94.363], "acc_c100": [1.0, 70.89, 73.513], "acc_in16": [0.83, 44.23, 46.344],
    }).to_csv(path, index=False)
    return path


def _cfg(table: Path, **columns: str) -> dict[str, Any]:
    sets = [f"benchmark.table={table}", "benchmark.arch_column=arch"]  # no UniqueString column: optional
    sets += [f"benchmark.columns.{d}={c}" for d, c in {**COLUMNS, **columns}.items()]
    return config.resolve(overrides=sets)


def _bench(cfg: dict[str, Any]) -> nb201_bench.Benchmark:
    return nb201_bench.open_benchmark(cfg)


def test_canonical_form_ignores_input_order_and_spaces() -> None:
    reordered = "|nor_conv_3x3~0|+|nor_conv_3x3~1|none~0|+| skip_connect~2|none~1|skip_connect~0|"
    assert nb201_bench.canonical(reordered) == nb201_bench.canonical(RESNET)
    assert nb201_bench.canonical(RESNET) != nb201_bench.canonical(BEST_C100)


def test_small_table_lookup_by_equivalent_spelling(tmp_path: Path) -> None:
    bench = _bench(_cfg(_table(tmp_path / "t.csv")))
    hit = bench.lookup("|nor_conv_3x3~0|+|nor_conv_3x3~1|none~0|+|skip_connect~2|none~1|skip_connect~0|")
    assert hit["index"] == 1 and hit["arch"] == RESNET
    assert (hit["cifar10"], hit["cifar100"], hit["imagenet16-120"]) == (93.91, 70.89, 44.23)


def test_unknown_arch_is_a_genotype_error(tmp_path: Path) -> None:
    bench = _bench(_cfg(_table(tmp_path / "t.csv")))
    with pytest.raises(GenotypeError, match="not in the benchmark table"):
        bench.lookup("|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_missing_column_names_it_and_the_columns_found(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'c100_typo' \(benchmark.columns.cifar100\).*acc_c10"):
        _bench(_cfg(_table(tmp_path / "t.csv"), cifar100="c100_typo"))


def test_missing_table_and_no_benchmark_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        _bench(_cfg(tmp_path / "absent.csv"))
    with pytest.raises(DataError, match="no NAS-Bench-201 benchmark configured"):
        _bench(config.resolve())


@pytest.fixture(scope="module")
def real_table(shared_data: Path) -> nb201_bench.Benchmark:
    cfg = config.resolve(overrides=[f"benchmark.table={shared_data / 'nasbench201' / 'nats_bench.csv'}"])
    return _bench(cfg)


def test_real_table_best_cifar100_cell(real_table: nb201_bench.Benchmark) -> None:
    hit = real_table.lookup(BEST_C100)  # PROVENANCE.md: row 9930, C10 94.363, C100 73.513, IN16 46.344
    assert hit["index"] == 9930
    assert hit["cifar10"] == pytest.approx(94.363, abs=5e-4)
    assert hit["cifar100"] == pytest.approx(73.513, abs=5e-4)
    assert hit["imagenet16-120"] == pytest.approx(46.344, abs=5e-4)


def test_real_table_resnet_cell(real_table: nb201_bench.Benchmark) -> None:
    hit = real_table.lookup(RESNET)  # PROVENANCE.md: row 11472, 93.91 / 70.89 / 44.23
    assert hit["index"] == 11472 and hit["cifar10"] == pytest.approx(93.91, abs=5e-3)
    assert hit["unique"]  # the NATS canonical string is carried along


def test_lookup_cli_writes_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = _table(tmp_path / "t.csv")
    geno = tmp_path / "genotype.json"
    geno.write_text(json.dumps({"space": "nb201", "method": "midas", "seed": 3, "dataset": "cifar100",
                                "genotype": BEST_C100}))
    sets = [f"benchmark.table={table}", "benchmark.arch_column=arch",
            *[f"benchmark.columns.{d}={c}" for d, c in COLUMNS.items()]]
    argv = ["nb201", "lookup", "--genotype", str(geno), "--out", str(tmp_path / "out")]
    assert cli.main([*argv, *[a for s in sets for a in ("--set", s)]]) == 0
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["source"] == "benchmark" and m["benchmark"] == "t.csv" and m["index"] == 2
    assert m["dataset"] == "cifar100" and m["test_acc"] == 73.513 and m["test_err"] == pytest.approx(26.487)
    assert m["cifar10"] == 94.363 and m["method"] == "midas" and m["seed"] == 3
    # the benchmark network for CIFAR-100: C = 16, N = 5, a 100-class classifier
    net = TinyNetwork(parse_nb201(BEST_C100), get_space("nb201"), 16, 5, 100)
    assert round(m["params_m"] * 1e6) == count_parameters(net)
    assert "row 2" in capsys.readouterr().out


def test_lookup_rejects_a_darts_genotype(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from midas.genotypes import DARTS_V2

    geno = tmp_path / "genotype.json"
    geno.write_text(json.dumps({"space": "darts", "genotype": DARTS_V2.to_dict()}))
    argv = ["nb201", "lookup", "--genotype", str(geno), "--out", str(tmp_path / "out"),
            "--set", f"benchmark.table={_table(tmp_path / 't.csv')}"]
    assert cli.main(argv) == 2
    assert "midas train" in capsys.readouterr().err


class FakeApi:
    """The part of nas_201_api.NASBench201API that export and lookup call."""

    archs = [ALL_NONE, RESNET, BEST_C100]

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, str, bool]] = []

    def __len__(self) -> int:
        return len(self.archs)

    def arch(self, index: int) -> str:
        return self.archs[index]

    def query_index_by_arch(self, arch: str) -> int:
        return self.archs.index(arch) if arch in self.archs else -1

    def get_more_info(self, index: int, dataset: str, iepoch: Any = None, hp: str = "12",
                      is_random: bool = True) -> dict[str, Any]:
        self.calls.append((index, dataset, hp, is_random))
        return {"test-accuracy": 10.0 * index + {"cifar10": 1, "cifar100": 2, "ImageNet16-120": 3}[dataset]}

    def get_unique_str(self, index: int) -> str:
        return f"u{index}"


def test_export_writes_the_compact_table_and_lookups_read_it(tmp_path: Path) -> None:
    api = FakeApi()
    b = config.resolve()["benchmark"]
    out = tmp_path / "table.csv"
    nb201_bench.export_table(api, out, b["arch_column"], dict(b["columns"]), b["unique_column"])
    df = pd.read_csv(out)
    assert list(df.columns) == ["CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs",
                                "ImageNetTestAccuracy200Epochs", "ArchitectureString", "UniqueString"]
    assert df["ArchitectureString"].tolist() == FakeApi.archs and df["UniqueString"].tolist() == ["u0", "u1", "u2"]
    assert df["ImageNetTestAccuracy200Epochs"].tolist() == [3.0, 13.0, 23.0]
    assert {(hp, r) for _, _, hp, r in api.calls} == {("200", False)}  # 200-epoch, mean over seeds
    hit = _bench(config.resolve(overrides=[f"benchmark.table={out}"])).lookup(RESNET)
    assert hit["index"] == 1 and hit["cifar100"] == 12.0 and hit["unique"] == "u1"
    direct = nb201_bench.ApiBenchmark(api, "fake.pth", b["columns"]).lookup(RESNET)
    assert {k: direct[k] for k in hit} == hit


def test_a_dataset_column_can_be_left_out(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.read_csv(_table(tmp_path / "full.csv")).drop(columns=["acc_in16"]).to_csv(path, index=False)
    cfg = config.resolve(overrides=[f"benchmark.table={path}", "benchmark.arch_column=arch",
                                    "benchmark.columns.cifar10=acc_c10", "benchmark.columns.cifar100=acc_c100",
                                    'benchmark.columns.imagenet16-120=""'])
    bench = _bench(cfg)
    assert bench.datasets == ["cifar10", "cifar100"] and "imagenet16-120" not in bench.lookup(RESNET)


def test_export_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nb201_bench, "open_api", lambda path: FakeApi())
    out = tmp_path / "table.csv"
    assert cli.main(["nb201", "export", "--api-file", "NAS-Bench-201-v1_1-096897.pth", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == len(FakeApi.archs)
