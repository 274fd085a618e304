"""What every live widget shares: a UI pump, an error area, batched updates, clean close.

One writer per widget (docs/architecture.md, "The notebook"): only the widget's pump thread
assigns its traits while it runs; ``update()`` renders synchronously for tests and benchmarks
that run without a pump.

A widget shows itself through a display id, so closing it (``%unload_ext`` closes them all)
can replace every output it appears in with a static snapshot of its last frame
(``snapshot.py``): a saved notebook keeps the charts instead of "model not found".
nbclient and JupyterLab apply the update to the outputs of earlier cells too.
"""

from __future__ import annotations

import contextlib
import html
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

import ipywidgets  # type: ignore[import-untyped, unused-ignore]
import numpy as np
from IPython import display as ipd

from workbench.feeds.protocol import AnyFeed
from workbench.notebook.pump import PumpStats, UIPump
from workbench.notebook.widgets.snapshot import Bundle

log = logging.getLogger(__name__)

MAX_SHOWN_ERRORS = 10
"""Distinct render errors written to a widget's error area; later ones are only counted."""


@contextlib.contextmanager
def held(*widgets: Any) -> Iterator[None]:
    """Batch every trait change of ``widgets`` into one comm message per widget.

    ``hold_sync`` is per widget: holding the container alone would still send one message
    per assignment of each child."""
    with contextlib.ExitStack() as stack:
        for widget in widgets:
            stack.enter_context(widget.hold_sync())
        yield


def assign(widget: Any, **traits: Any) -> None:
    """Set the traits whose value differs, so a frame that leaves an axis as it was sends
    nothing for it."""
    for name, value in traits.items():
        current = getattr(widget, name)
        if isinstance(current, np.ndarray):
            same = current.shape == np.shape(value) and bool(np.all(current == value))
        else:
            same = current == value
        if not same:
            setattr(widget, name, value)


def close_tree(root: Any, *detached: Any) -> None:
    """Close every widget ``root`` references, however deep (children, marks, axes, scales,
    layouts), and the ``detached`` ones with theirs: closing a box leaves them open in the
    kernel, each holding a comm."""
    seen = {id(root), *map(id, detached)}
    stack = [root, *detached]
    while stack:
        widget = stack.pop()
        for name in widget.keys:
            for item in _widgets_in(getattr(widget, name)):
                if id(item) not in seen:
                    seen.add(id(item))
                    stack.append(item)
        if widget is not root:
            widget.close()


def _widgets_in(value: Any) -> list[Any]:
    """The widgets a trait value holds: itself, or those in a list, tuple or dict."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list | tuple):
        value = [value]
    return [item for item in value if isinstance(item, ipywidgets.Widget)]


def publish(bundle: Bundle, *, display_id: str | None = None, update: bool = False) -> None:
    """Display a raw mime bundle (or, with ``update``, replace every output shown under
    ``display_id`` with it)."""
    show = cast("Callable[..., object]", ipd.update_display if update else ipd.display)  # untyped
    show(bundle, raw=True, display_id=display_id)


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


class LiveWidget(ipywidgets.VBox):  # type: ignore[misc, unused-ignore]
    """A VBox that renders itself from live data on a :class:`UIPump` until closed.

    Subclasses set up their state and child widgets, then call ``super().__init__`` (which
    may start the pump) with the children to show. They implement ``_render`` (one frame;
    assign only what changed, under :func:`held`), ``_snapshot`` (that frame as a static
    bundle) and optionally ``_finished`` (the source can never change again: the pump
    renders once more, then ends).
    """

    def __init__(
        self,
        children: Sequence[Any],
        *,
        css_class: str,
        name: str,
        rate: float,
        autostart: bool,
    ) -> None:
        self.error_output = ipywidgets.Output()
        self.error_output.add_class("wb-errors")
        self._shown_errors: set[str] = set()
        self._error_lock = threading.Lock()
        self._display_id: str | None = None
        super().__init__(children=[*children, self.error_output])
        self.add_class("wb-live")
        self.add_class(css_class)
        self.pump = UIPump(self._tick, rate=rate, name=name, on_error=self._show_error)
        if autostart:
            self.pump.start()

    def update(self) -> None:
        """Render one frame now, on the calling thread (errors propagate)."""
        self._render()

    @property
    def stats(self) -> PumpStats:
        return self.pump.stats

    def snapshot(self) -> Bundle:
        """The last frame as a static mime bundle (HTML, SVG where there is a chart, text);
        call it once the pump has stopped, or a frame may be drawn while it is read."""
        return self._snapshot()

    def _ipython_display_(self) -> None:
        """Display the live view under this widget's display id (IPython calls this for
        ``display(widget)`` and for a widget a cell returns); once closed, the snapshot."""
        if self.comm is None:
            publish(self.snapshot())
            return
        if self._display_id is None:
            self._display_id = uuid.uuid4().hex
        publish(self._repr_mimebundle_(), display_id=self._display_id)

    def close(self) -> None:
        """Stop and join the pump, replace the widget's outputs with its snapshot, then close
        every widget inside and the box itself."""
        pump = getattr(self, "pump", None)
        if pump is not None:
            pump.stop()
            if self._display_id is not None and self.comm is not None:
                self._show_snapshot(self._display_id)
        # No pump: the constructor raised (a usage error) before the subclass's widgets existed.
        close_tree(self, *(self._detached() if pump is not None else ()))
        super().close()

    def _show_snapshot(self, display_id: str) -> None:
        """Put the snapshot where the live view was (before the model goes, so the page never
        shows "model not found"). One last frame first (the pump is stopped: this thread is
        the only writer now), so the snapshot shows the state at close, e.g. a feed stopped a
        moment ago; if that frame fails (say the workbench is already closed), the snapshot
        shows the frame before it. Every failure is logged, and one that leaves no snapshot
        says so in the output; closing goes on either way."""
        name = self.pump.thread_name
        try:
            self._render()
        except Exception:
            log.exception("%s: the last frame before the snapshot failed", name)
        try:
            bundle = self.snapshot()
        except Exception as exc:
            log.exception("%s: snapshot failed", name)
            bundle = {"text/plain": f"{name}: closed; snapshot failed: {exc!r}"}
        try:
            publish(bundle, display_id=display_id, update=True)
        except Exception:  # e.g. the kernel's output channel is gone at interpreter exit
            log.exception("%s: could not send the snapshot", name)

    def _render(self) -> None:
        raise NotImplementedError

    def _snapshot(self) -> Bundle:
        raise NotImplementedError

    def _finished(self) -> bool:
        return False

    def _detached(self) -> Sequence[Any]:
        """Widgets of this one not (yet) in its tree, e.g. marks shown from the first data."""
        return ()

    def _tick(self) -> None:
        finished = self._finished()  # read first: the last render then sees the final state
        try:
            self._render()
        finally:
            if finished:
                self.pump.stop()

    def _show_error(self, exc: Exception) -> None:
        """Write each distinct error once into the widget (not to the last-run cell)."""
        key = f"{type(exc).__name__}: {exc}"
        with self._error_lock:
            if key in self._shown_errors or len(self._shown_errors) >= MAX_SHOWN_ERRORS:
                return
            self._shown_errors.add(key)
        text = "".join(traceback.format_exception(exc))
        self.error_output.append_stderr(
            f"{self.pump.thread_name}: render failed, still updating: {key}\n{text}"
        )


class FeedWidget(LiveWidget):
    """A live view of one symbol of one feed; it finishes once the feed stops.

    Subclasses call :meth:`_watch` first in ``__init__``, before building their children.
    """

    feed: AnyFeed
    symbol: str

    def _watch(self, feed: AnyFeed, symbol: str) -> None:
        feed.book(symbol)  # an unknown symbol is a UsageError now, not a render error later
        self.feed = feed
        self.symbol = symbol

    def _finished(self) -> bool:
        return not self.feed.running
