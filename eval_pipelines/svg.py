"""Small, dependency-free SVG plots for the HTML report.

Why our own: a report must open offline and stay under 2 MB whatever the data size. A JS
plotting library inlined in every report costs 1-4 MB before the first point (Plotly's bundle
alone is above the bound) and adds a dependency; SVG written from aggregates is a few KB per
plot, renders in every browser without a script, prints, and scales with the page.

A :class:`Plot` has two axes (numeric, or categorical for one label per row) and draws layers
in data coordinates: lines and points (ROC, PR, reliability, metric@k curves), bands (an
interval around a line), intervals (one ``[low, high]`` with a centre per row: a forest
plot), bars (histograms) and reference lines. :meth:`Plot.render` returns the ``<svg>`` text,
sized by its ``viewBox`` so it shrinks with the page.
"""

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#ca8a04", "#db2777")
# Okabe & Ito's colour-blind-safe palette (Okabe, Ito 2008, "Color Universal Design"): blue,
# vermillion, bluish green, reddish purple, orange, sky blue, yellow; distinct under the
# common colour-vision deficiencies, for lines that must tell versions apart.
SAFE_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (1, 2, 2.5 or 5 times a power of ten) covering
    ``[low, high]``; one tick when the range is empty."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    if high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def _fmt(value: float) -> str:
    return f"{value:.6g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.2e}"


def _coord(value: float) -> str:
    return f"{value:.1f}"


@dataclass
class Axis:
    """A numeric axis over ``[low, high]`` (padded when equal), or a categorical axis with one
    slot per category (``categories``), first category at the top of a vertical axis."""

    label: str = ""
    low: float = 0.0
    high: float = 1.0
    categories: Sequence[str] | None = None
    tick_count: int = 5

    def __post_init__(self) -> None:
        if self.categories is None and self.high <= self.low:
            pad = abs(self.low) * 0.1 or 1.0
            self.low, self.high = self.low - pad, self.high + pad

    @classmethod
    def covering(cls, values: Sequence[float], label: str = "", pad: float = 0.05, **kwargs):
        """A numeric axis over the finite ``values``, padded by ``pad`` of their range."""
        finite = [float(v) for v in values if v is not None and math.isfinite(v)]
        if not finite:
            return cls(label, 0.0, 1.0, **kwargs)
        low, high = min(finite), max(finite)
        margin = (high - low) * pad
        return cls(label, low - margin, high + margin, **kwargs)

    def fraction(self, value: float | str) -> float:
        """Where ``value`` sits along the axis, 0 at ``low`` (or the first category) to 1."""
        if self.categories is not None:
            slots = max(len(self.categories), 1)
            if not isinstance(value, str):  # a position between slots: 0 is the first's centre
                return (float(value) + 0.5) / slots
            return (list(self.categories).index(value) + 0.5) / slots
        return (float(value) - self.low) / (self.high - self.low)

    def ticks(self) -> list[tuple[float, str]]:
        """(fraction, text) of each tick."""
        if self.categories is not None:
            return [(self.fraction(c), str(c)) for c in self.categories]
        return [
            (self.fraction(t), _fmt(t))
            for t in nice_ticks(self.low, self.high, self.tick_count)
            if self.low <= t <= self.high
        ]


# A legend row under the plot, and the width of one character of its 11px text (a generous
# average, so entries never run into each other).
LEGEND_ROW = 16
LEGEND_CHAR = 6.5


@dataclass
class Plot:
    """One chart: ``x`` and ``y`` axes and layers added in data coordinates."""

    x: Axis
    y: Axis
    title: str = ""
    width: int = 640
    height: int = 360
    margin_left: int = 64
    margin_right: int = 16
    margin_top: int = 28
    margin_bottom: int = 44
    # "below": under the x axis, outside the data, so it never hides a line or a bar (the
    # page grows by its rows); or a corner inside the plot where the lines are known to leave
    # room ("top-right", "bottom-right", "bottom-left": ROC, PR and reliability curves).
    legend: str = "below"
    _layers: list[str] = field(default_factory=list)
    _legend: list[tuple[str, str]] = field(default_factory=list)

    # -- geometry -------------------------------------------------------------------------
    def _px(self, value: float | str) -> float:
        inner = self.width - self.margin_left - self.margin_right
        return self.margin_left + self.x.fraction(value) * inner

    def _py(self, value: float | str) -> float:
        inner = self.height - self.margin_top - self.margin_bottom
        fraction = self.y.fraction(value)
        if self.y.categories is not None:  # first category on top
            return self.margin_top + fraction * inner
        return self.height - self.margin_bottom - fraction * inner

    def _color(self, color: str | None) -> str:
        return color or PALETTE[len(self._legend) % len(PALETTE)]

    def _keep(self, label: str | None, color: str) -> None:
        if label and label not in {name for name, _ in self._legend}:
            self._legend.append((label, color))

    # -- layers ---------------------------------------------------------------------------
    def line(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        label: str | None = None,
        color: str | None = None,
        dashed: bool = False,
    ) -> "Plot":
        """A polyline through the finite points, broken where a point is missing."""
        color = self._color(color)
        runs: list[list[str]] = [[]]
        for x, y in zip(xs, ys, strict=True):
            if _finite(x) and _finite(y):
                runs[-1].append(f"{_coord(self._px(x))},{_coord(self._py(y))}")
            elif runs[-1]:
                runs.append([])
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        for run in runs:
            if len(run) > 1:
                self._layers.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} '
                    f'points="{" ".join(run)}"/>'
                )
        self._keep(label, color)
        return self

    def points(
        self,
        xs: Sequence[float | str],
        ys: Sequence[float | str],
        label: str | None = None,
        color: str | None = None,
        colors: Sequence[str] | None = None,
        titles: Sequence[str] | None = None,
        radius: float = 3.5,
    ) -> "Plot":
        """Markers; ``colors`` per point overrides ``color``, ``titles`` are hover texts."""
        color = self._color(color)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            if not (_placed(x) and _placed(y)):
                continue
            fill = colors[i] if colors is not None else color
            tip = f"<title>{escape(titles[i])}</title>" if titles is not None else ""
            self._layers.append(
                f'<circle cx="{_coord(self._px(x))}" cy="{_coord(self._py(y))}" r="{radius}" '
                f'fill="{fill}">{tip}</circle>'
            )
        self._keep(label, color)
        return self

    def band(
        self,
        xs: Sequence[float],
        lows: Sequence[float],
        highs: Sequence[float],
        label: str | None = None,
        color: str | None = None,
        opacity: float = 0.18,
    ) -> "Plot":
        """A shaded area between ``lows`` and ``highs`` along ``xs`` (finite points only)."""
        color = self._color(color)
        kept = [
            (x, lo, hi)
            for x, lo, hi in zip(xs, lows, highs, strict=True)
            if _finite(x) and _finite(lo) and _finite(hi)
        ]
        if len(kept) > 1:
            upper = [f"{_coord(self._px(x))},{_coord(self._py(hi))}" for x, _, hi in kept]
            lower = [f"{_coord(self._px(x))},{_coord(self._py(lo))}" for x, lo, _ in kept]
            self._layers.append(
                f'<polygon fill="{color}" fill-opacity="{opacity}" stroke="none" '
                f'points="{" ".join(upper + lower[::-1])}"/>'
            )
        self._keep(label, color)
        return self

    def intervals(
        self,
        positions: Sequence[float | str],
        lows: Sequence[float],
        highs: Sequence[float],
        centers: Sequence[float] | None = None,
        horizontal: bool = True,
        colors: Sequence[str] | None = None,
        titles: Sequence[str] | None = None,
        color: str | None = None,
    ) -> "Plot":
        """One interval per position (a row of a forest plot when ``horizontal``: the
        position is on the y axis, the interval along x), with an optional centre marker."""
        color = self._color(color)
        for i, position in enumerate(positions):
            fill = colors[i] if colors is not None else color
            low, high = lows[i], highs[i]
            tip = f"<title>{escape(titles[i])}</title>" if titles is not None else ""
            if _finite(low) and _finite(high):
                if horizontal:
                    y = self._py(position)
                    x1, x2 = self._px(low), self._px(high)
                    seg = f'x1="{_coord(x1)}" y1="{_coord(y)}" x2="{_coord(x2)}" y2="{_coord(y)}"'
                else:
                    x = self._px(position)
                    y1, y2 = self._py(low), self._py(high)
                    seg = f'x1="{_coord(x)}" y1="{_coord(y1)}" x2="{_coord(x)}" y2="{_coord(y2)}"'
                self._layers.append(f'<line {seg} stroke="{fill}" stroke-width="2">{tip}</line>')
            if centers is not None and _finite(centers[i]):
                cx, cy = (
                    (self._px(centers[i]), self._py(position))
                    if horizontal
                    else (self._px(position), self._py(centers[i]))
                )
                self._layers.append(
                    f'<rect x="{_coord(cx - 3.5)}" y="{_coord(cy - 3.5)}" width="7" height="7" '
                    f'fill="{fill}">{tip}</rect>'
                )
        return self

    def bars(
        self,
        lefts: Sequence[float],
        rights: Sequence[float],
        heights: Sequence[float],
        label: str | None = None,
        color: str | None = None,
        opacity: float = 0.55,
    ) -> "Plot":
        """Vertical bars from 0 to ``heights`` over ``[left, right)`` (a histogram's bins)."""
        color = self._color(color)
        base = self._py(max(self.y.low, 0.0)) if self.y.categories is None else self._py(0)
        for left, right, height in zip(lefts, rights, heights, strict=True):
            if not (_finite(left) and _finite(right) and _finite(height)):
                continue
            x1, x2, top = self._px(left), self._px(right), self._py(height)
            self._layers.append(
                f'<rect x="{_coord(min(x1, x2))}" y="{_coord(min(top, base))}" '
                f'width="{_coord(abs(x2 - x1))}" height="{_coord(abs(base - top))}" '
                f'fill="{color}" fill-opacity="{opacity}"/>'
            )
        self._keep(label, color)
        return self

    def cells(
        self,
        xs: Sequence[str],
        ys: Sequence[str],
        shades: Sequence[float],
        texts: Sequence[str] | None = None,
        titles: Sequence[str] | None = None,
        color: str = "#0072B2",
    ) -> "Plot":
        """A heat table on two categorical axes: one ``<rect class="cell">`` per (x, y) slot,
        filled with ``color`` at opacity ``shade`` (0 to 1), with an optional text inside."""
        x_slot = (self.width - self.margin_left - self.margin_right) / max(
            len(self.x.categories or ()), 1
        )
        y_slot = (self.height - self.margin_top - self.margin_bottom) / max(
            len(self.y.categories or ()), 1
        )
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            cx, cy = self._px(x), self._py(y)
            shade = min(max(float(shades[i]), 0.0), 1.0) if _finite(shades[i]) else 0.0
            tip = f"<title>{escape(titles[i])}</title>" if titles is not None else ""
            self._layers.append(
                f'<rect class="cell" x="{_coord(cx - x_slot / 2)}" y="{_coord(cy - y_slot / 2)}" '
                f'width="{_coord(x_slot)}" height="{_coord(y_slot)}" fill="{color}" '
                f'fill-opacity="{shade:.3f}" stroke="#fff">{tip}</rect>'
            )
            if texts is not None and texts[i]:
                ink = "#fff" if shade > 0.55 else "#111827"
                self._layers.append(
                    f'<text x="{_coord(cx)}" y="{_coord(cy)}" text-anchor="middle" '
                    f'dominant-baseline="middle" font-size="11" fill="{ink}">'
                    f"{escape(texts[i])}</text>"
                )
        return self

    def reference(self, value: float, vertical: bool = True, color: str = "#6b7280") -> "Plot":
        """A dashed line at ``x = value`` (``vertical``) or ``y = value``."""
        if vertical:
            x = _coord(self._px(value))
            y1, y2 = self.margin_top, self.height - self.margin_bottom
            seg = f'x1="{x}" y1="{y1}" x2="{x}" y2="{y2}"'
        else:
            y = _coord(self._py(value))
            x1, x2 = self.margin_left, self.width - self.margin_right
            seg = f'x1="{x1}" y1="{y}" x2="{x2}" y2="{y}"'
        self._layers.append(f'<line {seg} stroke="{color}" stroke-dasharray="4 3"/>')
        return self

    # -- output ---------------------------------------------------------------------------
    def render(self, description: str = "") -> str:
        """The plot as one ``<svg>`` element (``role="img"``, titled for screen readers)."""
        left, top = self.margin_left, self.margin_top
        right, bottom = self.width - self.margin_right, self.height - self.margin_bottom
        below = self._legend_rows(left, right) if self.legend == "below" else []
        height = self.height + LEGEND_ROW * len(below)
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {height}" '
            f'class="plot" role="img" aria-label="{escape(self.title or description)}">',
            f"<title>{escape(self.title)}</title>" if self.title else "",
            f"<desc>{escape(description)}</desc>" if description else "",
            '<g class="grid" stroke="#e5e7eb">',
        ]
        axis_text = []
        for fraction, text in self.x.ticks():
            x = _coord(left + fraction * (right - left))
            if self.x.categories is None:
                parts.append(f'<line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/>')
            axis_text.append(
                f'<text x="{x}" y="{bottom + 16}" text-anchor="middle">{escape(text)}</text>'
            )
        for fraction, text in self.y.ticks():
            if self.y.categories is not None:
                y = _coord(top + fraction * (bottom - top))
            else:
                y = _coord(bottom - fraction * (bottom - top))
                parts.append(f'<line x1="{left}" y1="{y}" x2="{right}" y2="{y}"/>')
            axis_text.append(
                f'<text x="{left - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">'
                f"{escape(_shorten(text))}</text>"
            )
        parts.append("</g>")
        parts.append(
            f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" '
            'fill="none" stroke="#9ca3af"/>'
        )
        parts.extend(self._layers)
        parts.append(f'<g class="axis" font-size="11" fill="#374151">{"".join(axis_text)}')
        if self.x.label:
            parts.append(
                f'<text x="{_coord((left + right) / 2)}" y="{self.height - 6}" '
                f'text-anchor="middle">{escape(self.x.label)}</text>'
            )
        if self.y.label:
            parts.append(
                f'<text transform="translate(12 {_coord((top + bottom) / 2)}) rotate(-90)" '
                f'text-anchor="middle">{escape(self.y.label)}</text>'
            )
        if self.title:
            parts.append(
                f'<text x="{left}" y="{top - 10}" font-size="13" font-weight="600">'
                f"{escape(self.title)}</text>"
            )
        placed: list[tuple[float, float, str, str]] = []
        for row, items in enumerate(below):
            y = self.height + LEGEND_ROW * row + 6
            placed += [(x, y, name, color) for x, name, color in items]
        for i, (name, color) in enumerate(self._legend if not below else []):
            x = left + 10 if self.legend.endswith("left") else right - 150
            if self.legend.startswith("bottom"):
                y = bottom - 10 - 16 * (len(self._legend) - 1 - i)
            else:
                y = top + 14 + 16 * i
            placed.append((x, y, name, color))
        for x, y, name, color in placed:
            parts.append(
                f'<rect x="{_coord(x)}" y="{_coord(y - 8)}" width="10" height="10" '
                f'fill="{color}"/><text x="{_coord(x + 14)}" y="{_coord(y)}" '
                f'dominant-baseline="middle">{escape(name)}</text>'
            )
        parts.append("</g></svg>")
        return "".join(parts)

    def _legend_rows(self, left: float, right: float) -> list[list[tuple[float, str, str]]]:
        """The legend's entries laid out left to right from the plot's left edge, wrapped
        at its right edge: ``[(x, name, color), ...]`` per row."""
        rows: list[list[tuple[float, str, str]]] = []
        x = right + 1.0  # start a row on the first entry
        for name, color in self._legend:
            width = 14 + LEGEND_CHAR * len(name) + 16
            if x + width > right and (not rows or rows[-1]):
                rows.append([])
                x = left
            rows[-1].append((x, name, color))
            x += width
        return rows


def _finite(value: object) -> bool:
    return isinstance(value, numbers.Real) and math.isfinite(value)


def _placed(value: object) -> bool:
    return isinstance(value, str) or _finite(value)


def _shorten(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
