"""midas nb201: NAS-Bench-201 lookups, and the compact table exported from the official file."""

from __future__ import annotations

import argparse

from midas.commands._common import add_config_arguments, resolve_config

NAME = "nb201"
HELP = "look an NB201 genotype up in NAS-Bench-201 (lookup), or write the compact table (export)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    lookup = sub.add_parser("lookup", help="write DIR/metrics.json with the benchmark's accuracies of a genotype",
                            description="Look a genotype.json up in the table of benchmark.table "
                                        "(or the official file of benchmark.api_file).")
    lookup.add_argument("--genotype", required=True, help="genotype.json of an nb201 search (or {space, genotype})")
    lookup.add_argument("--out", required=True, help="output folder for metrics.json")
    lookup.add_argument("--dataset", help="dataset whose accuracy is test_acc (default: the genotype's dataset)")
    add_config_arguments(lookup)
    export = sub.add_parser("export", help="write the compact table from the official NAS-Bench-201 file",
                            description="Read NAS-Bench-201-*.pth through nas_201_api (tens of GB of RAM, "
                                        "once) and write one row per cell: test accuracies and arch string.")
    export.add_argument("--api-file", required=True, help="official NAS-Bench-201-v1_*.pth")
    export.add_argument("--out", required=True, help="table to write (.csv, or .parquet with pyarrow)")
    add_config_arguments(export)


def run(args: argparse.Namespace) -> int:
    from midas import nb201_bench

    cfg = resolve_config(args)
    if args.action == "lookup":
        m = nb201_bench.run_lookup(cfg, args.genotype, args.out, args.dataset)
        accs = ", ".join(f"{d} {a:.2f}" for d, a in m["accuracies"].items())
        print(f"{m['arch']} (row {m['index']} of {m['benchmark']}): {accs}")
        return 0
    b = cfg["benchmark"]
    api = nb201_bench.open_api(args.api_file)
    df = nb201_bench.export_table(api, args.out, b["arch_column"], nb201_bench.configured_columns(cfg),
                                  b["unique_column"],
                                  report=lambda i, n: nb201_bench.log.info("exported %d / %d", i, n))
    print(f"wrote {len(df)} rows to {args.out}")
    return 0
