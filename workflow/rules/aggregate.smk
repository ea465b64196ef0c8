# The paper's tables from every run of the config: mean +- std over seeds, search cost
# from the search jobs' benchmark files, published numbers beside them.


rule aggregate:
    input:
        metrics=all_metrics(),
        benchmarks=all_search_benchmarks(),
        genotypes=all_genotypes(),
    output:
        [
            report(f, category="Tables", caption="../report/tables.rst")
            if f.endswith(".csv")
            else f
            for f in table_files()
        ],
    log:
        "results/logs/aggregate.log",
    params:
        midas=midas_command(),
        out=lambda wildcards, output: Path(output[0]).parent,
        budget=config["budget"],
    conda:
        "../../environment.yml"
    shell:
        "{params.midas} tables --metrics {input.metrics} --search-benchmarks {input.benchmarks}"
        " --genotypes {input.genotypes} --out {params.out} --budget {params.budget} > {log} 2>&1"
