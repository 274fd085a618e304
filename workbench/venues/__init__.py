"""Venue protocols (pure) and the registry the feed runtime and the CLI look them up in."""

from __future__ import annotations

from workbench.errors import UsageError
from workbench.venues.base import VenueProtocol
from workbench.venues.sim import SimProtocol

VENUES: dict[str, type[VenueProtocol]] = {cls.name: cls for cls in (SimProtocol,)}


def get_venue(name: str) -> type[VenueProtocol]:
    try:
        return VENUES[name]
    except KeyError:
        known = ", ".join(sorted(VENUES))
        raise UsageError(f"unknown venue {name!r}; known venues: {known}") from None


__all__ = ["VENUES", "SimProtocol", "VenueProtocol", "get_venue"]
