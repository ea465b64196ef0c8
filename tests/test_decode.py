"""Decoding rules on hand-made global weights: DARTS rule, pairs rule, NB201 argmax, S1 lists."""

from __future__ import annotations

import numpy as np
import pytest

from midas.decode import decode, default_rule
from midas.genotypes import DartsGenotype, Nb201Arch, parse_genotype
from midas.spaces import get_space
from midas.supernet.mixing import pair_index

DARTS_OPS = get_space("darts").ops("normal")[0]


def _random_abar(space_name: str, seed: int) -> dict[str, np.ndarray]:
    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    out = {}
    for ct in space.cell_types:
        w = rng.dirichlet(np.ones(len(space.ops(ct)[0])), size=space.num_edges)
        out[ct] = w
    return out


def _reference_darts_rule(space_name: str, ct: str, w: np.ndarray) -> list[tuple[str, int]]:
    """DARTS's genotype parse written out independently (its model_search.py logic)."""
    space = get_space(space_name)
    ops = space.ops(ct)
    gene, start = [], 0
    for n in (2, 3, 4, 5):  # node n + 0 has n incoming edges
        real = {j: [k for k in range(w.shape[1]) if ops[start + j][k] != "none"] for j in range(n)}
        strength = {j: max(w[start + j][k] for k in real[j]) for j in range(n)}
        for j in sorted(range(n), key=lambda j: -strength[j])[:2]:
            k_best = max(real[j], key=lambda k: w[start + j][k])  # noqa: B023 (used right away)
            gene.append((ops[start + j][k_best], j))
        start += n
    return gene


def _onehot_abar(space_name: str, base: float = 0.01) -> dict[str, np.ndarray]:
    space = get_space(space_name)
    return {ct: np.full((space.num_edges, len(space.ops(ct)[0])), base) for ct in space.cell_types}


# --------------------------------------------------------------------------- DARTS rule

def test_darts_rule_hand_made() -> None:
    """Node 3 (edges 2, 3, 4 from inputs 0, 1, 2): edge 2 is dominated by `none`, so it loses."""
    abar = _onehot_abar("darts")
    n = abar["normal"]
    idx = {op: k for k, op in enumerate(DARTS_OPS)}
    n[0, idx["sep_conv_3x3"]] = 0.5          # node 2: 0 -> 2
    n[1, idx["skip_connect"]] = 0.4          #         1 -> 2
    n[2, idx["none"]] = 0.9                  # node 3: 0 -> 3 strongest weight is none ...
    n[2, idx["max_pool_3x3"]] = 0.05         #         ... its best real op is weak
    n[3, idx["sep_conv_5x5"]] = 0.3          #         1 -> 3
    n[4, idx["dil_conv_3x3"]] = 0.6          #         2 -> 3
    geno = decode(get_space("darts"), "darts", abar)
    assert isinstance(geno, DartsGenotype)
    assert geno.normal[0:2] == (("sep_conv_3x3", 0), ("skip_connect", 1))
    assert geno.normal[2:4] == (("dil_conv_3x3", 2), ("sep_conv_5x5", 1))  # strongest first
    assert geno.normal_concat == geno.reduce_concat == (2, 3, 4, 5)
    assert all(op != "none" for op, _ in geno.normal + geno.reduce)


def test_darts_rule_never_picks_none_even_when_it_dominates_everywhere() -> None:
    abar = _onehot_abar("darts")
    for ct in abar:
        abar[ct][:, DARTS_OPS.index("none")] = 0.9
        abar[ct][:, DARTS_OPS.index("avg_pool_3x3")] = 0.05
    geno = decode(get_space("darts"), "darts", abar)
    assert {op for op, _ in geno.normal + geno.reduce} == {"avg_pool_3x3"}


@pytest.mark.parametrize("space", ["darts", "s1", "s2", "s3", "s4"])
@pytest.mark.parametrize("seed", range(5))
def test_darts_rule_matches_reference_on_random_weights(space: str, seed: int) -> None:
    abar = _random_abar(space, seed)
    geno = decode(get_space(space), "darts", abar)
    for ct in ("normal", "reduce"):
        assert list(geno.cell(ct)) == _reference_darts_rule(space, ct, abar[ct])
    parse_genotype(geno.to_dict(), space)  # a valid genotype of its space


def test_darts_rule_two_distinct_inputs_per_node() -> None:
    geno = decode(get_space("darts"), "darts", _random_abar("darts", 7))
    for cell in (geno.normal, geno.reduce):
        for k in range(0, 8, 2):
            node = 2 + k // 2
            a, b = cell[k][1], cell[k + 1][1]
            assert a != b and 0 <= a < node and 0 <= b < node


# --------------------------------------------------------------------------- pairs rule

def _pair_bar(best: dict[int, tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    """Mean pair weights per node, the pair (a, b) of incoming positions in ``best`` winning."""
    rng = np.random.default_rng(seed)
    out = []
    for node in (2, 3, 4, 5):
        pairs = pair_index(node)
        beta = rng.dirichlet(np.ones(len(pairs))) * 0.5
        beta[pairs.index(best[node])] = 0.6
        out.append(beta / beta.sum())
    return out


def test_pairs_rule_picks_the_best_pair_even_against_edge_strength() -> None:
    space = get_space("darts")
    abar = _random_abar("darts", 3)
    best = {2: (0, 1), 3: (1, 2), 4: (0, 3), 5: (2, 4)}
    # make the edges outside the chosen pair the strongest: the DARTS rule would pick them
    for node, (a, b) in best.items():
        for pos, e in enumerate(space.incoming(node)):
            if pos not in (a, b):
                abar["normal"][e] = 0.01
                abar["normal"][e, DARTS_OPS.index("sep_conv_5x5")] = 0.9
    pair_bar = {"normal": _pair_bar(best, 1), "reduce": _pair_bar(best, 2)}
    geno = decode(space, "pairs", abar, pair_bar)
    for cell in (geno.normal, geno.reduce):
        for k, node in enumerate((2, 3, 4, 5)):
            inputs = [cell[2 * k][1], cell[2 * k + 1][1]]
            assert inputs == [space.edges[space.incoming(node)[p]][0] for p in best[node]]
            assert len(set(inputs)) == 2
    # op of each kept edge: largest abar excluding none
    e = space.incoming(3)[1]
    ops = [w for k, w in enumerate(abar["normal"][e]) if DARTS_OPS[k] != "none"]
    real = [o for o in DARTS_OPS if o != "none"]
    assert geno.normal[2][0] == real[int(np.argmax(ops))]
    assert geno != decode(space, "darts", abar)


@pytest.mark.parametrize("seed", range(5))
def test_pairs_rule_always_two_distinct_inputs_and_valid(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for name in ("darts", "s1", "s3"):
        space = get_space(name)
        abar = _random_abar(name, seed)
        pair_bar = {ct: [rng.dirichlet(np.ones(len(pair_index(n)))) for n in (2, 3, 4, 5)] for ct in abar}
        geno = decode(space, "pairs", abar, pair_bar)
        for ct in ("normal", "reduce"):
            cell = geno.cell(ct)
            for k, node in enumerate((2, 3, 4, 5)):
                a, b = cell[2 * k][1], cell[2 * k + 1][1]
                assert a != b and {a, b} <= set(range(node))
                winner = pair_index(node)[int(np.argmax(pair_bar[ct][k]))]
                assert (a, b) == winner  # input index == position among incoming edges here
        assert parse_genotype(geno.to_dict(), name) == geno


def test_pairs_rule_needs_pair_weights() -> None:
    with pytest.raises(ValueError, match="pair weights"):
        decode(get_space("darts"), "pairs", _random_abar("darts", 0))
    bad = {ct: [np.ones(2)] * 4 for ct in ("normal", "reduce")}
    with pytest.raises(ValueError, match="pair weights"):
        decode(get_space("darts"), "pairs", _random_abar("darts", 0), bad)


# --------------------------------------------------------------------------- NB201

def test_nb201_argmax_includes_none() -> None:
    space = get_space("nb201")
    ops = space.ops("normal")[0]
    w = np.full((6, 5), 0.1)
    choice = ["none", "nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1"]
    for e, op in enumerate(choice):
        w[e, ops.index(op)] = 0.6
    arch = decode(space, "nb201", {"normal": w})
    assert isinstance(arch, Nb201Arch)
    assert list(arch.ops) == choice
    assert arch.to_str() == "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"


def test_nb201_rule_only_for_nb201() -> None:
    with pytest.raises(ValueError):
        decode(get_space("nb201"), "darts", {"normal": np.ones((6, 5))})
    with pytest.raises(ValueError):
        decode(get_space("darts"), "nb201", _random_abar("darts", 0))
    with pytest.raises(ValueError, match="unknown decoding rule"):
        decode(get_space("darts"), "argmax", _random_abar("darts", 0))


# --------------------------------------------------------------------------- S1 / defaults

def test_s1_decoding_picks_from_each_edges_own_list() -> None:
    space = get_space("s1")
    # position 1 of every edge wins, except a few edges where position 0 does
    abar = {ct: np.tile([0.3, 0.7], (14, 1)) for ct in ("normal", "reduce")}
    abar["normal"][0] = [0.2, 0.8]     # [skip_connect, dil_conv_3x3] -> dil_conv_3x3
    abar["normal"][1] = [0.9, 0.1]     # [skip_connect, dil_conv_5x5] -> skip_connect
    abar["reduce"][0] = [0.8, 0.2]     # [max_pool_3x3, avg_pool_3x3] -> max_pool_3x3
    abar["reduce"][1] = [0.4, 0.6]     # [max_pool_3x3, dil_conv_3x3] -> dil_conv_3x3
    for rule, pairs in (("darts", None), ("pairs", {ct: [np.eye(len(pair_index(n)))[0] for n in (2, 3, 4, 5)]
                                                     for ct in ("normal", "reduce")})):
        geno = decode(space, rule, abar, pairs)
        assert geno.normal[0] == ("skip_connect", 1) or geno.normal[1] == ("skip_connect", 1)
        assert ("dil_conv_3x3", 0) in geno.normal[:2]
        assert set(geno.reduce[:2]) == {("max_pool_3x3", 0), ("dil_conv_3x3", 1)}
        for ct in ("normal", "reduce"):
            for k, (op, src) in enumerate(geno.cell(ct)):
                e = space.edges.index((src, 2 + k // 2))
                assert op in space.ops(ct)[e]
        parse_genotype(geno.to_dict(), "s1")


def test_default_rule() -> None:
    assert default_rule(get_space("nb201"), "darts") == "nb201"
    assert default_rule(get_space("darts"), "pairs") == "pairs"
    assert default_rule(get_space("s2"), "darts") == "darts"
