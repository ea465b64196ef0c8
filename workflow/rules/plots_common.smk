"""Helpers of the analysis rules (plots.smk): which runs each analysis reads, output names, captions' budget."""

ANALYSIS_DIR = "results/analysis"
FIGURE_DIR = "figures"
#: defaults of the config's optional `analysis` section
ANALYSIS_DEFAULTS = {
    "probe_folds": 5,
    "probe_max_samples": 5000,
    "probe_patches": False,
    "top_edges": 3,
    "alpha": 0.05,
    "max_points": 20000,
}


def analysis_option(key):
    return {**ANALYSIS_DEFAULTS, **(config.get("analysis") or {})}[key]


def analysis_runs(space=None, dataset=None):
    return [r for r in runs()
            if (space is None or r["space"] == space) and (dataset is None or r["dataset"] == dataset)]


def analysis_pairs():
    """(space, dataset) pairs of the config."""
    return [(s, d) for s, datasets in config["spaces"].items() for d in datasets]


def analysis_datasets():
    return list(dict.fromkeys(d for _, d in analysis_pairs()))


def analysis_search_files(*names):
    """Input function: the given search outputs of every run of the job's space (if any) and dataset."""

    def files(wildcards):
        space = getattr(wildcards, "space", None)
        return [search_path(n).format(**r) for r in analysis_runs(space, wildcards.dataset) for n in names]

    return files


def analysis_dirs(wildcards, input):
    return " ".join(sorted({str(Path(f).parent) for f in input.genotypes}, key=str))


def budget_note():
    """What the budget was: its label and every budget key the config sets (the rest: midas defaults)."""
    parts = []
    for section in ("search", "supernet", "midas", "data"):
        values = config.get(section) or {}
        keys = [f"{k}={v}" for k, v in values.items() if section != "data" or k.startswith("subset")]
        if keys:
            parts.append(f"{section}: {', '.join(keys)}")
    seeds = ", ".join(map(str, config["seeds"]))
    return f"budget '{config['budget']}' (seeds {seeds}; {'; '.join(parts) or 'midas defaults'})"


def analysis_title(space, dataset):
    return f"{space} / {dataset}, budget {config['budget']}" if space else f"{dataset}, budget {config['budget']}"


def figure(name):
    """Both files of a figure: (pdf, png)."""
    return [f"{FIGURE_DIR}/{name}.pdf", f"{FIGURE_DIR}/{name}.png"]


def figure_targets():
    """Every analysis figure and table of the config (requested by `rule all`)."""
    out = []
    for dataset in analysis_datasets():
        out += figure(f"discrimination_{dataset}")
        out += [f"{ANALYSIS_DIR}/discrimination_{dataset}.csv"]
    for space, dataset in analysis_pairs():
        for kind in ("class_aware", "class_means", "unimodal", "trajectories"):
            out += figure(f"{kind}_{space}_{dataset}")
        for method in config["methods"]:
            out += figure(f"weights_{space}_{dataset}_{method}")
            for seed in config["seeds"]:
                out += figure(f"cells/{space}_{dataset}_{method}_seed{seed}")
        out += [f"{ANALYSIS_DIR}/{kind}_{space}_{dataset}.csv" for kind in ("class_aware", "unimodal", "trajectories")]
    return out


def trajectory_bench_flags(wildcards):
    """Benchmark flags for NB201 trajectories. The table is external data, like the datasets:
    passed through --set, never a declared input, so a dry run never needs it to exist."""
    if wildcards.space == "nb201" and benchmark_table():
        return midas_sets("lookup", wildcards.dataset)
    return ""
