"""A small horizontal bar chart as inline SVG (no plotting library needed)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

BAR_HEIGHT = 22
GAP = 6
LABEL_WIDTH = 220
BAR_WIDTH = 420
VALUE_WIDTH = 80
COLOR = "#3b6fd8"


def _fmt(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e15 else f"{value:.3e}"


def bar_chart(title: str, items: Sequence[tuple[str, float]]) -> str:
    """An ``<svg>`` element with one bar per (label, value); negative values count as 0."""
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    height = 30 + len(items) * (BAR_HEIGHT + GAP) + GAP
    top = max((v for _, v in items), default=0.0)
    scale = BAR_WIDTH / top if top > 0 else 0.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
        f'font-size="12"><title>{escape(title)}</title>',
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
    ]
    for index, (label, value) in enumerate(items):
        y = 30 + index * (BAR_HEIGHT + GAP)
        length = max(value, 0.0) * scale
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end">'
            f"{escape(label[:40])}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" '
            f'fill="{COLOR}"><title>{escape(label)}: {_fmt(value)}</title></rect>'
            f'<text x="{LABEL_WIDTH + length + 6:.1f}" y="{y + 15}">{_fmt(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
