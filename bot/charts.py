"""Charts as PNG bytes (matplotlib, Agg): a member's monthly trend and the branch's score distribution.

No Telegram, no database, no clock: the callers pass the figures and every text (from the catalogs).
Chinese renders with the Noto Sans SC font that the ``pylopdf-fonts-zh-cn`` package ships (a project
dependency), registered with matplotlib's font manager at first use: no system font and no network.

Points are ``Decimal``s everywhere in the bot; only here, at the drawing boundary, a figure becomes a
position on the canvas (``_position``): what is *written* on a chart (values, band thresholds) is
formatted from the ``Decimal`` itself.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Sequence
from decimal import ROUND_FLOOR, Decimal
from functools import cache
from typing import Any

from matplotlib import font_manager, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.i18n import format_points

FALLBACK_FAMILY = "DejaVu Sans"  # matplotlib's own font: digits and Latin if a glyph were ever missing
BAND_COLOURS = ("#2e7d32", "#1565c0", "#f9a825", "#ef6c00", "#c62828", "#6a1b9a")
BAR_COLOUR = "#c62828"  # party red
LINE_COLOUR = "#c62828"
DPI = 120
# matplotlib's rcParams (which rc_context sets) are process-wide and not thread-safe: charts are drawn in
# worker threads (asyncio.to_thread) and the warm-up in another, so one chart is drawn at a time.
_DRAWING = threading.Lock()


@cache
def font_family() -> str:
    """Register the packaged Simplified-Chinese font once; its family name."""
    from pylopdf_fonts_zh_cn import sans_path

    path = str(sans_path())
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def warm_up() -> None:
    """Draw one small chart and throw it away: registers the font and loads matplotlib's glyph caches, which
    the first chart of a process otherwise pays for (≈ 0.2–0.3 s) while a secretary waits on /grade. The bot
    runs it off the event loop once it has started."""
    distribution_png("积分 0–9 Score", [Decimal(0), Decimal(50), Decimal(100)], [("合格 Pass", Decimal(60))],
                     xlabel="年度积分", ylabel="人数")


def _style() -> dict[str, Any]:
    return {
        "font.family": [font_family(), FALLBACK_FAMILY],
        "axes.unicode_minus": False,  # the CJK font's hyphen-minus, not U+2212
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def _position(value: Decimal) -> float:
    """Where a figure sits on the canvas: the one place a point becomes a binary float (pixels, not points)."""
    return float(value)


def band_lines(bands: Iterable[Any], lang: str = "zh") -> list[tuple[str, Decimal]]:
    """(label, threshold) for each band with a minimum: from ``(label, min)`` pairs or rulebook ``Band``s."""
    lines: list[tuple[str, Decimal]] = []
    for band in bands:
        if isinstance(band, tuple):
            label, minimum = band
        else:
            minimum = getattr(band, "min", None)
            label = band.label.get(lang) if hasattr(band.label, "get") else str(band.label)
        if minimum is not None:
            lines.append((str(label), Decimal(minimum)))
    return sorted(lines, key=lambda line: line[1], reverse=True)


# The distribution's margins, fixed: everything it writes outside the axes (title, axis labels, tick labels)
# has a known size, and working them out (``tight_layout``) measured every text twice — ~45 % of drawing
# the chart, which a secretary waits for on each /grade. The trend chart writes band labels of any length
# beside its axes and keeps ``tight_layout``.
DISTRIBUTION_MARGINS = {"left": 0.08, "right": 0.97, "top": 0.9, "bottom": 0.12}
# zlib level 1 instead of Pillow's 6: a few KB more per chart, a fifth of the encoding time.
PNG_OPTIONS = {"compress_level": 1}


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, pil_kwargs=PNG_OPTIONS)
    return buffer.getvalue()


def _draw_bands(axes: Any, lines: Sequence[tuple[str, Decimal]], *, vertical: bool) -> None:
    for index, (label, minimum) in enumerate(lines):
        colour = BAND_COLOURS[index % len(BAND_COLOURS)]
        text = f"{label} ≥ {format_points(minimum)}"
        if vertical:
            axes.axvline(_position(minimum), color=colour, linestyle="--", linewidth=1.2)
            axes.text(_position(minimum), 1.0, " " + text, color=colour, fontsize=8, rotation=90,
                      transform=axes.get_xaxis_transform(), ha="right", va="top")
        else:
            axes.axhline(_position(minimum), color=colour, linestyle="--", linewidth=1.2)
            axes.text(1.0, _position(minimum), " " + text, color=colour, fontsize=8,
                      transform=axes.get_yaxis_transform(), ha="left", va="center")


def member_trend_png(name: str, months: Sequence[tuple[str, Decimal]], bands: Iterable[Any] = (), *,
                     title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                     lang: str = "zh") -> bytes:
    """A member's score month by month (a line with the values written on it) and the band thresholds.

    ``months``: (label, score) in order, e.g. ("1月", Decimal("95")). ``bands``: (label, min) pairs or
    rulebook bands. ``title`` defaults to ``name``.
    """
    lines = band_lines(bands, lang)
    values = [v for _, v in months]
    top = max([Decimal(100), *values, *(m for _, m in lines)]) * Decimal("1.1")
    with _DRAWING, rc_context(_style()):
        figure = Figure(figsize=(8, 4.5))
        axes = figure.add_subplot()
        xs = list(range(len(months)))
        axes.plot(xs, [_position(v) for v in values], color=LINE_COLOUR, marker="o", linewidth=2)
        for x, value in zip(xs, values):
            axes.annotate(format_points(value), (x, _position(value)), textcoords="offset points", xytext=(0, 7),
                          ha="center", fontsize=9)
        _draw_bands(axes, lines, vertical=False)
        axes.set_xticks(xs, [label for label, _ in months])
        axes.set_ylim(0, _position(top))
        axes.set_xlim(-0.5, max(len(months) - 0.5, 0.5))
        axes.set_title(title or name)
        if xlabel:
            axes.set_xlabel(xlabel)
        if ylabel:
            axes.set_ylabel(ylabel)
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        return _png(figure)


def distribution_png(title: str, figures: Sequence[Decimal], bands: Iterable[Any] = (), *,
                     xlabel: str | None = None, ylabel: str | None = None, width: Decimal = Decimal(5),
                     lang: str = "zh") -> bytes:
    """The branch's year figures as a histogram (bins of ``width`` points, counts written on the bars)
    with the band thresholds as vertical lines."""
    with _DRAWING, rc_context(_style()):
        return _png(distribution_figure(title, figures, bands, xlabel=xlabel, ylabel=ylabel, width=width, lang=lang))


def distribution_figure(title: str, figures: Sequence[Decimal], bands: Iterable[Any] = (), *,
                        xlabel: str | None = None, ylabel: str | None = None, width: Decimal = Decimal(5),
                        lang: str = "zh") -> Figure:
    """``distribution_png``'s figure, not yet drawn (the tests check nothing falls outside it)."""
    lines = band_lines(bands, lang)
    highest = max([Decimal(100), *figures, *(m for _, m in lines)])
    lowest = min([Decimal(0), *figures])
    start = (lowest / width).to_integral_value(rounding=ROUND_FLOOR) * width
    edges = [start]
    while edges[-1] <= highest:
        edges.append(edges[-1] + width)
    counts = [0] * (len(edges) - 1)
    for figure_value in figures:  # a figure on an edge falls in the bin that starts there
        for index in range(len(counts)):
            if edges[index] <= figure_value < edges[index + 1]:
                counts[index] += 1
                break
    with rc_context(_style()):
        figure = Figure(figsize=(8, 4.5))
        axes = figure.add_subplot()
        lefts = [_position(e) for e in edges[:-1]]
        bars = axes.bar(lefts, counts, width=_position(width), align="edge", color=BAR_COLOUR, alpha=0.8,
                        edgecolor="white")
        for bar, count in zip(bars, counts):
            if count:
                axes.annotate(str(count), (bar.get_x() + bar.get_width() / 2, count), textcoords="offset points",
                              xytext=(0, 3), ha="center", fontsize=9)
        _draw_bands(axes, lines, vertical=True)
        axes.set_xlim(_position(edges[0]), _position(edges[-1]))
        axes.set_ylim(0, max(counts + [1]) * 1.8)  # room above the bars for the band labels
        axes.yaxis.get_major_locator().set_params(integer=True)
        axes.set_title(title)
        if xlabel:
            axes.set_xlabel(xlabel)
        if ylabel:
            axes.set_ylabel(ylabel)
        axes.grid(axis="y", alpha=0.3)
        figure.subplots_adjust(**DISTRIBUTION_MARGINS)
        return figure
