"""Venue protocols (pure) and the registry the feed runtime and the CLI look them up in."""

from __future__ import annotations

from workbench.errors import UsageError
from workbench.venues.base import VenueProtocol
from workbench.venues.binance import BinanceProtocol
from workbench.venues.bitstamp import BitstampProtocol
from workbench.venues.bybit import BybitProtocol
from workbench.venues.coinbase import CoinbaseProtocol
from workbench.venues.coinbase_exchange import CoinbaseExchangeProtocol
from workbench.venues.gemini import GeminiProtocol
from workbench.venues.kraken import KrakenProtocol
from workbench.venues.okx import OkxProtocol
from workbench.venues.sim import SimProtocol
from workbench.venues.vendor import VendorProtocol

VENUES: dict[str, type[VenueProtocol]] = {
    cls.name: cls
    for cls in (
        SimProtocol,
        BybitProtocol,
        GeminiProtocol,
        BinanceProtocol,
        BitstampProtocol,
        VendorProtocol,
        KrakenProtocol,
        OkxProtocol,
        CoinbaseProtocol,
        CoinbaseExchangeProtocol,
    )
}


def get_venue(name: str) -> type[VenueProtocol]:
    try:
        return VENUES[name]
    except KeyError:
        known = ", ".join(sorted(VENUES))
        raise UsageError(f"unknown venue {name!r}; known venues: {known}") from None


__all__ = [
    "VENUES",
    "BinanceProtocol",
    "BitstampProtocol",
    "BybitProtocol",
    "CoinbaseExchangeProtocol",
    "CoinbaseProtocol",
    "GeminiProtocol",
    "KrakenProtocol",
    "OkxProtocol",
    "SimProtocol",
    "VendorProtocol",
    "VenueProtocol",
    "get_venue",
]
