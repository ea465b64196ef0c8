"""Discrete architectures: the DARTS genotype and the NAS-Bench-201 arch string.

Genotypes are stored as JSON (never as Python to eval). ``parse_genotype`` checks a
genotype against its search space, so a malformed file fails with a message that
names the offending entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from midas.errors import GenotypeError
from midas.spaces import SearchSpace, get_space


@dataclass(frozen=True)
class DartsGenotype:
    """DARTS form: for each intermediate node two (op, input node) pairs."""

    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "normal": [[op, i] for op, i in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, i] for op, i in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def cell(self, cell_type: str) -> tuple[tuple[str, int], ...]:
        return self.normal if cell_type == "normal" else self.reduce

    def concat(self, cell_type: str) -> tuple[int, ...]:
        return self.normal_concat if cell_type == "normal" else self.reduce_concat

    def __str__(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


@dataclass(frozen=True)
class Nb201Arch:
    """One op per NB201 edge, in the arch-string edge order."""

    ops: tuple[str, ...]

    def to_str(self) -> str:
        nodes, k = [], 0
        for dst in range(1, 4):
            parts = []
            for src in range(dst):
                parts.append(f"{self.ops[k]}~{src}")
                k += 1
            nodes.append("|" + "|".join(parts) + "|")
        return "+".join(nodes)

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.to_str()}

    def __str__(self) -> str:
        return self.to_str()


Genotype = DartsGenotype | Nb201Arch


def parse_nb201(arch: str, space: SearchSpace | None = None) -> Nb201Arch:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` strictly."""
    space = space or get_space("nb201")
    if not isinstance(arch, str):
        raise GenotypeError(f"NB201 arch must be a string, got {type(arch).__name__}")
    nodes = arch.strip().split("+")
    if len(nodes) != 3:
        raise GenotypeError(
            f"malformed NB201 arch string {arch!r}: expected 3 nodes separated by '+', "
            f"e.g. |nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
        )
    ops: list[str] = []
    for dst, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise GenotypeError(f"malformed NB201 arch string {arch!r}: node {dst} {node!r} must be '|...|'")
        items = node[1:-1].split("|")
        if len(items) != dst:
            raise GenotypeError(f"malformed NB201 arch string {arch!r}: node {dst} needs {dst} inputs, got {len(items)}")
        for src, item in enumerate(items):
            op, sep, idx = item.partition("~")
            if not sep or idx != str(src):
                raise GenotypeError(
                    f"malformed NB201 arch string {arch!r}: edge {item!r} of node {dst} must be 'op~{src}'"
                )
            edge = len(ops)
            if op not in space.normal_ops[edge]:
                raise GenotypeError(
                    f"unknown op {op!r} on NB201 edge {src}->{dst}; choose one of {list(space.normal_ops[edge])}"
                )
            ops.append(op)
    return Nb201Arch(tuple(ops))


def _parse_darts_cell(space: SearchSpace, cell_type: str, raw: Any) -> tuple[tuple[str, int], ...]:
    nodes = space.intermediate_nodes
    if not isinstance(raw, (list, tuple)) or len(raw) != 2 * len(nodes):
        raise GenotypeError(f"genotype {cell_type!r} must be a list of {2 * len(nodes)} [op, input] pairs")
    cell: list[tuple[str, int]] = []
    edge_ops = space.ops(cell_type)
    for k, item in enumerate(raw):
        node = nodes[k // 2]
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            raise GenotypeError(f"genotype {cell_type}[{k}] = {item!r} is not an [op, input] pair")
        op, src = item
        if not isinstance(src, int) or isinstance(src, bool) or not 0 <= src < node:
            raise GenotypeError(f"genotype {cell_type}[{k}]: input {src!r} of node {node} must be an int in 0..{node - 1}")
        edge = space.edges.index((src, node))
        if op not in edge_ops[edge]:
            raise GenotypeError(
                f"genotype {cell_type}[{k}]: op {op!r} is not a candidate on edge {src}->{node} "
                f"of space {space.name!r}; candidates: {list(edge_ops[edge])}"
            )
        cell.append((str(op), src))
    return tuple(cell)


def _parse_concat(raw: Any, space: SearchSpace, key: str) -> tuple[int, ...]:
    nodes = space.intermediate_nodes
    if raw is None:
        return nodes
    if not isinstance(raw, (list, tuple)) or not raw or any(n not in nodes for n in raw):
        raise GenotypeError(f"genotype {key} {raw!r} must list intermediate nodes from {list(nodes)}")
    return tuple(int(n) for n in raw)


def parse_genotype(raw: Any, space: SearchSpace | str) -> Genotype:
    """Build a genotype of ``space`` from its JSON form (dict, or arch string for NB201)."""
    space = get_space(space) if isinstance(space, str) else space
    if space.family == "nb201":
        if isinstance(raw, dict):
            if "arch" not in raw:
                raise GenotypeError("an NB201 genotype needs an 'arch' string")
            raw = raw["arch"]
        return parse_nb201(raw, space)
    if not isinstance(raw, dict):
        raise GenotypeError(f"a {space.name} genotype must be an object with 'normal' and 'reduce', got {raw!r}")
    missing = {"normal", "reduce"} - set(raw)
    if missing:
        raise GenotypeError(f"genotype is missing {sorted(missing)}")
    return DartsGenotype(
        normal=_parse_darts_cell(space, "normal", raw["normal"]),
        normal_concat=_parse_concat(raw.get("normal_concat"), space, "normal_concat"),
        reduce=_parse_darts_cell(space, "reduce", raw["reduce"]),
        reduce_concat=_parse_concat(raw.get("reduce_concat"), space, "reduce_concat"),
    )


def load_genotype_file(path: str | Path) -> tuple[SearchSpace, Genotype, dict[str, Any]]:
    """Read a ``genotype.json`` written by ``midas search`` (or by hand)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise GenotypeError(f"genotype file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise GenotypeError(f"genotype file {path} is not valid JSON: {exc}") from None
    if not isinstance(record, dict) or "space" not in record or "genotype" not in record:
        raise GenotypeError(f"genotype file {path} needs the keys 'space' and 'genotype'")
    space = get_space(record["space"])
    try:
        genotype = parse_genotype(record["genotype"], space)
    except GenotypeError as exc:
        raise GenotypeError(f"{path}: {exc}") from None
    return space, genotype, record


#: the genotype published with DARTS (second order), used by tests and examples
DARTS_V2 = DartsGenotype(
    normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
    normal_concat=(2, 3, 4, 5),
    reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
    reduce_concat=(2, 3, 4, 5),
)
