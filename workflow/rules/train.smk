# Retraining of a searched cell from scratch (DARTS-like spaces, and NB201 when no
# benchmark table is configured); resumes from checkpoint.pt like the search.


rule train:
    input:
        genotype=search_path("genotype.json"),
    output:
        metrics=train_path("metrics.json"),
        log_csv=train_path("train_log.csv"),
    log:
        log_path("train"),
    benchmark:
        bench_path("train")
    params:
        midas=lambda wildcards, resources: midas_command(resources),
        outdir=lambda wildcards, output: Path(output.metrics).parent,
        sets=lambda wildcards: midas_sets("train", wildcards.dataset),
        device=lambda wildcards, resources: device(resources),
    threads: config.get("threads", 1)
    resources:
        gpu=gpu_resources(),
    conda:
        "../../environment.yml"
    shell:
        "{params.midas} train --genotype {input.genotype} --dataset {wildcards.dataset}"
        " --seed {wildcards.seed} --out {params.outdir} --device {params.device} --set threads={threads} {params.sets} > {log} 2>&1"
