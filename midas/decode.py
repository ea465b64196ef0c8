"""Decoding rules: from global weights abar (and pair weights) to a discrete genotype.

``abar[cell_type]`` is an (edges, ops) array; ``pair_bar[cell_type]`` a list with one
vector of mean pair weights per intermediate node (pairs in ``pair_index`` order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from midas.genotypes import DartsGenotype, Genotype, Nb201Arch
from midas.spaces import SearchSpace
from midas.supernet.mixing import pair_index

RULES = ("darts", "pairs", "nb201")


def default_rule(space: SearchSpace, topology: str) -> str:
    if space.family == "nb201":
        return "nb201"
    return "pairs" if topology == "pairs" else "darts"


def best_op(weights: np.ndarray, ops: Sequence[str], exclude_none: bool = True) -> int:
    w = np.asarray(weights, dtype=np.float64).copy()
    if exclude_none and "none" in ops:
        w[list(ops).index("none")] = -np.inf
    return int(np.argmax(w))


def edge_strength(weights: np.ndarray, ops: Sequence[str]) -> float:
    return float(weights[best_op(weights, ops)])


def _darts_cell(space: SearchSpace, cell_type: str, abar: np.ndarray) -> tuple[tuple[str, int], ...]:
    ops = space.ops(cell_type)
    gene: list[tuple[str, int]] = []
    for node in space.intermediate_nodes:
        incoming = space.incoming(node)
        ranked = sorted(incoming, key=lambda e: -edge_strength(abar[e], ops[e]))[:2]
        for e in ranked:
            gene.append((ops[e][best_op(abar[e], ops[e])], space.edges[e][0]))
    return tuple(gene)


def _pairs_cell(space: SearchSpace, cell_type: str, abar: np.ndarray,
                pair_bar: Sequence[np.ndarray]) -> tuple[tuple[str, int], ...]:
    ops = space.ops(cell_type)
    gene: list[tuple[str, int]] = []
    for node, beta in zip(space.intermediate_nodes, pair_bar):
        incoming = space.incoming(node)
        pairs = pair_index(len(incoming))
        if len(beta) != len(pairs):
            raise ValueError(f"node {node}: {len(beta)} pair weights for {len(pairs)} pairs")
        a, b = pairs[int(np.argmax(beta))]
        for e in (incoming[a], incoming[b]):
            gene.append((ops[e][best_op(abar[e], ops[e])], space.edges[e][0]))
    return tuple(gene)


def decode(space: SearchSpace, rule: str, abar: dict[str, np.ndarray],
           pair_bar: dict[str, Sequence[np.ndarray]] | None = None) -> Genotype:
    if rule not in RULES:
        raise ValueError(f"unknown decoding rule {rule!r}; choose one of {RULES}")
    if space.family == "nb201":
        if rule != "nb201":
            raise ValueError("NB201 genotypes are decoded with the 'nb201' rule (argmax per edge)")
        ops = space.ops("normal")
        w = abar["normal"]
        return Nb201Arch(tuple(ops[e][best_op(w[e], ops[e], exclude_none=False)] for e in range(space.num_edges)))
    if rule == "nb201":
        raise ValueError("the 'nb201' rule is for the nb201 space")
    cells = {}
    for ct in space.cell_types:
        if rule == "pairs":
            if not pair_bar or ct not in pair_bar:
                raise ValueError("the 'pairs' rule needs pair weights (search with midas.topology=pairs)")
            cells[ct] = _pairs_cell(space, ct, abar[ct], pair_bar[ct])
        else:
            cells[ct] = _darts_cell(space, ct, abar[ct])
    concat = space.intermediate_nodes
    return DartsGenotype(cells["normal"], concat, cells["reduce"], concat)
