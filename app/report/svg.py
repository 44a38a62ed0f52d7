"""Tiny inline-SVG charts: vertical bars (stacked or grouped), horizontal stacked bars and lines.

Pure functions from small data to an `<svg>` string: axes with rounded ticks, category labels, a
legend, and a `<title>` tooltip on every mark. No script, no external resource. Every string passed
in is escaped here, so callers pass raw text (platform text included).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Series", "bar_chart", "empty_chart", "hbar_chart", "line_chart", "nice_ticks", "palette_colour"]

# A neutral palette; platforms bring their own colours (`Connector.brand_colour`) through the caller.
PALETTE = ("#2b7bb9", "#e07b39", "#3a9e6e", "#c4455d", "#7d5fb2", "#8c6d46", "#4a9fb5", "#b5a33a", "#6b7785")
_FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif"
_MUTED = "#5f6b7a"
_GRID = "#e3e7ec"
_AXIS = "#9aa5b1"

Fmt = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    """One named run of values, one per category; `colour` defaults to the palette."""

    name: str
    values: Sequence[float]
    colour: str | None = None


def palette_colour(index: int) -> str:
    """The `index`-th palette colour (the palette repeats)."""
    return PALETTE[index % len(PALETTE)]


def _fmt_default(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() or abs(v) >= 100 else f"{v:,.1f}"


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """0 and up to about `count` round steps (1, 2, 2.5, 5 x 10^k) reaching at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _t(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _open(width: int, height: int, title: str, kind: str) -> list[str]:
    return [f'<svg class="chart {kind}" role="img" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'aria-label="{escape(title)}" style="{_FONT};max-width:100%;height:auto">',
            f"<title>{escape(title)}</title>"]


def _legend(series: Sequence[Series], x: float, y: float, width: float, line: bool = False) -> tuple[list[str], float]:
    """Swatch + name per series, wrapped to `width`; returns the parts and the height used."""
    parts, cx, cy = [], x, y
    for i, s in enumerate(series):
        label = escape(s.name)
        w = 22 + 7.2 * len(s.name)
        if cx + w > x + width and cx > x:
            cx, cy = x, cy + 18
        colour = s.colour or palette_colour(i)
        if line:
            parts.append(f'<line class="swatch" x1="{_t(cx)}" y1="{_t(cy + 6)}" x2="{_t(cx + 14)}" y2="{_t(cy + 6)}" '
                         f'stroke="{colour}" stroke-width="3"/>')
        else:
            parts.append(f'<rect class="swatch" x="{_t(cx)}" y="{_t(cy)}" width="12" height="12" rx="2" '
                         f'fill="{colour}"/>')
        parts.append(f'<text x="{_t(cx + 18)}" y="{_t(cy + 10.5)}" font-size="12" fill="#24303d">{label}</text>')
        cx += w + 12
    return parts, (cy - y) + 18 if series else 0


def _y_axis(ticks: list[float], x0: float, x1: float, y_of: Callable[[float], float], fmt: Fmt,
            label: str, top: float, bottom: float) -> list[str]:
    parts = []
    for v in ticks:
        y = y_of(v)
        parts.append(f'<line x1="{_t(x0)}" y1="{_t(y)}" x2="{_t(x1)}" y2="{_t(y)}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{_t(x0 - 6)}" y="{_t(y + 4)}" font-size="11" text-anchor="end" '
                     f'fill="{_MUTED}">{escape(fmt(v))}</text>')
    parts.append(f'<line x1="{_t(x0)}" y1="{_t(top)}" x2="{_t(x0)}" y2="{_t(bottom)}" stroke="{_AXIS}"/>')
    parts.append(f'<line x1="{_t(x0)}" y1="{_t(bottom)}" x2="{_t(x1)}" y2="{_t(bottom)}" stroke="{_AXIS}"/>')
    if label:
        mid = (top + bottom) / 2
        parts.append(f'<text x="14" y="{_t(mid)}" font-size="11" fill="{_MUTED}" text-anchor="middle" '
                     f'transform="rotate(-90 14 {_t(mid)})">{escape(label)}</text>')
    return parts


def _clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"


def empty_chart(title: str, message: str, *, width: int = 720, height: int = 120) -> str:
    """A framed placeholder saying why there is nothing to draw."""
    parts = _open(width, height, title, "empty")
    parts.append(f'<rect class="frame" x="1" y="1" width="{width - 2}" height="{height - 2}" rx="8" fill="#f6f8fa" '
                 f'stroke="{_GRID}" stroke-dasharray="4 4"/>')
    parts.append(f'<text x="{width / 2:.0f}" y="{height / 2 + 5:.0f}" font-size="14" text-anchor="middle" '
                 f'fill="{_MUTED}">{escape(message)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str, y_label: str = "",
              stacked: bool = True, width: int = 720, height: int = 300, fmt: Fmt = _fmt_default,
              label_every: int = 1) -> str:
    """Vertical bars per category: stacked, or side by side (`stacked=False`)."""
    legend, legend_h = _legend(series, 60, 8, width - 70)
    top, bottom, left, right = 16 + legend_h, height - 34, 60, width - 12
    totals = [sum(s.values[i] for s in series) if stacked else max((s.values[i] for s in series), default=0)
              for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0))
    span = ticks[-1] or 1

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * v / span

    parts = _open(width, height, title, "bar")
    parts += legend
    parts += _y_axis(ticks, left, right, y_of, fmt, y_label, top, bottom)
    n = max(len(categories), 1)
    slot = (right - left) / n
    bar_w = max(slot * 0.7, 1.0)
    chars = max(int(slot * label_every / 6.5), 3)
    for i, cat in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        base = 0.0
        for j, s in enumerate(series):
            v = s.values[i]
            if v <= 0:
                continue
            colour = s.colour or palette_colour(j)
            if stacked:
                y0, y1, bx, bw = y_of(base + v), y_of(base), x, bar_w
                base += v
            else:
                bw = bar_w / len(series)
                y0, y1, bx = y_of(v), y_of(0), x + bw * j
            parts.append(f'<rect class="mark" x="{_t(bx)}" y="{_t(y0)}" width="{_t(bw)}" '
                         f'height="{_t(max(y1 - y0, 0.5))}" fill="{colour}">'
                         f"<title>{escape(f'{cat} — {s.name}: {fmt(v)}')}</title></rect>")
        if i % label_every == 0:
            parts.append(f'<text x="{_t(left + slot * (i + 0.5))}" y="{_t(bottom + 16)}" font-size="11" '
                         f'text-anchor="middle" fill="#24303d">{escape(_clip(cat, chars))}'
                         f"<title>{escape(cat)}</title></text>")
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str, x_label: str = "",
               width: int = 720, bar_height: int = 22, label_width: int = 230, fmt: Fmt = _fmt_default) -> str:
    """Horizontal stacked bars, one row per category (for long category names)."""
    legend, legend_h = _legend(series, label_width, 8, width - label_width - 10)
    top = 16 + legend_h
    row = bar_height + 10
    bottom = top + row * max(len(categories), 1)
    height = int(bottom + 36)
    left, right = label_width, width - 40
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max(totals, default=0), count=5)
    span = ticks[-1] or 1

    def x_of(v: float) -> float:
        return left + (right - left) * v / span

    parts = _open(width, height, title, "hbar")
    parts += legend
    for v in ticks:
        x = x_of(v)
        parts.append(f'<line x1="{_t(x)}" y1="{_t(top)}" x2="{_t(x)}" y2="{_t(bottom)}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{_t(x)}" y="{_t(bottom + 15)}" font-size="11" text-anchor="middle" '
                     f'fill="{_MUTED}">{escape(fmt(v))}</text>')
    parts.append(f'<line x1="{_t(left)}" y1="{_t(top)}" x2="{_t(left)}" y2="{_t(bottom)}" stroke="{_AXIS}"/>')
    if x_label:
        parts.append(f'<text x="{_t((left + right) / 2)}" y="{_t(bottom + 31)}" font-size="11" '
                     f'text-anchor="middle" fill="{_MUTED}">{escape(x_label)}</text>')
    chars = int((label_width - 12) / 6.6)
    for i, cat in enumerate(categories):
        y = top + row * i + 5
        parts.append(f'<text x="{_t(left - 8)}" y="{_t(y + bar_height / 2 + 4)}" font-size="12" '
                     f'text-anchor="end" fill="#24303d">{escape(_clip(cat, chars))}<title>{escape(cat)}</title></text>')
        base = 0.0
        for j, s in enumerate(series):
            v = s.values[i]
            if v <= 0:
                continue
            colour = s.colour or palette_colour(j)
            x0, x1 = x_of(base), x_of(base + v)
            base += v
            parts.append(f'<rect class="mark" x="{_t(x0)}" y="{_t(y)}" width="{_t(max(x1 - x0, 0.5))}" '
                         f'height="{bar_height}" fill="{colour}">'
                         f"<title>{escape(f'{cat} — {s.name}: {fmt(v)}')}</title></rect>")
        if totals[i] > 0:
            parts.append(f'<text x="{_t(x_of(base) + 5)}" y="{_t(y + bar_height / 2 + 4)}" font-size="11" '
                         f'fill="{_MUTED}">{escape(fmt(totals[i]))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, y_label: str = "",
               width: int = 720, height: int = 300, fmt: Fmt = _fmt_default, label_every: int = 1) -> str:
    """One line per series over `labels` (e.g. days); a hover band per label lists every series."""
    legend, legend_h = _legend(series, 60, 8, width - 70, line=True)
    top, bottom, left, right = 16 + legend_h, height - 34, 60, width - 16
    ticks = nice_ticks(max((v for s in series for v in s.values), default=0))
    span = ticks[-1] or 1
    n = len(labels)
    step = (right - left) / max(n - 1, 1)

    def x_of(i: int) -> float:
        return left + step * i if n > 1 else (left + right) / 2

    def y_of(v: float) -> float:
        return bottom - (bottom - top) * v / span

    parts = _open(width, height, title, "line")
    parts += legend
    parts += _y_axis(ticks, left, right, y_of, fmt, y_label, top, bottom)
    for i, label in enumerate(labels):
        if i % label_every == 0:
            parts.append(f'<line x1="{_t(x_of(i))}" y1="{_t(bottom)}" x2="{_t(x_of(i))}" y2="{_t(bottom + 4)}" '
                         f'stroke="{_AXIS}"/>')
            parts.append(f'<text x="{_t(x_of(i))}" y="{_t(bottom + 17)}" font-size="11" text-anchor="middle" '
                         f'fill="#24303d">{escape(label)}</text>')
    for j, s in enumerate(series):
        colour = s.colour or palette_colour(j)
        points = " ".join(f"{'M' if i == 0 else 'L'}{_t(x_of(i))},{_t(y_of(v))}" for i, v in enumerate(s.values))
        if n == 1:
            parts.append(f'<circle class="mark" cx="{_t(x_of(0))}" cy="{_t(y_of(s.values[0]))}" r="4" '
                         f'fill="{colour}"><title>{escape(f"{s.name}: {fmt(s.values[0])}")}</title></circle>')
        elif points:
            parts.append(f'<path class="mark" d="{points}" fill="none" stroke="{colour}" stroke-width="2" '
                         f'stroke-linejoin="round"><title>{escape(s.name)}</title></path>')
    band = step if n > 1 else right - left
    for i, label in enumerate(labels):
        tip = "\n".join([label] + [f"{s.name}: {fmt(s.values[i])}" for s in series])
        parts.append(f'<rect class="hover" x="{_t(x_of(i) - band / 2)}" y="{_t(top)}" width="{_t(band)}" '
                     f'height="{_t(bottom - top)}" fill="transparent"><title>{escape(tip)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)
