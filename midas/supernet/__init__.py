"""Supernets: mixed edges weighted by static alpha (DARTS) or mosaic attention (MIDAS)."""

from midas.supernet.cells import WeightingConfig
from midas.supernet.networks import DartsSupernet, Nb201Supernet, Supernet, build_supernet

__all__ = ["WeightingConfig", "DartsSupernet", "Nb201Supernet", "Supernet", "build_supernet"]
