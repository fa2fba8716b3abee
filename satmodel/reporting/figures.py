"""The one style and palette of every report figure, and the helpers the section charts share.

Figures are :class:`matplotlib.figure.Figure` objects built without pyplot state, so calling a
plot function never draws anything by itself. Data strings on a figure go through
:func:`satmodel.reporting.labels.plot_label`.
"""

from __future__ import annotations

import numpy as np

from satmodel.calendar import month_abbr

MAIN_COLOR = "#3b6ea8"  # the series drawn
ALERT_COLOR = "#d1495b"  # the month reported, targets and limits
MUTED_COLOR = "#9aa5b1"  # what is not significant
INK_COLOR = "#333333"  # error bars and markers
GUIDE_COLOR = "#555555"  # reference lines (no effect, steady pace)
OTHER_COLOR = "#777777"  # a bar without a series colour
# Colours of a verdict (meets the target: yes, likely, no; "-" without a target).
VERDICT_COLORS = {"yes": "#2e8b57", "likely": "#e0a030", "no": ALERT_COLOR, "-": MAIN_COLOR}


def figure_description(figure) -> str:
    """What a figure shows, in words: its ``description`` attribute when set, else its
    suptitle and the titles of its panels (the HTML's alt text)."""
    explicit = getattr(figure, "description", None)
    if explicit:
        return str(explicit)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    suptitle = figure.get_suptitle()
    parts = [suptitle] if suptitle else []
    if titles:
        parts.append("; ".join(dict.fromkeys(titles)))
    text = ": ".join(parts) or "Chart without a title"
    return text.replace("\\$", "$")


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1):
    """A constrained-layout figure and its axes, as a flat array (row by row).

    The figure's text form (``repr``, the ``text/plain`` of its notebook output) is
    ``Figure: <what it shows>`` (:func:`figure_description`), which the HTML export turns
    into the image's alt text; set ``figure.description`` to say more than the titles.
    """
    from matplotlib.figure import Figure

    class ReportFigure(Figure):
        description: str | None = None

        def __repr__(self) -> str:
            return f"Figure: {figure_description(self)}"

    figure = ReportFigure(figsize=(width, height), dpi=100, layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False).ravel()
    return figure, axes


def error_extents(value, low, high) -> list[np.ndarray]:
    """Error-bar lengths below and above ``value`` for an interval ``[low, high]``.

    A percentile interval of parameter draws need not contain the point estimate when the
    draws are skewed (thin data); the bar then stops at the point (length 0), as does an
    unknown bound, instead of matplotlib refusing negative lengths.
    """
    value, low, high = (np.asarray(v, dtype=float) for v in (value, low, high))
    below, above = value - low, high - value
    return [np.nan_to_num(np.clip(e, 0.0, None), nan=0.0) for e in (below, above)]


def figure_style():
    """The style every figure is drawn in (a context manager)."""
    import seaborn as sns

    return sns.axes_style("whitegrid")


def palette(names: list) -> dict:
    """One colour per name (segments, models...), in order; colours repeat after ten."""
    import seaborn as sns

    return dict(zip(names, sns.color_palette("deep", n_colors=max(len(names), 1)), strict=False))


def month_axis(ax, months: list[str]) -> None:
    """Months as the x axis (``Oct`` over ``2026``), one tick per position."""
    ax.set_xticks(range(len(months)))
    ax.set_xticklabels([f"{month_abbr(m)}\n{m[:4]}" for m in months], fontsize=8)
    ax.set_xlim(-0.5, len(months) - 0.5)


def trend_panel(ax, values, months: list[str], month: str, title: str, unit: str) -> None:
    """A monthly trend line with the reported month highlighted."""
    ax.plot(range(len(months)), values, marker="o", color=MAIN_COLOR)
    if month in months:
        i = months.index(month)
        ax.plot([i], [values.iloc[i]], marker="o", markersize=10, color=ALERT_COLOR)
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(unit, fontsize=9)
    month_axis(ax, months)


def label_positions(ax, labels: list[str], axis: str = "y", fontsize: float | None = None):
    """Put ``labels`` at positions 0, 1, ... of an axis and return the positions.

    Positions rather than categorical values: two names cut to the same display label stay
    two bars.
    """
    positions = np.arange(len(labels))
    if axis == "y":
        ax.set_yticks(positions)
        ax.set_yticklabels(labels, fontsize=fontsize)
    else:
        ax.set_xticks(positions)
        ax.set_xticklabels(labels, fontsize=fontsize)
    return positions


def legend_below(
    figure, *axes, handles: list | None = None, title: str | None = None, ncols: int | None = None
):
    """One legend for the entries of ``axes`` (or for ``handles``), under the figure's panels:
    outside every axes, so it never covers data (needs the constrained layout of
    :func:`new_figure`)."""
    given = handles or []
    handles, labels = list(given), [h.get_label() for h in given]
    for ax in axes:
        entries = list(zip(*ax.get_legend_handles_labels(), strict=True))
        drawn = ax.get_legend()
        if drawn is not None:
            # seaborn's legends hold handles the axes does not list
            if not entries:
                entries = [
                    (h, t.get_text())
                    for h, t in zip(drawn.legend_handles, drawn.get_texts(), strict=True)
                ]
            drawn.remove()
        for handle, label in entries:
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    if not handles:
        return None
    return figure.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=ncols or min(len(handles), 5),
        title=title,
        fontsize=8,
        title_fontsize=8,
        frameon=False,
    )
