"""midas tables: aggregate finished runs into the paper's tables (CSV, Markdown, LaTeX)."""

from __future__ import annotations

import argparse

NAME = "tables"
HELP = "aggregate metrics.json files (and the searches' benchmark TSVs) into the darts, nb201 and rdarts tables"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", nargs="*", default=[], metavar="FILE",
                   help="metrics.json of midas train / midas nb201 lookup runs")
    p.add_argument("--search-benchmarks", nargs="*", default=[], metavar="TSV",
                   help="Snakemake benchmark TSV of each run's search, in the order of --metrics (search cost)")
    p.add_argument("--genotypes", nargs="*", default=[], metavar="FILE",
                   help="genotype.json of each run's search, in the order of --metrics; the config.yaml beside "
                        "it says whether the search ran on a GPU (GPU-h) or a CPU (CPU-h)")
    p.add_argument("--out", required=True, help="folder for {darts,nb201,rdarts}.{csv,md,tex}")
    p.add_argument("--budget", required=True, help="budget label of these runs (e.g. quick, paper), shown in every row")


def run(args: argparse.Namespace) -> int:
    from midas.tables import build

    written = build(args.metrics, args.out, args.budget, args.search_benchmarks, args.genotypes)
    print(f"wrote {len(written)} table files to {args.out}")
    return 0
