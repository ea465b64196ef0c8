# The paper's analyses of the search outputs (MIDAS.md section 5): discrimination, class-aware
# and unimodal weights, search trajectories, cell diagrams. Numbers under results/analysis/,
# figures under figures/ (PDF for papers, PNG for the report). Every analysis job reads all
# methods and seeds of one space/dataset, so the comparison comes from the same DAG.

include: "plots_common.smk"


rule analysis_discrimination:
    input:
        genotypes=analysis_search_files("genotype.json"),
        weights=analysis_search_files("weights.npz"),
    output:
        table=report(f"{ANALYSIS_DIR}/discrimination_{{dataset}}.csv", category="Discrimination",
                     subcategory="{dataset}", caption="../report/discrimination_table.rst"),
        edges=f"{ANALYSIS_DIR}/discrimination_{{dataset}}_edges.csv",
        pdf=f"{FIGURE_DIR}/discrimination_{{dataset}}.pdf",
        png=report(f"{FIGURE_DIR}/discrimination_{{dataset}}.png", category="Discrimination",
                   subcategory="{dataset}", caption="../report/discrimination.rst"),
    log:
        "results/logs/analysis/discrimination_{dataset}.log",
    params:
        midas=midas_command(),
        dirs=analysis_dirs,
        title=lambda wildcards: analysis_title(None, wildcards.dataset),
        budget=budget_note(),
        max_points=analysis_option("max_points"),
    conda:
        "../../environment.yml"
    shell:
        "{params.midas} analyze discrimination --runs {params.dirs} --table {output.table} --edges-table {output.edges}"
        " --figure {output.pdf} --max-points {params.max_points} --title {params.title:q} > {log} 2>&1"


rule analysis_class_aware:
    input:
        genotypes=analysis_search_files("genotype.json"),
        weights=analysis_search_files("weights.npz"),
    output:
        table=report(f"{ANALYSIS_DIR}/class_aware_{{space}}_{{dataset}}.csv", category="Class-aware weights",
                     subcategory="{space} / {dataset}", caption="../report/class_aware_table.rst"),
        eta=f"{ANALYSIS_DIR}/eta_squared_{{space}}_{{dataset}}.csv",
        pdf=f"{FIGURE_DIR}/class_aware_{{space}}_{{dataset}}.pdf",
        png=report(f"{FIGURE_DIR}/class_aware_{{space}}_{{dataset}}.png", category="Class-aware weights",
                   subcategory="{space} / {dataset}", caption="../report/class_aware.rst"),
        heat_pdf=f"{FIGURE_DIR}/class_means_{{space}}_{{dataset}}.pdf",
        heat_png=report(f"{FIGURE_DIR}/class_means_{{space}}_{{dataset}}.png", category="Class-aware weights",
                        subcategory="{space} / {dataset}", caption="../report/class_means.rst"),
    log:
        "results/logs/analysis/class_aware_{space}_{dataset}.log",
    params:
        midas=midas_command(),
        dirs=analysis_dirs,
        title=lambda wildcards: analysis_title(wildcards.space, wildcards.dataset),
        budget=budget_note(),
        folds=analysis_option("probe_folds"),
        max_samples=analysis_option("probe_max_samples"),
        patches="--patches" if analysis_option("probe_patches") else "",
        top=analysis_option("top_edges"),
    conda:
        "../../environment.yml"
    shell:
        "{params.midas} analyze class-aware --runs {params.dirs} --table {output.table} --eta-table {output.eta}"
        " --figure {output.pdf} --heatmap {output.heat_pdf} --folds {params.folds}"
        " --max-samples {params.max_samples} {params.patches} --top-edges {params.top}"
        " --title {params.title:q} > {log} 2>&1"


rule analysis_unimodal:
    input:
        genotypes=analysis_search_files("genotype.json"),
        weights=analysis_search_files("weights.npz"),
    output:
        table=report(f"{ANALYSIS_DIR}/unimodal_{{space}}_{{dataset}}.csv", category="Unimodality",
                     subcategory="{space} / {dataset}", caption="../report/unimodal_table.rst"),
        dists=f"{ANALYSIS_DIR}/unimodal_{{space}}_{{dataset}}_distributions.csv",
        pdf=f"{FIGURE_DIR}/unimodal_{{space}}_{{dataset}}.pdf",
        png=report(f"{FIGURE_DIR}/unimodal_{{space}}_{{dataset}}.png", category="Unimodality",
                   subcategory="{space} / {dataset}", caption="../report/unimodal.rst"),
    log:
        "results/logs/analysis/unimodal_{space}_{dataset}.log",
    params:
        midas=midas_command(),
        dirs=analysis_dirs,
        title=lambda wildcards: analysis_title(wildcards.space, wildcards.dataset),
        budget=budget_note(),
        alpha=analysis_option("alpha"),
    conda:
        "../../environment.yml"
    shell:
        "{params.midas} analyze unimodal --runs {params.dirs} --table {output.table} --dist-table {output.dists}"
        " --figure {output.pdf} --alpha {params.alpha} --title {params.title:q} > {log} 2>&1"


rule analysis_trajectories:
    input:
        genotypes=analysis_search_files("genotype.json"),
        logs=analysis_search_files("search_log.csv"),
    output:
        table=report(f"{ANALYSIS_DIR}/trajectories_{{space}}_{{dataset}}.csv", category="Search trajectories",
                     subcategory="{space} / {dataset}", caption="../report/trajectories_table.rst"),
        pdf=f"{FIGURE_DIR}/trajectories_{{space}}_{{dataset}}.pdf",
        png=report(f"{FIGURE_DIR}/trajectories_{{space}}_{{dataset}}.png", category="Search trajectories",
                   subcategory="{space} / {dataset}", caption="../report/trajectories.rst"),
        weights=[
            report(f, category="Search trajectories", subcategory="{space} / {dataset}",
                   caption="../report/weights.rst", labels={"figure": "global weights", "method": m})
            if f.endswith(".png") else f
            for m in config["methods"] for f in figure(f"weights_{{space}}_{{dataset}}_{m}")
        ],
    log:
        "results/logs/analysis/trajectories_{space}_{dataset}.log",
    params:
        midas=midas_command(),
        dirs=analysis_dirs,
        title=lambda wildcards: analysis_title(wildcards.space, wildcards.dataset),
        budget=budget_note(),
        pattern=lambda wildcards: f"{FIGURE_DIR}/weights_{wildcards.space}_{wildcards.dataset}_{{method}}.pdf",
        bench=trajectory_bench_flags,
    conda:
        "../../environment.yml"
    shell:
        "{params.midas} analyze trajectories --runs {params.dirs} --table {output.table} --figure {output.pdf}"
        " --weights-figure {params.pattern:q} {params.bench} --title {params.title:q} > {log} 2>&1"


rule analysis_cells:
    input:
        genotypes=analysis_search_files("genotype.json"),
    output:
        [
            report(f, category="Cell diagrams", subcategory="{space} / {dataset}",
                   caption="../report/cells.rst", labels={"method": m, "seed": str(seed)})
            if f.endswith(".png") else f
            for m in config["methods"] for seed in config["seeds"]
            for f in figure(f"cells/{{space}}_{{dataset}}_{m}_seed{seed}")
        ],
    log:
        "results/logs/analysis/cells_{space}_{dataset}.log",
    params:
        midas=midas_command(),
        figures=lambda wildcards, input: " ".join(
            f"{FIGURE_DIR}/cells/{wildcards.space}_{wildcards.dataset}_{Path(g).parent.parent.name}_"
            f"{Path(g).parent.name}.pdf" for g in input.genotypes),
        budget=budget_note(),
    conda:
        "../../environment.yml"
    shell:
        "{params.midas} analyze cell --genotype {input.genotypes} --figure {params.figures} > {log} 2>&1"
