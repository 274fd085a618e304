"""The embedded exchange simulator (``workbench sim``): a seeded WebSocket + REST venue.

The wire protocol is specified in the README ("The embedded exchange simulator protocol");
``market`` and ``faults`` are the pure engine, ``server`` the threaded shell, ``command`` the CLI.
"""

from __future__ import annotations

from workbench.sim.server import SimConfig, SimServer

__all__ = ["SimConfig", "SimServer"]
