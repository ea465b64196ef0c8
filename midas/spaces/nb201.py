"""NAS-Bench-201: 4 nodes, 6 edges, 5 ops, 15,625 cells."""

from __future__ import annotations

from midas.spaces.base import SPACES, SearchSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NODES = 4
#: edge order of the arch string |op~0|+|op~0|op~1|+|op~0|op~1|op~2|
EDGES = tuple((src, dst) for dst in range(1, NODES) for src in range(dst))

SPACES.add("nb201", SearchSpace(
    "nb201", "nb201", EDGES, tuple(NB201_OPS for _ in EDGES), (), "NAS-Bench-201 cell space",
))
