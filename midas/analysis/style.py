"""One figure style for every analysis: the project's matplotlib style file and fixed colours.

Colours are assigned by name, not by plotting order, so a method or an operation has
the same colour in every figure of a report (Okabe-Ito for methods, Paul Tol's
colour-blind-safe "muted" set for operations). Figures are built on
``matplotlib.figure.Figure`` directly (no pyplot), so no GUI backend or global figure
state is involved when many analysis jobs run in parallel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from matplotlib import style as mpl_style
from matplotlib.figure import Figure

from midas import io

STYLE_FILE = Path(__file__).with_name("midas.mplstyle")

#: Okabe-Ito colours per search method
METHOD_COLOURS = {"midas": "#0072B2", "midas-global": "#E69F00", "darts": "#009E73"}
#: display order of methods in every figure and table
METHOD_ORDER = ("midas", "midas-global", "darts")

#: Paul Tol "muted" (plus grey for `none`); distinct within each search space
OP_COLOURS = {
    "none": "#BBBBBB",
    "skip_connect": "#CC6677",
    "max_pool_3x3": "#332288",
    "avg_pool_3x3": "#88CCEE",
    "sep_conv_3x3": "#117733",
    "sep_conv_5x5": "#44AA99",
    "dil_conv_3x3": "#882255",
    "dil_conv_5x5": "#AA4499",
    "noise": "#DDCC77",
    "nor_conv_1x1": "#999933",
    "nor_conv_3x3": "#117733",
}
#: short op labels for crowded axes
OP_SHORT = {
    "none": "none", "skip_connect": "skip", "max_pool_3x3": "max3", "avg_pool_3x3": "avg3",
    "sep_conv_3x3": "sep3", "sep_conv_5x5": "sep5", "dil_conv_3x3": "dil3", "dil_conv_5x5": "dil5",
    "noise": "noise", "nor_conv_1x1": "conv1", "nor_conv_3x3": "conv3",
}
FALLBACK = "#555555"


def method_colour(method: str) -> str:
    return METHOD_COLOURS.get(method, FALLBACK)


def op_colour(op: str) -> str:
    return OP_COLOURS.get(op, FALLBACK)


def op_short(op: str) -> str:
    return OP_SHORT.get(op, op)


def method_sort_key(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


@contextlib.contextmanager
def styled() -> Iterator[None]:
    """Apply the project style while figures are built and saved."""
    with mpl_style.context(str(STYLE_FILE)):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure with constrained layout (sizes in inches; 7 in is a two-column paper width)."""
    return Figure(figsize=(width, height), layout="constrained")


def figure_paths(target: str | Path) -> tuple[Path, Path]:
    """``figures/x.pdf`` or ``figures/x`` -> (figures/x.pdf, figures/x.png)."""
    target = Path(target)
    stem = target.with_suffix("") if target.suffix.lower() in (".pdf", ".png") else target
    return stem.with_name(stem.name + ".pdf"), stem.with_name(stem.name + ".png")


def save_figure(fig: Figure, target: str | Path) -> tuple[Path, Path]:
    """Write the figure as PDF (vector, for papers) and PNG (for the report), atomically."""
    paths = figure_paths(target)
    for path in paths:
        with io.atomic_open(path, "wb") as fh:
            fig.savefig(fh, format=path.suffix[1:])
    return paths
