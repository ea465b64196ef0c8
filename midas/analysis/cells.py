"""Cell diagrams of decoded architectures (graphviz), as PDF and PNG.

DARTS-like genotypes: the normal and the reduction cell side by side; inputs
c_{k-2}, c_{k-1}, intermediate nodes 0..3, output c_{k} (the concatenation). NB201:
the single cell with nodes 0..3; `none` edges are left out (they cut the edge). Edge
colours are the op colours of every other figure.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from midas import io
from midas.analysis import style
from midas.errors import ResourceError
from midas.genotypes import DartsGenotype, Nb201Arch, load_genotype_file

CELL_TITLES = {"normal": "normal cell", "reduce": "reduction cell"}


def _digraph(title: str) -> Any:
    import graphviz

    g = graphviz.Digraph(format="pdf")
    g.attr(rankdir="LR", label=title, labelloc="t", fontname="Helvetica", fontsize="14")
    g.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="11",
           fillcolor="#F2F2F2", color="#666666", penwidth="1")
    g.attr("edge", fontname="Helvetica", fontsize="10", penwidth="1.6", arrowsize="0.7")
    return g


def _darts_cluster(g: Any, geno: DartsGenotype, ct: str) -> None:
    p = ct[0]
    with g.subgraph(name=f"cluster_{ct}") as c:
        c.attr(label=CELL_TITLES[ct], color="#BBBBBB", style="rounded")
        c.node(f"{p}0", "c_{k-2}", fillcolor="#D9E8F5")
        c.node(f"{p}1", "c_{k-1}", fillcolor="#D9E8F5")
        n_nodes = len(geno.cell(ct)) // 2
        for i in range(n_nodes):
            c.node(f"{p}{i + 2}", str(i))
        c.node(f"{p}out", "c_{k}", fillcolor="#FBE3C8")
        for k, (op, src) in enumerate(geno.cell(ct)):
            dst = k // 2 + 2
            colour = style.op_colour(op)
            c.edge(f"{p}{src}", f"{p}{dst}", label=op, color=colour, fontcolor=colour)
        for node in geno.concat(ct):
            c.edge(f"{p}{node}", f"{p}out", color="#999999", style="dashed", arrowsize="0.5", penwidth="1")


def darts_graph(geno: DartsGenotype, title: str) -> Any:
    g = _digraph(title)
    for ct in ("normal", "reduce"):
        _darts_cluster(g, geno, ct)
    return g


def nb201_graph(arch: Nb201Arch, title: str) -> Any:
    g = _digraph(title)
    for node in range(4):
        g.node(f"n{node}", "input" if node == 0 else ("output" if node == 3 else str(node)),
               fillcolor="#D9E8F5" if node == 0 else ("#FBE3C8" if node == 3 else "#F2F2F2"))
    k = 0
    for dst in range(1, 4):
        for src in range(dst):
            op = arch.ops[k]
            k += 1
            if op == "none":
                continue
            colour = style.op_colour(op)
            g.edge(f"n{src}", f"n{dst}", label=op, color=colour, fontcolor=colour)
    return g


def genotype_graph(genotype: DartsGenotype | Nb201Arch, title: str) -> Any:
    return nb201_graph(genotype, title) if isinstance(genotype, Nb201Arch) else darts_graph(genotype, title)


def render(graph: Any, target: str | Path) -> tuple[Path, Path]:
    """Write ``target`` as .pdf and .png (atomically); needs graphviz's ``dot`` program."""
    if shutil.which("dot") is None:
        raise ResourceError("graphviz's 'dot' program is not on PATH; install graphviz "
                            "(conda install graphviz, or apt install graphviz) to draw cell diagrams")
    paths = style.figure_paths(target)
    for path in paths:
        fmt = path.suffix[1:]
        if fmt == "png":
            graph = graph.copy()
            graph.attr(dpi="150")
        data = graph.pipe(format=fmt)
        with io.atomic_open(path, "wb") as fh:
            fh.write(data)
    return paths


def draw_genotype_file(genotype_json: str | Path, target: str | Path, title: str | None = None) -> tuple[Path, Path]:
    """Draw the genotype of a search (or any genotype.json) to ``target``.pdf/.png."""
    space, genotype, record = load_genotype_file(genotype_json)
    if title is None:
        bits = [record.get("method"), space.name, record.get("dataset"),
                f"seed {record['seed']}" if "seed" in record else None]
        title = " / ".join(str(b) for b in bits if b is not None)
    return render(genotype_graph(genotype, title), target)
