"""Search spaces behind a registry: ``get_space("s1")``.

A space fixes the cell family (DARTS-like or NAS-Bench-201) and the candidate op list
of every edge, per cell type (RobustDARTS S1 differs per edge).
"""

from midas.spaces import darts as _darts  # noqa: F401  (registers darts, s1-s4)
from midas.spaces import nb201 as _nb201  # noqa: F401  (registers nb201)
from midas.spaces.base import SPACES, SearchSpace, get_space

__all__ = ["SPACES", "SearchSpace", "get_space"]
