"""Genotypes: JSON round trips, NB201 strings against the nas-bench-201 parser, clear errors."""

from __future__ import annotations

import csv
import itertools
import json
import random
from pathlib import Path

import pytest
from conftest import SHARED_DATA
from nas_201_api import NASBench201API

from midas.errors import GenotypeError, MidasError
from midas.genotypes import (
    DARTS_V2,
    DartsGenotype,
    Nb201Arch,
    load_genotype_file,
    parse_genotype,
    parse_nb201,
)
from midas.spaces import get_space

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EXAMPLE = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"


def _our_lists(arch: Nb201Arch) -> list[tuple[tuple[str, int], ...]]:
    """Our arch in str2lists's structure: per node, (op, input) in input order."""
    edges = get_space("nb201").edges
    nodes: list[list[tuple[str, int]]] = [[], [], []]
    for op, (src, dst) in zip(arch.ops, edges):
        nodes[dst - 1].append((op, src))
    return [tuple(n) for n in nodes]


def _random_darts_genotype(space_name: str, rng: random.Random) -> dict:
    space = get_space(space_name)
    raw: dict = {}
    for ct in space.cell_types:
        cell = []
        for node in space.intermediate_nodes:
            for src in sorted(rng.sample(range(node), 2)):
                ops = space.ops(ct)[space.edges.index((src, node))]
                cell.append([rng.choice([o for o in ops if o != "none"]), src])
        raw[ct] = cell
        raw[f"{ct}_concat"] = [2, 3, 4, 5]
    return raw


# --------------------------------------------------------------------------- DARTS form

def test_darts_v2_json_round_trip() -> None:
    text = json.dumps(DARTS_V2.to_dict())
    back = parse_genotype(json.loads(text), "darts")
    assert back == DARTS_V2
    assert json.loads(str(DARTS_V2)) == DARTS_V2.to_dict()
    assert DARTS_V2.cell("reduce")[0] == ("max_pool_3x3", 0)
    assert DARTS_V2.concat("normal") == (2, 3, 4, 5)


@pytest.mark.parametrize("space", ["darts", "s1", "s2", "s3", "s4"])
def test_random_genotypes_round_trip(space: str) -> None:
    rng = random.Random(space)
    for _ in range(20):
        raw = _random_darts_genotype(space, rng)
        geno = parse_genotype(raw, space)
        assert isinstance(geno, DartsGenotype)
        assert geno.to_dict() == raw
        assert parse_genotype(json.loads(json.dumps(geno.to_dict())), get_space(space)) == geno


def test_concat_defaults_to_all_intermediate_nodes() -> None:
    raw = DARTS_V2.to_dict()
    del raw["normal_concat"], raw["reduce_concat"]
    geno = parse_genotype(raw, "darts")
    assert geno.normal_concat == geno.reduce_concat == (2, 3, 4, 5)


def _bad(space: str, mutate) -> str:
    raw = json.loads(json.dumps(DARTS_V2.to_dict())) if space == "darts" else _random_darts_genotype(
        space, random.Random(0))
    mutate(raw)
    with pytest.raises(GenotypeError) as err:
        parse_genotype(raw, space)
    return str(err.value)


def test_wrong_node_count() -> None:
    msg = _bad("darts", lambda g: g["normal"].pop())
    assert "normal" in msg and "8" in msg


def test_unknown_op() -> None:
    def mutate(g: dict) -> None:
        g["reduce"][3] = ["conv_9x9", 1]
    msg = _bad("darts", mutate)
    assert "'conv_9x9'" in msg and "reduce[3]" in msg


@pytest.mark.parametrize("src", [2, -1, 1.0, True, "0"])
def test_bad_input_index(src: object) -> None:
    def mutate(g: dict) -> None:
        g["normal"][0] = ["sep_conv_3x3", src]  # entry 0 belongs to node 2: inputs 0 or 1
    msg = _bad("darts", mutate)
    assert "node 2" in msg and "normal[0]" in msg


def test_op_not_in_the_s1_edge_list() -> None:
    s1 = get_space("s1")
    assert "sep_conv_3x3" not in s1.ops("normal")[0]  # edge 0 -> 2 is [skip_connect, dil_conv_3x3]

    def mutate(g: dict) -> None:
        g["normal"][0] = ["sep_conv_3x3", 0]
        g["normal"][1] = ["skip_connect", 1]
    msg = _bad("s1", mutate)
    assert "'sep_conv_3x3'" in msg and "0->2" in msg and "dil_conv_3x3" in msg and "'s1'" in msg
    # the same op is fine on an edge that lists it (normal edge 3 is 1 -> 3: [skip, sep3])
    raw = _random_darts_genotype("s1", random.Random(1))
    raw["normal"][2:4] = [["skip_connect", 0], ["sep_conv_3x3", 1]]
    assert parse_genotype(raw, "s1").normal[3] == ("sep_conv_3x3", 1)


def test_noise_only_in_s4_and_none_never_outside_its_spaces() -> None:
    def mutate(g: dict) -> None:
        g["normal"][0] = ["noise", 0]
    assert "'noise'" in _bad("darts", mutate)
    parse_genotype({"normal": [["noise", 0], ["noise", 1]] * 4, "reduce": [["sep_conv_3x3", 0]] * 8}, "s4")


@pytest.mark.parametrize("raw,needle", [
    ({"normal": DARTS_V2.to_dict()["normal"]}, "missing"),
    ("|nor_conv_3x3~0|", "object"),
    ({"normal": [["sep_conv_3x3", 0, 1]] * 8, "reduce": DARTS_V2.to_dict()["reduce"]}, "[op, input]"),
    ({**DARTS_V2.to_dict(), "normal_concat": [1, 2]}, "normal_concat"),
])
def test_malformed_darts_genotypes(raw: object, needle: str) -> None:
    with pytest.raises(GenotypeError, match=None) as err:
        parse_genotype(raw, "darts")
    assert needle in str(err.value)


def test_unknown_space() -> None:
    with pytest.raises(MidasError, match="'s9'"):
        parse_genotype(DARTS_V2.to_dict(), "s9")


# --------------------------------------------------------------------------- NB201

def test_nb201_example_through_the_official_parser() -> None:
    arch = parse_nb201(EXAMPLE)
    assert arch.ops == ("nor_conv_3x3", "none", "skip_connect", "skip_connect", "none", "nor_conv_1x1")
    assert arch.to_str() == EXAMPLE == str(arch)
    assert _our_lists(arch) == NASBench201API.str2lists(EXAMPLE)


def test_all_nb201_cells_round_trip_through_str2lists() -> None:
    """All 5^6 cells: our string parses with the API, and its structure equals ours."""
    for ops in itertools.product(NB201_OPS, repeat=6):
        arch = Nb201Arch(ops)
        text = arch.to_str()
        assert NASBench201API.str2lists(text) == _our_lists(arch)
        assert parse_nb201(text) == arch


def test_benchmark_table_strings_parse() -> None:
    """Every arch string of the NATS-Bench table: what str2lists reads, ours reads identically."""
    table = SHARED_DATA / "nasbench201" / "nats_bench.csv"
    if not table.exists():
        pytest.skip(f"benchmark table not found at {table}")
    with table.open() as fh:
        strings = [row["ArchitectureString"] for row in csv.DictReader(fh)]
    assert len(set(strings)) == 15625
    for text in strings:
        arch = parse_nb201(text)
        assert _our_lists(arch) == NASBench201API.str2lists(text)
        assert arch.to_str() == text


def test_nb201_json_forms() -> None:
    arch = parse_nb201(EXAMPLE)
    assert parse_genotype(EXAMPLE, "nb201") == arch
    assert parse_genotype(arch.to_dict(), "nb201") == arch
    assert parse_genotype(json.loads(json.dumps(arch.to_dict())), get_space("nb201")) == arch
    with pytest.raises(GenotypeError, match="arch"):
        parse_genotype({"ops": list(arch.ops)}, "nb201")


@pytest.mark.parametrize("text,needle", [
    ("|nor_conv_3x3~0|+|none~0|skip_connect~1|", "3 nodes"),
    ("|nor_conv_3x3~0|+|none~0|+|skip_connect~0|none~1|nor_conv_1x1~2|", "needs 2 inputs"),
    ("|conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|", "'conv_3x3'"),
    ("|sep_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|", "'sep_conv_3x3'"),
    ("|nor_conv_3x3~1|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|", "op~0"),
    ("|nor_conv_3x3~0|+|none~0|skip_connect~2|+|skip_connect~0|none~1|nor_conv_1x1~2|", "op~1"),
    ("|nor_conv_3x3|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|", "op~0"),
    ("nor_conv_3x3~0+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|", "'|...|'"),
    ("", "3 nodes"),
])
def test_malformed_nb201_strings(text: str, needle: str) -> None:
    with pytest.raises(GenotypeError) as err:
        parse_nb201(text)
    assert needle in str(err.value)


def test_nb201_non_string() -> None:
    with pytest.raises(GenotypeError, match="string"):
        parse_nb201(["nor_conv_3x3"])  # type: ignore[arg-type]


def test_fuzzed_strings_ours_never_disagrees_with_str2lists() -> None:
    """Random edits of valid strings: when ours accepts one, the API reads the same cell."""
    rng = random.Random(0)
    alphabet = "|+~0123_abcdenoprstvx"
    accepted = 0
    for _ in range(3000):
        s = list(Nb201Arch(tuple(rng.choice(NB201_OPS) for _ in range(6))).to_str())
        for _ in range(rng.randint(0, 2)):
            i = rng.randrange(len(s))
            op = rng.random()
            if op < 0.4:
                s[i] = rng.choice(alphabet)
            elif op < 0.7:
                del s[i]
            else:
                s.insert(i, rng.choice(alphabet))
        text = "".join(s)
        try:
            arch = parse_nb201(text)
        except GenotypeError:
            continue
        accepted += 1
        assert NASBench201API.str2lists(text) == _our_lists(arch), text
    assert accepted > 100  # unmodified and harmless edits are accepted


# --------------------------------------------------------------------------- files

def test_load_genotype_file(tmp_path: Path) -> None:
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps({"space": "darts", "genotype": DARTS_V2.to_dict(), "seed": 3}))
    space, geno, record = load_genotype_file(path)
    assert space.name == "darts" and geno == DARTS_V2 and record["seed"] == 3
    path.write_text(json.dumps({"space": "nb201", "genotype": EXAMPLE}))
    assert load_genotype_file(path)[1] == parse_nb201(EXAMPLE)


def test_genotype_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(GenotypeError, match="does not exist") as err:
        load_genotype_file(missing)
    assert str(missing) in str(err.value)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenotypeError, match="not valid JSON"):
        load_genotype_file(bad)
    bad.write_text(json.dumps({"genotype": EXAMPLE}))
    with pytest.raises(GenotypeError, match="'space'"):
        load_genotype_file(bad)
    bad.write_text(json.dumps({"space": "nb201", "genotype": EXAMPLE.replace("none", "zero", 1)}))
    with pytest.raises(GenotypeError) as err:
        load_genotype_file(bad)
    assert str(bad) in str(err.value) and "'zero'" in str(err.value)
