"""The paper's tables: our runs (mean +- std over seeds) beside the published numbers.

Three tables, as in the paper: the DARTS space (test error), NAS-Bench-201 (test
accuracy) and the RobustDARTS spaces s1-s4 (test error). Each is written as a tidy
CSV (one row per method x space x dataset, numbers unformatted, for further
analysis) and as Markdown and LaTeX (one row per method, one column per dataset,
"mean +- std" cells, for reading and for papers).

Every row says where its number comes from: our rows carry the budget they were
run at (so a quick-default table cannot pass for a paper-scale one) and whether
the accuracy was measured by retraining (``train``) or read from the benchmark
(``benchmark``); published rows name their source, and the RobustDARTS numbers,
which were not re-checked against the papers, are marked unverified.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from midas import io
from midas.errors import MidasError

TABLES = ("darts", "nb201", "rdarts")
#: spaces each table holds
TABLE_SPACES: dict[str, tuple[str, ...]] = {"darts": ("darts",), "nb201": ("nb201",),
                                            "rdarts": ("s1", "s2", "s3", "s4")}
#: the metric each table reports (the paper's choice): error for DARTS-like spaces, accuracy for NB201
TABLE_METRIC: dict[str, str] = {"darts": "test_err", "nb201": "test_acc", "rdarts": "test_err"}
TABLE_TITLE: dict[str, str] = {
    "darts": "DARTS search space: test error (%)",
    "nb201": "NAS-Bench-201: test accuracy (%)",
    "rdarts": "RobustDARTS spaces s1-s4: test error (%)",
}
METHOD_LABEL = {"midas": "MIDAS", "midas-global": "MIDAS (global, G=1)", "darts": "DARTS"}
DATASET_LABEL = {"cifar10": "C10", "cifar100": "C100", "svhn": "SVHN", "imagenet16-120": "IN16-120"}
DATASET_ORDER = ("cifar10", "cifar100", "svhn", "imagenet16-120")
UNKNOWN_UNIT = "GPU-h or CPU-h"
CSV_COLUMNS = ("table", "space", "dataset", "method", "origin", "source", "budget", "verified", "seeds",
               "metric", "mean", "std", "params_m", "search_cost_h", "cost_unit", "note")


class TableError(MidasError):
    """A run file that cannot be aggregated."""


# --------------------------------------------------------------------------- published numbers

@dataclass(frozen=True)
class Published:
    """One published method row of a paper table (MIDAS.md section 6)."""

    table: str
    method: str
    values: dict[tuple[str, str], tuple[float, float | None]]  # (space, dataset) -> (mean, std)
    source: str
    params_m: float | None = None
    cost_gpu_days: float | None = None
    verified: bool = True
    note: str = ""


def _rdarts(method: str, errs: Sequence[float]) -> Published:
    return Published("rdarts", method, {(f"s{i + 1}", "cifar10"): (e, None) for i, e in enumerate(errs)},
                     "RDARTS / SDARTS papers", verified=False)


PUBLISHED: tuple[Published, ...] = (
    Published("darts", "DARTS (1st order)", {("darts", "cifar10"): (3.00, None)}, "PC-DARTS README", 3.3, 0.4),
    Published("darts", "DARTS (2nd order)", {("darts", "cifar10"): (2.76, 0.09), ("darts", "cifar100"): (16.69, 0.28)},
              "DARTS README; Att-DARTS README", 3.3, 1.0),
    Published("darts", "SNAS", {("darts", "cifar10"): (2.85, 0.02)}, "DrNAS README", 2.8, 1.5),
    Published("darts", "PC-DARTS", {("darts", "cifar10"): (2.57, 0.07)}, "PC-DARTS README", 3.6, 0.1),
    Published("darts", "DrNAS", {("darts", "cifar10"): (2.46, 0.03)}, "DrNAS README", 4.1, 0.6),
    Published("darts", "MIDAS (paper)", {("darts", "cifar10"): (2.58, None), ("darts", "cifar100"): (16.62, None)},
              "MIDAS abstract"),
    Published("nb201", "DARTS", {("nb201", "cifar10"): (54.30, None), ("nb201", "cifar100"): (38.97, None),
                                 ("nb201", "imagenet16-120"): (18.41, None)}, "DrNAS README"),
    Published("nb201", "SNAS", {("nb201", "cifar10"): (92.77, 0.83), ("nb201", "cifar100"): (69.34, 1.98),
                                ("nb201", "imagenet16-120"): (43.16, 2.64)}, "DrNAS README"),
    Published("nb201", "PC-DARTS", {("nb201", "cifar10"): (93.41, 0.30), ("nb201", "cifar100"): (67.48, 0.89),
                                    ("nb201", "imagenet16-120"): (41.31, 0.22)}, "DrNAS README"),
    Published("nb201", "DrNAS", {("nb201", "cifar10"): (94.36, 0.00), ("nb201", "cifar100"): (73.51, 0.00),
                                 ("nb201", "imagenet16-120"): (46.34, 0.00)}, "DrNAS README"),
    Published("nb201", "MIDAS (paper)", {("nb201", "cifar10"): (94.36, None), ("nb201", "cifar100"): (73.51, None),
                                         ("nb201", "imagenet16-120"): (46.34, None)}, "MIDAS paper",
              note="validation 91.55 / 73.49 / 46.37"),
    Published("nb201", "optimum", {("nb201", "cifar10"): (94.37, None), ("nb201", "cifar100"): (73.51, None),
                                   ("nb201", "imagenet16-120"): (47.31, None)}, "NAS-Bench-201"),
    _rdarts("DARTS", (3.84, 4.85, 3.34, 7.20)),
    _rdarts("DARTS-ES", (3.01, 3.26, 2.74, 3.71)),
    _rdarts("DARTS-ADA", (3.10, 3.35, 2.59, 4.84)),
    _rdarts("SDARTS-RS", (2.78, 2.75, 2.53, 2.93)),
    _rdarts("SDARTS-ADV", (2.73, 2.65, 2.49, 2.87)),
)


# --------------------------------------------------------------------------- our runs

@dataclass
class Run:
    """One finished run: the accuracy of one searched cell and what the search cost."""

    space: str
    dataset: str
    method: str
    seed: int
    source: str                   # train | benchmark
    test_acc: float
    test_err: float
    params_m: float | None = None
    search_s: float | None = None  # wall seconds of the search job (Snakemake benchmark file)
    cost_unit: str = ""            # GPU-h | CPU-h: what the search ran on
    extra: dict[str, Any] = field(default_factory=dict)


def read_benchmark_seconds(path: str | Path) -> float:
    """Wall-clock seconds from a Snakemake ``benchmark:`` TSV (mean over repeats)."""
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        values = [float(r["s"]) for r in rows]
    except FileNotFoundError:
        raise TableError(f"benchmark file {path} does not exist; rerun the search rule that writes it") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise TableError(f"benchmark file {path} has no numeric 's' column ({exc}); "
                         "it must be a Snakemake benchmark TSV") from None
    if not values:
        raise TableError(f"benchmark file {path} has no rows")
    return sum(values) / len(values)


def search_device_unit(genotype: str | Path, default: str) -> str:
    """GPU-h or CPU-h, from the device in the config.yaml the search wrote beside its genotype.json."""
    path = Path(genotype).with_name("config.yaml")
    try:
        device = str((yaml.safe_load(path.read_text()) or {}).get("device", ""))
    except (OSError, yaml.YAMLError):
        return default
    if device.startswith("cuda"):
        return "GPU-h"
    if device == "cpu":
        return "CPU-h"
    return default


def read_run(metrics: str | Path, search_benchmark: str | Path | None = None,
             genotype: str | Path | None = None, default_unit: str = UNKNOWN_UNIT) -> Run:
    """A run from ``metrics.json`` (midas train or midas nb201 lookup), its search's benchmark TSV and
    genotype.json (whose config.yaml says whether the search ran on a GPU)."""
    try:
        m = json.loads(Path(metrics).read_text())
    except FileNotFoundError:
        raise TableError(f"metrics file {metrics} does not exist") from None
    except json.JSONDecodeError as exc:
        raise TableError(f"metrics file {metrics} is not valid JSON ({exc}); rerun the job that writes it") from None
    missing = [k for k in ("space", "dataset", "method", "seed", "test_acc") if m.get(k) is None]
    if missing:
        raise TableError(f"metrics file {metrics} lacks {', '.join(missing)}")
    acc = float(m["test_acc"])
    err = float(m["test_err"]) if m.get("test_err") is not None else 100.0 - acc
    params = m.get("params_m")
    return Run(space=str(m["space"]), dataset=str(m["dataset"]), method=str(m["method"]), seed=int(m["seed"]),
               source=str(m.get("source", "train")), test_acc=acc, test_err=err,
               params_m=float(params) if params is not None else None,
               search_s=read_benchmark_seconds(search_benchmark) if search_benchmark else None,
               cost_unit=search_device_unit(genotype, default_unit) if genotype else default_unit)


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    s = pd.Series(list(values), dtype=float)
    return float(s.mean()), (float(s.std(ddof=1)) if len(s) > 1 else None)


def _nan(x: float | None) -> float:
    return math.nan if x is None else x


def tidy_rows(runs: Iterable[Run], budget: str) -> list[dict[str, Any]]:
    """One row per (table, space, dataset, method): ours over seeds, then the published rows."""
    rows: list[dict[str, Any]] = []
    by_key: dict[tuple[str, str, str, str], list[Run]] = {}
    for r in runs:
        by_key.setdefault((r.space, r.dataset, r.method, r.source), []).append(r)
    space_table = {s: t for t, spaces in TABLE_SPACES.items() for s in spaces}
    for (space, dataset, method, source), group in sorted(by_key.items()):
        table = space_table.get(space)
        if table is None:
            raise TableError(f"run of unknown space {space!r}; tables hold {sorted(space_table)}")
        metric = TABLE_METRIC[table]
        seeds = sorted({r.seed for r in group})
        if len(seeds) != len(group):
            raise TableError(f"{space}/{dataset}/{method}: seed listed twice among {[r.seed for r in group]}")
        mean, std = _mean_std([getattr(r, metric) for r in group])
        params = [r.params_m for r in group if r.params_m is not None]
        costs = [r.search_s / 3600.0 for r in group if r.search_s is not None]
        units = sorted({r.cost_unit for r in group if r.search_s is not None})
        rows.append({
            "table": table, "space": space, "dataset": dataset, "method": method, "origin": "ours",
            "source": source, "budget": budget, "verified": True, "seeds": " ".join(map(str, seeds)),
            "metric": metric, "mean": mean, "std": _nan(std),
            "params_m": _mean_std(params)[0] if params else math.nan,
            "search_cost_h": _mean_std(costs)[0] if costs else math.nan,
            "cost_unit": " / ".join(units), "note": "",
        })
    for p in PUBLISHED:
        for (space, dataset), (mean, std) in p.values.items():
            rows.append({
                "table": p.table, "space": space, "dataset": dataset, "method": p.method, "origin": "published",
                "source": p.source, "budget": "paper", "verified": p.verified, "seeds": "",
                "metric": TABLE_METRIC[p.table], "mean": mean, "std": _nan(std),
                "params_m": _nan(p.params_m),
                "search_cost_h": p.cost_gpu_days * 24.0 if p.cost_gpu_days is not None else math.nan,
                "cost_unit": "GPU-h" if p.cost_gpu_days is not None else "", "note": p.note,
            })
    return rows


# --------------------------------------------------------------------------- formatting

def _fmt(mean: float, std: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def _num(x: float, digits: int = 2) -> str:
    return "" if math.isnan(x) else f"{x:.{digits}f}"


def wide_table(tidy: pd.DataFrame, table: str) -> pd.DataFrame:
    """The paper layout: one row per method (ours first), one "mean ± std" column per (space, dataset)."""
    sub = tidy[tidy["table"] == table]
    spaces = TABLE_SPACES[table]
    cols = sorted({(s, d) for s, d in zip(sub["space"], sub["dataset"])},
                  key=lambda sd: (DATASET_ORDER.index(sd[1]) if sd[1] in DATASET_ORDER else 99, sd[1],
                                  spaces.index(sd[0])))
    metric = "err" if TABLE_METRIC[table] == "test_err" else "acc"

    def col_name(space: str, dataset: str) -> str:
        d = DATASET_LABEL.get(dataset, dataset)
        return f"{space} {d} {metric}" if len(spaces) > 1 else f"{d} {metric}"

    out = []
    keys = sub[["origin", "method", "source", "budget"]].drop_duplicates().itertuples(index=False)
    order = {"ours": 0, "published": 1}
    for origin, method, source, budget in sorted(keys, key=lambda k: order[k[0]]):
        g = sub[(sub["origin"] == origin) & (sub["method"] == method) & (sub["source"] == source)]
        if origin == "ours":
            label = f"{METHOD_LABEL.get(method, method)} (ours)"
            src = f"ours, {source}"
        else:
            label = method
            src = source + ("" if bool(g["verified"].iloc[0]) else " (unverified: not re-checked against the papers)")
        row: dict[str, str] = {"method": label, "budget": budget}
        for space, dataset in cols:
            hit = g[(g["space"] == space) & (g["dataset"] == dataset)]
            row[col_name(space, dataset)] = _fmt(hit["mean"].iloc[0], hit["std"].iloc[0]) if len(hit) else ""
            if origin == "ours" and len(hit):
                row[col_name(space, dataset)] += f" (n={len(str(hit['seeds'].iloc[0]).split())})"
        if table == "darts":
            row["params (M)"] = _num(g["params_m"].iloc[0]) if len(g) else ""
        costs = g["search_cost_h"].dropna()
        unit = next((u for u in g["cost_unit"] if u), "")
        row["search cost (h)"] = f"{costs.mean():.3g} {unit}" if len(costs) else ""
        row["source"] = src
        note = "; ".join(sorted({n for n in g["note"] if n}))
        if note:
            row["source"] += f" ({note})"
        out.append(row)
    return pd.DataFrame(out).fillna("")


def caption(table: str, budget: str) -> str:
    scale = ("paper-scale budget" if budget == "paper" else
             f"budget '{budget}': NOT comparable with the published paper-scale numbers")
    return (f"Our rows: mean ± std over seeds (n = seeds), {scale}; 'train' = "
            f"retrained from scratch, 'benchmark' = looked up in NAS-Bench-201. Search cost: wall time of one "
            f"search job in hours (GPU-h, or CPU-h for searches run on CPU; the unit is in each cell); published "
            f"costs converted from GPU-days. "
            f"Published rows name their source; RobustDARTS numbers are unverified.")


def to_markdown(wide: pd.DataFrame, title: str, note: str) -> str:
    if wide.empty:
        body = "(no rows)"
    else:
        body = wide.to_markdown(index=False, disable_numparse=True)  # keep "7.20", not 7.2
    return f"### {title}\n\n{body}\n\n{note}\n"


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("~", r"\textasciitilde{}")):
        s = s.replace(a, b)
    return s


def to_latex(wide: pd.DataFrame, title: str, note: str, label: str) -> str:
    cols = list(wide.columns)
    lines = [r"% needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{_tex_escape(title)}. {_tex_escape(note)}}}", rf"\label{{tab:{label}}}",
             r"\begin{tabular}{" + "l" * len(cols) + "}", r"\toprule",
             " & ".join(_tex_escape(c) for c in cols) + r" \\", r"\midrule"]
    prev = None
    for row in wide.itertuples(index=False):
        origin = "ours" if str(row.source).startswith("ours") else "published"
        if prev is not None and origin != prev:
            lines.append(r"\midrule")
        prev = origin
        lines.append(" & ".join(_tex_escape(str(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_tables(runs: Sequence[Run], out_dir: str | Path, budget: str) -> dict[str, Path]:
    """Write ``{darts,nb201,rdarts}.{csv,md,tex}`` into ``out_dir``; returns the paths by name."""
    out = Path(out_dir)
    tidy = pd.DataFrame(tidy_rows(runs, budget), columns=list(CSV_COLUMNS))
    written: dict[str, Path] = {}
    for table in TABLES:
        sub = tidy[tidy["table"] == table]
        with io.atomic_open(out / f"{table}.csv") as fh:  # NaN (no value) is written as an empty field
            sub.to_csv(fh, index=False, float_format="%.4f", lineterminator="\n")
        wide = wide_table(tidy, table)
        note = caption(table, budget)
        io.write_text(out / f"{table}.md", to_markdown(wide, TABLE_TITLE[table], note))
        io.write_text(out / f"{table}.tex", to_latex(wide, TABLE_TITLE[table], note, table))
        written.update({f"{table}.{ext}": out / f"{table}.{ext}" for ext in ("csv", "md", "tex")})
    return written


def build(metrics: Sequence[str | Path], out_dir: str | Path, budget: str,
          search_benchmarks: Sequence[str | Path] = (), genotypes: Sequence[str | Path] = (),
          default_unit: str = UNKNOWN_UNIT) -> dict[str, Path]:
    """Read runs and write the tables. The i-th benchmark TSV and genotype.json belong to the i-th metrics file."""
    for name, files in (("search benchmark", search_benchmarks), ("genotype", genotypes)):
        if files and len(files) != len(metrics):
            raise TableError(f"{len(metrics)} metrics files but {len(files)} {name} files; "
                             f"pass one {name} file per metrics file, in the same order")
    runs = [read_run(m, search_benchmarks[i] if search_benchmarks else None,
                     genotypes[i] if genotypes else None, default_unit) for i, m in enumerate(metrics)]
    return write_tables(runs, out_dir, budget)
