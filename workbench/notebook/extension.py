"""``%load_ext workbench`` / ``%unload_ext workbench``: register the magics, tear everything down.

Loading is idempotent per shell: a second load (``%load_ext`` under another module name,
or a direct call) finds the registered :class:`WorkbenchMagics` and keeps its session.
Unloading closes the session — widgets (pumps joined), feeds, embedded simulators, the
cursor and the database — then removes ``%wb`` and the ``%config`` entry. Settings made
with ``%config`` live in the shell's config, so a reload (``%reload_ext workbench``) keeps
them.

Kernel shutdown: ipykernel stops its event loop and the interpreter exits normally, which
runs atexit callbacks; the session's close is registered there (it runs before the store's
own atexit flush, so feeds hand over their last rows and final book snapshots first).
SIGTERM (what a kernel manager sends when a shutdown takes too long, and what process
supervisors send) would skip atexit, so a handler closes the session first and then lets
the signal take its course.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any, cast

from workbench.notebook.magics import WorkbenchMagics

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell


def loaded_magics(ipython: InteractiveShell) -> WorkbenchMagics | None:
    """The shell's registered :class:`WorkbenchMagics`, if the extension is loaded."""
    magics = ipython.magics_manager.registry.get(WorkbenchMagics.__name__)
    return magics if isinstance(magics, WorkbenchMagics) else None


def load_ipython_extension(ipython: InteractiveShell) -> None:
    if loaded_magics(ipython) is not None:
        return
    magics = WorkbenchMagics(shell=ipython)  # also joins ipython.configurables (for %config)
    ipython.register_magics(magics)
    atexit.register(magics.session.close)
    _close_on_sigterm(magics)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    magics = loaded_magics(ipython)
    if magics is None:
        return
    atexit.unregister(magics.session.close)
    _restore_sigterm(magics)
    try:
        magics.session.close()
    finally:
        manager = ipython.magics_manager
        del manager.registry[WorkbenchMagics.__name__]
        for kind, table in manager.magics.items():
            for name, func in magics.magics[kind].items():
                if table.get(name) == func:
                    del table[name]
        # typed list[InteractiveShell] by inference; it holds every configurable of the shell
        cast("list[object]", ipython.configurables).remove(magics)


_previous_sigterm: dict[int, Any] = {}  # id(magics) → the SIGTERM handler ours replaced


def _close_on_sigterm(magics: WorkbenchMagics) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (a shell embedded in a thread)
    previous = signal.getsignal(signal.SIGTERM)

    def close_then_terminate(signum: int, frame: FrameType | None) -> None:
        try:
            magics.session.close()
        finally:
            signal.signal(signal.SIGTERM, previous)
            os.kill(os.getpid(), signal.SIGTERM)  # now handled as before we were loaded

    signal.signal(signal.SIGTERM, close_then_terminate)
    _previous_sigterm[id(magics)] = previous


def _restore_sigterm(magics: WorkbenchMagics) -> None:
    previous = _previous_sigterm.pop(id(magics), None)
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
