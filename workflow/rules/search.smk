# Architecture search: one job per (space, dataset, method, seed).
# checkpoint.pt lives beside the outputs but is not one of them, so a killed job that
# Snakemake reruns resumes from its last epoch instead of starting over.


rule search:
    output:
        genotype=search_path("genotype.json"),
        log_csv=search_path("search_log.csv"),
        weights=search_path("weights.npz"),
    log:
        log_path("search"),
    benchmark:
        bench_path("search")
    params:
        midas=lambda wildcards, resources: midas_command(resources),
        outdir=lambda wildcards, output: Path(output.genotype).parent,
        sets=lambda wildcards: midas_sets("search", wildcards.dataset),
        device=lambda wildcards, resources: device(resources),
    threads: config.get("threads", 1)
    resources:
        gpu=gpu_resources(),
    conda:
        "../../environment.yml"
    shell:
        "{params.midas} search --space {wildcards.space} --method {wildcards.method}"
        " --dataset {wildcards.dataset} --seed {wildcards.seed} --out {params.outdir}"
        " --device {params.device} --set threads={threads} {params.sets} > {log} 2>&1"
