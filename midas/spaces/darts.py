"""The DARTS space and the RobustDARTS spaces S1-S4 (same cell, restricted ops)."""

from __future__ import annotations

from midas.spaces.base import SPACES, SearchSpace

STEPS = 4
#: DARTS edge order: node 2 from (0, 1), node 3 from (0, 1, 2), ... -> 14 edges
EDGES = tuple((src, dst) for dst in range(2, 2 + STEPS) for src in range(dst))

DARTS_OPS = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)

_SK, _S3, _D3, _D5, _MP, _AP = (
    "skip_connect", "sep_conv_3x3", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3", "avg_pool_3x3",
)
S1_NORMAL = (
    (_SK, _D3), (_SK, _D5), (_SK, _D5), (_SK, _S3), (_SK, _D3), (_MP, _SK), (_SK, _S3),
    (_SK, _S3), (_SK, _D3), (_SK, _S3), (_MP, _SK), (_SK, _D3), (_D3, _D5), (_D3, _D5),
)
S1_REDUCE = (
    (_MP, _AP), (_MP, _D3), (_MP, _AP), (_MP, _AP), (_SK, _D5), (_MP, _AP), (_MP, _S3),
    (_SK, _D3), (_SK, _D5), (_MP, _AP), (_MP, _AP), (_SK, _D5), (_SK, _D5), (_SK, _D5),
)


def _uniform(ops: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(ops for _ in EDGES)


def _add(name: str, normal: tuple, reduce: tuple, description: str) -> None:
    SPACES.add(name, SearchSpace(name, "darts", EDGES, normal, reduce, description))


_add("darts", _uniform(DARTS_OPS), _uniform(DARTS_OPS), "DARTS: 8 ops on all 14 edges")
_add("s1", S1_NORMAL, S1_REDUCE, "RobustDARTS S1: two ops per edge, chosen per edge")
_add("s2", _uniform((_SK, _S3)), _uniform((_SK, _S3)), "RobustDARTS S2: skip_connect, sep_conv_3x3")
_add("s3", _uniform(("none", _SK, _S3)), _uniform(("none", _SK, _S3)), "RobustDARTS S3: none, skip, sep3")
_add("s4", _uniform(("noise", _S3)), _uniform(("noise", _S3)), "RobustDARTS S4: noise, sep_conv_3x3")
