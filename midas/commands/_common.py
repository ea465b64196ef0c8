"""Arguments shared by the subcommands that take a configuration."""

from __future__ import annotations

import argparse
from typing import Any

from midas import config


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file overriding the defaults (same keys)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set search.epochs=10 (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")


def resolve_config(args: argparse.Namespace, **top: Any) -> dict[str, Any]:
    return config.resolve(args.config, args.overrides, seed=args.seed, device=args.device, **top)
