"""``midas`` command line: one subcommand per module in ``midas.commands``.

A ``MidasError`` (bad input the user can fix) prints one message and exits 2;
a non-finite loss or resource problem exits 1; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from midas import __version__
from midas.errors import MidasError, NonFiniteLossError, ResourceError
from midas.logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    import midas.commands as commands

    parser = argparse.ArgumentParser(
        prog="midas", description="MIDAS / DARTS architecture search, retraining, benchmarks and analyses."
    )
    parser.add_argument("--version", action="version", version=f"midas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"midas.commands.{info.name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (NonFiniteLossError, ResourceError) as exc:
        print(f"midas: error: {exc}", file=sys.stderr)
        return 1
    except MidasError as exc:
        print(f"midas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("midas: interrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130
