"""Figure plumbing shared by every step that draws (matplotlib is imported only when drawing)."""

from __future__ import annotations


def figure_and_axes(ax, width: float, height: float):
    """``ax`` and its figure, or a new constrained-layout figure of ``width`` × ``height`` inches
    and its single axes when ``ax`` is None (no pyplot state: safe in threads and notebooks)."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot(1, 1, 1)
