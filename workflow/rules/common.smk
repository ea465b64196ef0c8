"""Helpers of the workflow: the runs the config asks for, their paths, and the midas flags of each job.

Every path is built here from wildcards (no path arithmetic in the rules), and every
midas option a job gets comes from the config's budget sections, passed as
``--set section.key=value`` so a changed budget changes the jobs' params and
Snakemake reruns them.
"""

import json
import shlex
from pathlib import Path

import yaml

# --------------------------------------------------------------------------- layout

SEARCH_DIR = "results/search/{space}/{dataset}/{method}/seed{seed}"
TRAIN_DIR = "results/train/{space}/{dataset}/{method}/seed{seed}"
LOOKUP_DIR = "results/lookup/{space}/{dataset}/{method}/seed{seed}"
LOG_DIR = "results/logs/{kind}/{space}/{dataset}/{method}/seed{seed}.log"
BENCH_FILE = "results/benchmarks/{kind}/{space}/{dataset}/{method}/seed{seed}.tsv"
TABLE_DIR = "results/tables"
TABLES = ("darts", "nb201", "rdarts")
TABLE_FORMATS = ("csv", "md", "tex")
#: midas config sections each kind of job takes from the workflow config
SECTIONS = {
    "search": ("data", "search", "supernet", "midas"),
    "train": ("data", "train"),
    "lookup": ("benchmark",),
}


def search_path(name):
    return f"{SEARCH_DIR}/{name}"


def train_path(name):
    return f"{TRAIN_DIR}/{name}"


def lookup_path(name):
    return f"{LOOKUP_DIR}/{name}"


def log_path(kind):
    return LOG_DIR.replace("{kind}", kind)


def bench_path(kind):
    return BENCH_FILE.replace("{kind}", kind)


def table_files():
    return [f"{TABLE_DIR}/{t}.{ext}" for t in TABLES for ext in TABLE_FORMATS]


# --------------------------------------------------------------------------- the runs

def benchmark_table():
    """Path of the NB201 compact table, or None (then NB201 cells are retrained)."""
    return (config.get("benchmark") or {}).get("table")


def evaluated_by(space):
    """How a searched cell of ``space`` gets its test accuracy: 'lookup' (NB201 + table) or 'train'."""
    return "lookup" if space == "nb201" and benchmark_table() else "train"


def runs():
    """Every (space, dataset, method, seed) of the config, in a fixed order."""
    return [
        {"space": space, "dataset": dataset, "method": method, "seed": seed}
        for space, datasets in config["spaces"].items()
        for dataset in datasets
        for method in config["methods"]
        for seed in config["seeds"]
    ]


def metrics_file(run):
    kind = evaluated_by(run["space"])
    pattern = lookup_path("metrics.json") if kind == "lookup" else train_path("metrics.json")
    return pattern.format(**run)


def search_outputs():
    return [search_path(name).format(**r) for r in runs()
            for name in ("genotype.json", "search_log.csv", "weights.npz")]


def all_metrics():
    return [metrics_file(r) for r in runs()]


def all_search_benchmarks():
    """The search benchmark TSV of each run, in the order of all_metrics()."""
    return [bench_path("search").format(**r) for r in runs()]


def all_genotypes():
    """The search genotype.json of each run, in the order of all_metrics()."""
    return [search_path("genotype.json").format(**r) for r in runs()]


# --------------------------------------------------------------------------- job flags

def _yaml_value(value):
    """A value as midas's --set parses it (YAML): JSON for non-strings, strings as-is unless ambiguous."""
    if isinstance(value, str):
        try:
            plain = yaml.safe_load(value) == value
        except yaml.YAMLError:  # e.g. a leading * (a YAML alias)
            plain = False
        return value if plain else json.dumps(value)
    return json.dumps(value)


def _flatten(d, prefix=""):
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def data_config(dataset):
    """The data section for one dataset: the common one, then that dataset's dataset_data entry."""
    merged = dict(config.get("data") or {})
    merged.update((config.get("dataset_data") or {}).get(dataset) or {})
    return merged


def midas_sets(kind, dataset):
    """``--set`` flags of a job of this kind: the config's budget sections, shell-quoted."""
    flags = ["progress=log"]  # threads: the rule's {threads}, which a profile's set-threads may change
    for section in SECTIONS[kind]:
        values = data_config(dataset) if section == "data" else (config.get(section) or {})
        for key, value in _flatten(values, f"{section}.").items():
            flags.append(f"{key}={_yaml_value(value)}")
    return " ".join(f"--set {shlex.quote(f)}" for f in flags)


def device(resources):
    """The job's device follows the GPUs it was given (rule default from use_gpu, or a profile's gpu)."""
    return "cuda" if int(resources.get("gpu", 0) or 0) > 0 else "cpu"


def gpu_resources():
    return 1 if config.get("use_gpu") else 0


def midas_command(resources=None):
    """How jobs call midas: this checkout's package on PYTHONPATH (so a --use-conda environment with only the
    dependencies works too), behind the GPU-pinning launcher when the job holds a GPU."""
    root = shlex.quote(str(Path(workflow.basedir)))
    launcher = ""
    if resources is not None and device(resources) == "cuda":
        script = Path(workflow.basedir) / "workflow" / "scripts" / "gpu_slot.py"
        launcher = f"python {shlex.quote(str(script))} -- "
    return f"env PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} {launcher}python -m midas"
