"""NAS-Bench-201 accuracies of an arch string: a compact table, or the official file.

The official benchmark file (NAS-Bench-201-v1_*.pth, read by ``nas_201_api``) needs
tens of GB of RAM; ``export_table`` turns it once into a compact table with one row
per cell (the layout of ``nats_bench.csv``: 200-epoch test accuracy per dataset, the
arch string and, where the API has it, the canonical unique string). Lookups read
that table with pandas; column names come from the ``benchmark`` config section.

Arch strings are compared in canonical form: parsed with the nas-bench-201 API's
``str2lists`` and each node's inputs sorted, so spellings that list a node's inputs
in another order (or with stray whitespace) find the same row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from midas import io
from midas.errors import DataError, GenotypeError
from midas.genotypes import Nb201Arch, load_genotype_file
from midas.runtime import log

#: the test split each dataset's accuracy is measured on in the benchmark (as NATS-Bench's table)
API_DATASETS = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120"}
#: classes per benchmark dataset (for the parameter count of the evaluation network)
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16-120": 120}
IMAGE_SIZE = {"cifar10": 32, "cifar100": 32, "imagenet16-120": 16}

CanonicalArch = tuple[tuple[tuple[str, int], ...], ...]


def canonical(arch: str) -> CanonicalArch:
    """Canonical form of an NB201 arch string: per node, its (op, input) pairs sorted by input."""
    from nas_201_api import NASBench201API

    text = "".join(str(arch).split())
    try:
        nodes = NASBench201API.str2lists(text)
    except (AssertionError, ValueError) as exc:
        raise GenotypeError(f"malformed NB201 arch string {arch!r}: {exc}") from None
    if not nodes or any(not node for node in nodes):
        raise GenotypeError(f"malformed NB201 arch string {arch!r}: a node has no inputs")
    return tuple(tuple(sorted(node, key=lambda p: p[1])) for node in nodes)


class Benchmark(Protocol):
    name: str
    datasets: list[str]

    def lookup(self, arch: str) -> dict[str, Any]:
        """``{"index": row, "arch": str, "unique": str | None, dataset: accuracy, ...}``."""
        ...


class TableBenchmark:
    """A compact table (CSV or parquet) with one row per cell, columns named by config."""

    def __init__(self, path: str | Path, arch_column: str, columns: dict[str, str], unique_column: str = "") -> None:
        self.path = Path(path)
        self.name = self.path.name
        if not self.path.exists():
            raise DataError(
                f"benchmark table {self.path} does not exist; set benchmark.table to a CSV/parquet table "
                "(write one from the official file with `midas nb201 export`)"
            )
        try:
            if self.path.suffix in (".parquet", ".pq"):
                df = pd.read_parquet(self.path)
            else:
                df = pd.read_csv(self.path)
        except (OSError, ValueError, ImportError) as exc:
            raise DataError(f"cannot read benchmark table {self.path}: {exc}") from None
        needed = {"benchmark.arch_column": arch_column,
                  **{f"benchmark.columns.{d}": c for d, c in columns.items()}}
        missing = [f"{c!r} ({key})" for key, c in needed.items() if c not in df.columns]
        if missing:
            raise DataError(
                f"benchmark table {self.path} lacks the column(s) {', '.join(missing)}; it has {list(df.columns)}. "
                "Set the benchmark.* column names to the table's columns."
            )
        self.df = df
        self.arch_column, self.columns = arch_column, dict(columns)
        self.unique_column = unique_column if unique_column and unique_column in df.columns else ""
        self.datasets = list(columns)
        self._index: dict[CanonicalArch, int] = {}
        for i, arch in enumerate(df[arch_column].astype(str)):
            try:
                self._index.setdefault(canonical(arch), i)
            except GenotypeError as exc:
                raise DataError(f"benchmark table {self.path}, row {i}: {exc}") from None

    def lookup(self, arch: str) -> dict[str, Any]:
        key = canonical(arch)
        if key not in self._index:
            raise GenotypeError(
                f"arch {arch} is not in the benchmark table {self.path} ({len(self.df)} rows); "
                "is the table complete and is this an NB201 cell?"
            )
        i = self._index[key]
        row = self.df.iloc[i]
        result: dict[str, Any] = {"index": i, "arch": str(row[self.arch_column]),
                                  "unique": str(row[self.unique_column]) if self.unique_column else None}
        for dataset, column in self.columns.items():
            result[dataset] = float(row[column])
        return result


# ---------------------------------------------------------------------- official file

class BenchmarkApi(Protocol):
    """The few methods of ``nas_201_api.NASBench201API`` this module calls."""

    def __len__(self) -> int: ...

    def arch(self, index: int) -> Any: ...

    def query_index_by_arch(self, arch: str) -> int: ...

    def get_more_info(self, index: int, dataset: str, iepoch: Any = None, hp: str = "12",
                      is_random: bool = True) -> dict[str, Any]: ...


def open_api(path: str | Path) -> BenchmarkApi:
    from nas_201_api import NASBench201API

    path = Path(path)
    if not path.exists():
        raise DataError(f"NAS-Bench-201 file {path} does not exist (benchmark.api_file / --api-file)")
    log.info("loading %s through nas_201_api (needs tens of GB of RAM)", path)
    try:
        return NASBench201API(str(path), verbose=False)
    except Exception as exc:  # the API asserts, unpickles and raises many types
        raise DataError(f"nas_201_api could not load {path}: {type(exc).__name__}: {exc}") from None


def api_accuracies(api: BenchmarkApi, index: int, datasets: Iterable[str], hp: str = "200") -> dict[str, float]:
    """Mean-over-seeds test accuracy per dataset, on the test split NATS-Bench's table uses."""
    out = {}
    for d in datasets:
        info = api.get_more_info(index, API_DATASETS.get(d, d), hp=hp, is_random=False)
        out[d] = float(info["test-accuracy"])
    return out


def _arch_str(arch: Any) -> str:
    return arch if isinstance(arch, str) else arch.tostr()


class ApiBenchmark:
    """Lookups straight through the official file (slow to load; prefer an exported table)."""

    def __init__(self, api: BenchmarkApi, name: str, datasets: Iterable[str]) -> None:
        self.api, self.name, self.datasets = api, name, list(datasets)

    def lookup(self, arch: str) -> dict[str, Any]:
        canon = canonical(arch)
        text = "+".join("|" + "|".join(f"{op}~{src}" for op, src in node) + "|" for node in canon)
        index = self.api.query_index_by_arch(text)
        if index < 0:
            raise GenotypeError(f"arch {arch} is not in the NAS-Bench-201 file {self.name}")
        unique = getattr(self.api, "get_unique_str", None)
        return {"index": int(index), "arch": _arch_str(self.api.arch(index)),
                "unique": unique(index) if callable(unique) else None,
                **api_accuracies(self.api, index, self.datasets)}


def export_table(api: BenchmarkApi, out: str | Path, arch_column: str, columns: dict[str, str],
                 unique_column: str = "", report: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Write the compact table (one row per architecture index) from the official file."""
    unique = getattr(api, "get_unique_str", None)
    records = []
    n = len(api)
    for i in range(n):
        acc = api_accuracies(api, i, columns)
        row: dict[str, Any] = {columns[d]: acc[d] for d in columns}
        row[arch_column] = _arch_str(api.arch(i))
        if unique_column and callable(unique):
            row[unique_column] = unique(i)
        records.append(row)
        if report is not None and (i + 1) % 1000 == 0:
            report(i + 1, n)
    df = pd.DataFrame.from_records(records)
    out = Path(out)
    with io.atomic_open(out, "wb" if out.suffix in (".parquet", ".pq") else "w") as fh:
        if out.suffix in (".parquet", ".pq"):
            df.to_parquet(fh, index=False)
        else:
            df.to_csv(fh, index=False)
    return df


# ---------------------------------------------------------------------- lookup command

def configured_columns(cfg: dict[str, Any]) -> dict[str, str]:
    """dataset -> column name; a dataset whose column is set to "" is left out."""
    return {d: c for d, c in cfg["benchmark"]["columns"].items() if c}


def open_benchmark(cfg: dict[str, Any]) -> Benchmark:
    b = cfg["benchmark"]
    columns = configured_columns(cfg)
    if b["table"]:
        return TableBenchmark(b["table"], b["arch_column"], columns, b["unique_column"])
    if b["api_file"]:
        return ApiBenchmark(open_api(b["api_file"]), Path(b["api_file"]).name, columns)
    raise DataError(
        "no NAS-Bench-201 benchmark configured: set benchmark.table (compact table) or benchmark.api_file "
        "(official .pth), or retrain the cell with `midas train`"
    )


def network_cost(arch: Nb201Arch, dataset: str) -> dict[str, Any]:
    """Parameters and FLOPs of the benchmark's network (C = 16, N = 5) for ``dataset``."""
    from midas.evalnets import TinyNetwork, count_parameters
    from midas.flops import flops_summary
    from midas.spaces import get_space

    if dataset not in NUM_CLASSES:
        return {"params_m": None, "flops_m": None, "macs_m": None}
    net = TinyNetwork(arch, get_space("nb201"), 16, 5, NUM_CLASSES[dataset])
    size = IMAGE_SIZE[dataset]
    return {"params_m": round(count_parameters(net) / 1e6, 6), **flops_summary(net, (3, size, size))}


def run_lookup(cfg: dict[str, Any], genotype_path: str | Path, out: str | Path,
               dataset: str | None = None) -> dict[str, Any]:
    """Look the genotype up and write ``out/metrics.json`` (keys as ``midas train`` where they apply)."""
    space, genotype, record = load_genotype_file(genotype_path)
    if not isinstance(genotype, Nb201Arch):
        raise GenotypeError(
            f"{genotype_path}: NAS-Bench-201 lookup needs an nb201 genotype, got space {space.name!r}; "
            "retrain it with `midas train` instead"
        )
    dataset = dataset or record.get("dataset") or cfg["dataset"]
    bench = open_benchmark(cfg)
    if dataset not in bench.datasets:
        raise DataError(
            f"the benchmark has no column for dataset {dataset!r}; configured: {bench.datasets} "
            "(benchmark.columns.<dataset>); pass --dataset to pick one"
        )
    hit = bench.lookup(genotype.to_str())
    acc = float(hit[dataset])
    metrics = {
        "space": space.name, "method": record.get("method"), "dataset": dataset, "seed": record.get("seed"),
        "search_seed": record.get("seed"), "genotype": genotype.to_str(), "arch": hit["arch"],
        "genotype_file": Path(genotype_path).name, "source": "benchmark", "benchmark": bench.name,
        "index": hit["index"], "unique": hit["unique"],
        "test_acc": round(acc, 4), "test_err": round(100.0 - acc, 4),
        "accuracies": {d: hit[d] for d in bench.datasets},
        **{d: hit[d] for d in bench.datasets},
        **network_cost(genotype, dataset),
        "epochs": 200,
    }
    io.write_json(Path(out) / "metrics.json", metrics)
    return metrics
