# NAS-Bench-201 lookup of a searched NB201 cell in the configured compact table
# (used instead of retraining when benchmark.table is set). Like the datasets, the table is
# external data, not a declared input: a missing table fails the job with a message saying
# how to write it (midas nb201 export), and a dry run resolves before it exists.


rule lookup:
    input:
        genotype=search_path("genotype.json"),
    output:
        metrics=lookup_path("metrics.json"),
    log:
        log_path("lookup"),
    params:
        midas=midas_command(),
        outdir=lambda wildcards, output: Path(output.metrics).parent,
        sets=lambda wildcards: midas_sets("lookup", wildcards.dataset),
    wildcard_constraints:
        space="nb201",
    conda:
        "../../environment.yml"
    shell:
        "{params.midas} nb201 lookup --genotype {input.genotype} --dataset {wildcards.dataset}"
        " --out {params.outdir} {params.sets} > {log} 2>&1"
