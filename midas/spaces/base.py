"""The search-space record and its registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from midas.ops import OPS
from midas.registry import Registry

Family = Literal["darts", "nb201"]


@dataclass(frozen=True)
class SearchSpace:
    """A cell search space.

    ``edges`` lists (source, target) node pairs in the canonical edge order: for the
    DARTS family nodes 0 and 1 are the cell inputs and 2..5 the intermediate nodes;
    for NB201 node 0 is the input and 3 the output.
    """

    name: str
    family: Family
    edges: tuple[tuple[int, int], ...]
    normal_ops: tuple[tuple[str, ...], ...]
    reduce_ops: tuple[tuple[str, ...], ...]
    description: str = ""

    def __post_init__(self) -> None:
        for cell, lists in (("normal", self.normal_ops), ("reduce", self.reduce_ops)):
            if lists and len(lists) != len(self.edges):
                raise ValueError(f"{self.name}: {len(lists)} {cell} op lists for {len(self.edges)} edges")
            for ops in lists:
                for op in ops:
                    OPS.get(op)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def has_reduction_cell(self) -> bool:
        return self.family == "darts"

    def ops(self, cell_type: str) -> tuple[tuple[str, ...], ...]:
        if cell_type == "normal":
            return self.normal_ops
        if cell_type == "reduce" and self.has_reduction_cell:
            return self.reduce_ops
        raise ValueError(f"space {self.name!r} has no {cell_type!r} cell")

    @property
    def cell_types(self) -> tuple[str, ...]:
        return ("normal", "reduce") if self.has_reduction_cell else ("normal",)

    @property
    def intermediate_nodes(self) -> tuple[int, ...]:
        return tuple(sorted({dst for _, dst in self.edges}))

    def incoming(self, node: int) -> list[int]:
        """Indices of the edges entering ``node``, in edge order."""
        return [e for e, (_, dst) in enumerate(self.edges) if dst == node]


SPACES: Registry[SearchSpace] = Registry("search space")


def get_space(name: str) -> SearchSpace:
    return SPACES.get(name)
