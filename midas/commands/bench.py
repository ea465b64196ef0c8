"""midas bench: seconds per search step, memory, parameters and FLOPs of MIDAS vs DARTS."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from midas.errors import ConfigError

NAME = "bench"
HELP = ("time the weight and architecture steps of MIDAS and DARTS supernets on the same configuration "
        "(peak memory, parameters, FLOPs) and print their ratios")


def _list(kind: type, what: str):  # noqa: ANN202 - argparse type factory
    def parse(text: str) -> list:
        try:
            return [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what}: expected comma-separated {kind.__name__}s, got {text!r}") from None
    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--space", type=_list(str, "--space"), default=["darts"], help="darts | nb201 | s1-s4, comma list")
    p.add_argument("--methods", type=_list(str, "--methods"), default=["midas", "darts"],
                   help="comma list of midas, midas-global, darts (default: midas,darts)")
    p.add_argument("--batch-size", type=_list(int, "--batch-size"), default=[32], help="comma list (default 32)")
    p.add_argument("--patch-grid", type=_list(int, "--patch-grid"), default=[2],
                   help="MIDAS patch grid G, comma list (default 2)")
    p.add_argument("--amp", type=_list(str, "--amp"), default=["none"], help="none | bf16 | fp16, comma list")
    p.add_argument("--impls", type=_list(str, "--impls"), default=["fast"],
                   help="supernet implementation: fast | reference, comma list (reference = DARTS design)")
    p.add_argument("--channels", type=int, default=16, help="initial channels C (default 16, paper size)")
    p.add_argument("--layers", type=int, default=8, help="DARTS-like spaces: cells (default 8)")
    p.add_argument("--cells-per-stage", type=int, default=5, help="NB201: cells per stage N (default 5)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads, 0 = torch's default; on a shared CPU use the cores that are really free")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed steps per case and round (default 3)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run all cases this many times, interleaved (fairer ratios on a busy machine)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override for every case, e.g. --set supernet.channels_last=false")
    p.add_argument("--json", help="write the full results (every timed step) to this JSON file")
    p.add_argument("--markdown", help="write the tables into this Markdown file between <!-- bench:SECTION --> markers")
    p.add_argument("--section", default="cpu", help="marker name for --markdown (default cpu)")
    p.add_argument("--no-isolate", action="store_true",
                   help="measure in this process (faster start, but peak memory is then shared between cases)")


def run(args: argparse.Namespace) -> int:
    from midas import io
    from midas.bench import expand_cases, markdown_table, run_bench, update_markdown

    if any(m not in ("midas", "midas-global", "darts") for m in args.methods):
        raise ConfigError(f"--methods {','.join(args.methods)}: choose from midas, midas-global, darts")
    cases = expand_cases(args.space, args.methods, args.batch_size, args.patch_grid, args.amp, args.impls,
                         channels=args.channels, layers=args.layers, cells_per_stage=args.cells_per_stage,
                         device=args.device, threads=args.threads, extra=tuple(args.overrides))
    for case in cases:  # validate every configuration before the first (slow) measurement
        case.config()
    command = "midas " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["bench"] else ""
    report = run_bench(cases, args.warmup, args.repeats, args.rounds, isolate=not args.no_isolate,
                       command=command, echo=lambda s: print(s, file=sys.stderr, flush=True))
    table = markdown_table(report)
    print(table)
    if args.json:
        io.write_json(args.json, report.to_json())
    if args.markdown:
        first = report.results[0]
        body = (f"Device: **{first['device_name']}**, torch {first['torch']}, {first['threads']} thread(s).\n\n"
                + (f"Command: `{command}`\n\n" if command else "") + table)
        update_markdown(args.markdown, args.section, body)
    print(json.dumps({"ratios": report.ratios}, indent=1))
    return 0
