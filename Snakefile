# midas-repro: search -> retrain / NAS-Bench-201 lookup -> paper tables (+ analysis figures).
# Quick default:  snakemake --cores all
# Paper scale:    snakemake --configfile config/paper.yaml --profile profiles/slurm
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.20")


# The quick default, unless --configfile names the config(s) to use instead: a paper-scale run must not
# inherit quick-budget keys it does not set (Snakemake would otherwise merge the two).
if not workflow.overwrite_configfiles:

    configfile: str(Path(workflow.basedir) / "config" / "config.yaml")


validate(config, "workflow/schemas/config.schema.yaml")


wildcard_constraints:
    space="darts|nb201|s1|s2|s3|s4",
    dataset="[a-z0-9][a-z0-9_-]*",
    method="midas-global|midas|darts",
    seed=r"\d+",


include: "workflow/rules/common.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/lookup.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plots.smk"


rule all:
    input:
        search_outputs(),
        table_files(),
        figure_targets(),
    default_target: True
