"""midas analyze: the paper's analyses of search outputs (tables as CSV, figures as PDF + PNG)."""

from __future__ import annotations

import argparse

NAME = "analyze"
HELP = "analyses of search outputs: discrimination, class-aware, unimodal, trajectories, cell diagrams"

#: class names of the built-in datasets, for heatmap axes (others show class indices)
CLASS_NAMES = {"cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")}


def _runs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs", nargs="+", required=True, metavar="DIR",
                   help="search output folders (weights.npz, genotype.json, search_log.csv); any mix of methods/seeds")


def _title(p: argparse.ArgumentParser) -> None:
    p.add_argument("--title", default="", help="figure title (e.g. the dataset and budget)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", required=True, metavar="KIND")

    d = sub.add_parser("discrimination", help="margin and normalized entropy of the weights per edge/sample/patch")
    _runs(d)
    d.add_argument("--table", required=True, help="summary CSV (per space, method, level)")
    d.add_argument("--edges-table", help="per-edge CSV")
    d.add_argument("--figure", help="figure path (.pdf; a .png is written beside it)")
    d.add_argument("--max-points", type=int, default=20000, help="values per run and level kept for the violins")
    _title(d)

    c = sub.add_parser("class-aware", help="eta squared of class, per-class means, linear probe")
    _runs(c)
    c.add_argument("--table", required=True, help="probe CSV (one row per run)")
    c.add_argument("--eta-table", help="eta squared CSV (per run, edge, op)")
    c.add_argument("--figure", help="eta squared + probe figure")
    c.add_argument("--heatmap", help="per-class mean heatmaps for the most class-dependent edges")
    c.add_argument("--folds", type=int, default=5, help="stratified cross-validation folds")
    c.add_argument("--max-samples", type=int, default=5000, help="samples used by the probe (0 = all)")
    c.add_argument("--patches", action="store_true", help="probe on per-patch weights instead of patch means")
    c.add_argument("--top-edges", type=int, default=3, help="edges per method in the heatmap")
    c.add_argument("--class-names", help="comma-separated class names for the heatmap (default: by dataset)")
    _title(c)

    u = sub.add_parser("unimodal", help="Hartigan's dip test of each per-sample weight distribution")
    _runs(u)
    u.add_argument("--table", required=True, help="summary CSV (share of unimodal distributions per method)")
    u.add_argument("--dist-table", help="per-distribution CSV (dip, p-value)")
    u.add_argument("--figure", help="histogram grid of the decoded edges")
    u.add_argument("--alpha", type=float, default=0.05, help="unimodal when the dip-test p-value >= alpha")
    _title(u)

    t = sub.add_parser("trajectories", help="global weights and decoded cells over search epochs")
    _runs(t)
    t.add_argument("--table", help="per-epoch CSV (decoded cell, parameter-free share, benchmark accuracy)")
    t.add_argument("--weights-figure", help="global weights per edge over epochs (lowest seed); a path with "
                                            "'{method}' draws one figure per method, otherwise only the first run")
    t.add_argument("--figure", help="per-epoch overview: benchmark accuracy (NB201) and parameter-free share")
    t.add_argument("--bench-dataset", help="benchmark accuracy column to use (default: the runs' dataset)")
    t.add_argument("--config", help="YAML config; its benchmark section (as for `midas nb201 lookup`) "
                                    "gives the NB201 table; without benchmark.table/api_file no lookup is made")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set benchmark.table=nats_bench.csv")
    _title(t)

    g = sub.add_parser("cell", help="draw the decoded cell(s) of genotype.json files with graphviz")
    g.add_argument("--genotype", required=True, nargs="+", help="genotype.json of a search (or any genotype file)")
    g.add_argument("--figure", required=True, nargs="+",
                   help="output path per genotype, in the same order (.pdf; a .png is written beside it)")
    _title(g)


def _write_table(df, path: str | None) -> None:  # noqa: ANN001 - pandas DataFrame
    if path:
        from midas import io

        with io.atomic_open(path) as fh:
            df.to_csv(fh, index=False, float_format="%.6g", lineterminator="\n")


def _save(fig, path: str | None) -> None:  # noqa: ANN001 - matplotlib Figure
    if path:
        from midas.analysis import style

        with style.styled():
            style.save_figure(fig, path)


def run(args: argparse.Namespace) -> int:
    from midas.analysis import style

    kind = args.kind
    with style.styled():
        if kind == "cell":
            from midas.analysis.cells import draw_genotype_file

            if len(args.genotype) != len(args.figure):
                from midas.errors import ConfigError

                raise ConfigError(f"midas analyze cell: {len(args.genotype)} --genotype files but "
                                  f"{len(args.figure)} --figure paths; give one figure path per genotype")
            for geno, fig in zip(args.genotype, args.figure):
                pdf, png = draw_genotype_file(geno, fig, args.title or None)
                print(f"wrote {pdf} and {png}")
            return 0
        if kind == "trajectories":
            return _trajectories(args)
        from midas.analysis.load import load_runs

        runs = load_runs(args.runs)
        if kind == "discrimination":
            from midas.analysis import discrimination

            table, edges, values = discrimination.analyze(runs, args.max_points)
            _write_table(table, args.table)
            _write_table(edges, args.edges_table)
            if args.figure:
                _save(discrimination.figure(values, args.title), args.figure)
            cols = ["space", "method", "level", "margin_mean", "entropy_mean"]
        elif kind == "class-aware":
            from midas.analysis import class_aware

            probes, etas = class_aware.analyze(runs, args.folds, args.max_samples, args.patches)
            _write_table(probes, args.table)
            _write_table(etas, args.eta_table)
            if args.figure:
                _save(class_aware.summary_figure(probes, etas, args.title), args.figure)
            if args.heatmap:
                names = args.class_names.split(",") if args.class_names else CLASS_NAMES.get(runs[0].dataset)
                _save(class_aware.heatmap_figure(runs, etas, args.top_edges, names, args.title), args.heatmap)
            eta_mean = etas.groupby(["space", "method", "seed"]).agg(
                eta_squared_mean=("eta_squared", "mean"), eta_squared_null=("eta_squared_null", "mean")).reset_index()
            table = probes.merge(eta_mean, on=["space", "method", "seed"])
            cols = ["space", "method", "seed", "probe_acc", "shuffled_acc", "majority_acc", "eta_squared_mean",
                    "eta_squared_null"]
        elif kind == "unimodal":
            from midas.analysis import unimodal

            table, dists = unimodal.analyze(runs, args.alpha)
            _write_table(table, args.table)
            _write_table(dists, args.dist_table)
            if args.figure:
                _save(unimodal.figure(runs, dists, args.title), args.figure)
            cols = ["space", "method", "share_unimodal", "share_unimodal_nonconstant", "n_constant"]
        else:  # pragma: no cover - argparse restricts the choices
            raise AssertionError(kind)
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


def _trajectories(args: argparse.Namespace) -> int:
    from midas.analysis import trajectories as tr

    trajs = [tr.load_trajectory(f) for f in args.runs]
    from midas import config

    cfg = config.resolve(args.config, args.overrides)
    bench = None
    wanted = cfg["benchmark"]["table"] or cfg["benchmark"]["api_file"]
    if wanted and any(t.space.family == "nb201" for t in trajs):
        dataset = args.bench_dataset or trajs[0].dataset
        if args.bench_dataset or dataset in cfg["benchmark"]["columns"]:
            bench = tr.open_bench_scores(cfg, dataset)
        else:
            from midas.runtime import log

            log.warning("the benchmark has no accuracy column for dataset %r (benchmark.columns): "
                        "no benchmark accuracy per epoch", dataset)
    table = tr.analyze(trajs, bench)
    _write_table(table, args.table)
    if args.weights_figure:
        if "{method}" in args.weights_figure:
            for method in dict.fromkeys(t.method for t in trajs):
                first = min((t for t in trajs if t.method == method), key=lambda t: t.seed)
                _save(tr.weights_figure(first, args.title), args.weights_figure.replace("{method}", method))
        else:
            _save(tr.weights_figure(trajs[0], args.title), args.weights_figure)
    if args.figure:
        _save(tr.bench_figure(table, bench, args.title), args.figure)
    last = table.sort_values("epoch").groupby(["space", "method", "seed"]).tail(1)
    cols = [c for c in ("space", "method", "seed", "epoch", "parameter_free_share_normal", "bench_accuracy")
            if c in last]
    print(last[cols].to_string(index=False))
    return 0
