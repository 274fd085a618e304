"""The building blocks of the static SVG charts (the widgets' snapshots in
:mod:`workbench.notebook.widgets.snapshot`, the validation report's charts in
:mod:`workbench.validation.charts`): their look, the document, its header and no-data
message, a plot area that maps data to pixels, and the ``<img>`` that carries a chart.

Pure functions to SVG text; the ticks and labels they draw come from :mod:`workbench.core.axes`.
Elements carry classes (``background``, ``frame``, ``grid``, ``tick``, ...) so a test can parse
a chart and find them.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from workbench.core.axes import label_px

SVG_NS: Final = "http://www.w3.org/2000/svg"
WIDTH: Final = 720
FONT: Final = 'font-family="sans-serif" font-size="11"'
GRID: Final = "#e0e0e0"
INK: Final = "#37474f"
MUTED: Final = "#78909c"
"""Secondary text (a header's note, a no-data message) and neutral marks."""

Floats = npt.NDArray[np.float64]


def esc(value: object) -> str:
    """``value`` as text safe in an SVG or HTML element or attribute."""
    return html.escape(str(value), quote=True)


def document(height: int, body: str, title: str) -> str:
    """A chart ``WIDTH`` px wide on a white background, with ``title`` and ``body``."""
    return (
        f'<svg xmlns="{SVG_NS}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'{FONT}><title>{esc(title)}</title><rect class="background" width="100%" '
        f'height="100%" fill="#fff"/>{body}</svg>'
    )


def header(text: str, note: str) -> str:
    """The chart's title line, and its status on the right (e.g. "feed stopped")."""
    return (
        f'<text class="header" x="8" y="16" font-size="12" fill="{INK}">{esc(text)}</text>'
        f'<text class="note" x="{WIDTH - 8}" y="16" text-anchor="end" fill="{MUTED}">'
        f"{esc(note)}</text>"
    )


def no_data(height: int, title: str, header_text: str, message: str, note: str = "") -> str:
    """A chart with only its header and ``message`` in the middle, for when there is no data."""
    body = header(header_text, note) + (
        f'<text class="no-data" x="{WIDTH / 2}" y="{height / 2 + 6}" text-anchor="middle" '
        f'font-size="14" fill="{MUTED}">{esc(message)}</text>'
    )
    return document(height, body, title)


def as_img(svg: str, alt: str, css_class: str) -> str:
    """``svg`` as an ``<img>`` with a base64 ``data:image/svg+xml`` URI, which JupyterLab's
    sanitizer keeps in an untrusted notebook (an inline ``<svg>`` is not rendered there)."""
    data = base64.b64encode(svg.encode()).decode("ascii")
    return (
        f'<img class="{esc(css_class)}" src="data:image/svg+xml;base64,{data}" alt="{esc(alt)}"/>'
    )


@dataclass(frozen=True)
class Panel:
    """A plot area in pixels and the data domain it maps (SVG y grows downwards)."""

    left: float
    top: float
    width: float
    height: float
    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width

    def x(self, value: float) -> float:
        return self.left + (value - self.x0) / ((self.x1 - self.x0) or 1.0) * self.width

    def y(self, value: float) -> float:
        share = (value - self.y0) / ((self.y1 - self.y0) or 1.0)
        return self.bottom - share * self.height

    def xs(self, values: Floats) -> Floats:
        return self.left + (values - self.x0) / ((self.x1 - self.x0) or 1.0) * self.width

    def ys(self, values: Floats) -> Floats:
        return self.bottom - (values - self.y0) / ((self.y1 - self.y0) or 1.0) * self.height

    def frame(self) -> str:
        return (
            f'<rect class="frame" x="{self.left:.1f}" y="{self.top:.1f}" '
            f'width="{self.width:.1f}" height="{self.height:.1f}" fill="none" stroke="#b0bec5"/>'
        )

    def y_ticks(self, ticks: Sequence[float], labels: Sequence[str], title: str) -> str:
        """A grid line and a label at each tick, and ``title`` rotated beside the labels."""
        parts = []
        for value, label in zip(ticks, labels, strict=True):
            y = self.y(value)
            parts.append(
                f'<line class="grid" x1="{self.left:.1f}" x2="{self.right:.1f}" y1="{y:.1f}" '
                f'y2="{y:.1f}" stroke="{GRID}"/><text class="tick y-tick" '
                f'x="{self.left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">'
                f"{esc(label)}</text>"
            )
        widest = max((label_px(label) for label in labels), default=0)
        cx, cy = self.left - widest - 18, self.top + self.height / 2
        parts.append(
            f'<text class="axis-title" x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 {cx:.1f} {cy:.1f})" fill="{INK}">{esc(title)}</text>'
        )
        return "".join(parts)

    def x_grid(self, ticks: Sequence[float]) -> str:
        """A vertical grid line across the panel at each tick."""
        return "".join(
            f'<line class="grid" x1="{self.x(v):.1f}" x2="{self.x(v):.1f}" y1="{self.top:.1f}" '
            f'y2="{self.bottom:.1f}" stroke="{GRID}"/>'
            for v in ticks
        )

    def x_ticks(self, ticks: Sequence[float], labels: Sequence[str]) -> str:
        """A tick mark below the panel at each tick, and its label under it."""
        return "".join(
            f'<line x1="{self.x(v):.1f}" x2="{self.x(v):.1f}" y1="{self.bottom:.1f}" '
            f'y2="{self.bottom + 5:.1f}" stroke="{INK}"/><text class="tick x-tick" '
            f'x="{self.x(v):.1f}" y="{self.bottom + 17:.1f}" text-anchor="middle" '
            f'fill="{INK}">{esc(label)}</text>'
            for v, label in zip(ticks, labels, strict=True)
        )
