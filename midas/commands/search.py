"""midas search: one MIDAS or DARTS architecture search."""

from __future__ import annotations

import argparse

from midas.commands._common import add_config_arguments, resolve_config

NAME = "search"
HELP = "run (or resume) an architecture search and write genotype.json, search_log.csv, weights.npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", help="darts | nb201 | s1 | s2 | s3 | s4")
    p.add_argument("--method", help="midas | midas-global | darts")
    p.add_argument("--dataset", help="cifar10 | cifar100 | svhn | imagenet16-120 | name of an npz/imagefolder set")
    p.add_argument("--out", required=True, help="output folder (rerun with the same folder to resume)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    add_config_arguments(p)


def run(args: argparse.Namespace) -> int:
    from midas.search import run_search

    cfg = resolve_config(args, space=args.space, method=args.method, dataset=args.dataset)
    record = run_search(cfg, args.out, fresh=args.fresh)
    print(f"{record['space']} {record['method']} seed {record['seed']}: {record['genotype']}")
    return 0
