"""The feed-status widget: one table row per feed of a workbench, refreshed at 2 Hz.

``Workbench.status()`` reads counters under each feed's lock; the table is rebuilt as text
and sent only when the text changed (msgs/s moves once a second, so about one message a
second while feeds run, none once they are all stopped).
"""

from __future__ import annotations

import ipywidgets  # type: ignore[import-untyped, unused-ignore]

from workbench.feeds.status import FeedStatus
from workbench.notebook.widgets import snapshot
from workbench.notebook.widgets.base import LiveWidget, escape, held
from workbench.workbench import Workbench

COLUMNS = (
    "feed",
    "exchange",
    "running",
    "subscribed",
    "msgs/s",
    "trades",
    "gaps",
    "resyncs",
    "quarantined",
    "books",
    "thread errors",
    "last error",
)
NUMERIC = ("msgs/s", "trades", "gaps", "resyncs", "quarantined")
STYLE = (
    # a <style> inside the widget's HTML applies to it (scoped by the class); without a gap
    # between cells the headers run together, and right-aligned counts line their digits up
    "<style>.wb-status-table th,.wb-status-table td"
    "{padding:2px 14px 2px 0;white-space:nowrap;text-align:left}"
    + "".join(
        f".wb-status-table th:nth-child({i}),.wb-status-table td:nth-child({i}){{text-align:right}}"
        for i in sorted(COLUMNS.index(c) + 1 for c in NUMERIC)
    )
    + "</style>"
)


class FeedStatusWidget(LiveWidget):
    """Live health table of every feed ``wb`` has started."""

    def __init__(self, wb: Workbench, *, rate: float = 2.0, autostart: bool = True) -> None:
        self.wb = wb
        self.rows: list[FeedStatus] = []
        self.table = ipywidgets.HTML(status_html([]))
        self.table.add_class("wb-feed-status-table")
        super().__init__(
            [self.table],
            css_class="wb-feed-status",
            name=f"status-{id(wb):x}",
            rate=rate,
            autostart=autostart,
        )

    def _render(self) -> None:
        rows = self.wb.status()
        with held(self.table):
            self.rows = rows
            self.table.value = status_html(rows)  # a traitlet: unchanged text sends nothing

    def _snapshot(self) -> snapshot.Bundle:
        return snapshot.status_snapshot(self.table.value, [s.summary() for s in self.rows])


def _books(valid: dict[str, bool]) -> str:
    if not valid:
        return "—"
    return " ".join(
        f'<span class="wb-book-{"valid" if ok else "invalid"}" '
        f'style="color:{"#2e7d32" if ok else "#c62828"}">{escape(symbol)}'
        f"{'' if ok else ' INVALID'}</span>"
        for symbol, ok in valid.items()
    )


def _subscriptions(s: FeedStatus) -> str:
    """Per symbol: acknowledged now, refused (the venue's words on hover), or still waiting;
    an open connection alone is not a subscription."""
    cells = []
    for symbol in s.symbols:
        if s.subscribed.get(symbol):
            cells.append(f'<span class="wb-sub-ok" style="color:#2e7d32">{escape(symbol)}</span>')
        elif symbol in s.rejected:
            cells.append(
                f'<span class="wb-sub-rejected" style="color:#c62828" '
                f'title="{escape(s.rejected[symbol])}">{escape(symbol)} REJECTED</span>'
            )
        else:
            cells.append(
                f'<span class="wb-sub-waiting" style="color:#ef6c00">'
                f"{escape(symbol)} waiting</span>"
            )
    return " ".join(cells)


def _thread_errors(s: FeedStatus) -> str:
    """The count (the newest error on hover), and threads that outlived the feed's stop()."""
    cells = []
    if s.thread_errors:
        title = escape(s.last_thread_error or "")
        cells.append(
            f'<span class="wb-thread-errors" style="color:#c62828" title="{title}">'
            f"{s.thread_errors:,}</span>"
        )
    if s.lingering_threads:
        cells.append(
            '<span class="wb-lingering" style="color:#c62828">still alive after stop: '
            f"{escape(', '.join(s.lingering_threads))}</span>"
        )
    return " ".join(cells) or "0"


def _row(s: FeedStatus) -> str:
    cells = (
        escape(s.name),
        escape(s.exchange),
        "yes" if s.running else "<b>stopped</b>",
        _subscriptions(s),
        f"{s.msgs_per_sec:,.0f}",
        f"{s.trades:,}",
        f"{s.gaps:,}",
        f"{s.resyncs:,}",
        f"{s.quarantined:,}",
        _books(s.book_valid),
        _thread_errors(s),
        escape(s.last_error) if s.last_error else "",
    )
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def status_html(rows: list[FeedStatus]) -> str:
    head = "".join(f"<th>{name}</th>" for name in COLUMNS)
    body = "".join(_row(s) for s in rows) or (
        f'<tr><td colspan="{len(COLUMNS)}"><i>no feeds started</i></td></tr>'
    )
    return (
        STYLE + '<table class="wb-status-table" style="border-collapse:collapse">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
