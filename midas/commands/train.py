"""midas train: retrain a genotype from scratch with the DARTS or NB201 protocol."""

from __future__ import annotations

import argparse

from midas.commands._common import add_config_arguments, resolve_config

NAME = "train"
HELP = "retrain a genotype (genotype.json) from scratch and write metrics.json, train_log.csv"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--genotype", required=True,
                   help="genotype.json from midas search, or a hand-written {space, genotype} file")
    p.add_argument("--dataset", help="cifar10 | cifar100 | svhn | imagenet16-120 | name of an npz/imagefolder set")
    p.add_argument("--out", required=True, help="output folder (rerun with the same folder to resume)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint and start over")
    add_config_arguments(p)


def run(args: argparse.Namespace) -> int:
    from midas.genotypes import load_genotype_file
    from midas.train import run_train

    space, _, _ = load_genotype_file(args.genotype)
    cfg = resolve_config(args, dataset=args.dataset, space=space.name)
    m = run_train(cfg, args.genotype, args.out, fresh=args.fresh)
    print(f"{m['space']} {m['dataset']} seed {m['seed']}: test_acc {m['test_acc']:.2f}% "
          f"(best {m['best_test_acc']:.2f}%), {m['params_m']:.3f}M params, {m['flops_m']:.1f} MFLOPs")
    return 0
