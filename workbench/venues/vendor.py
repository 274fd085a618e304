"""Generic vendor JSON tick feeds, configured by a mapping file instead of code.

Equity and HK data vendors push one JSON object per tick (symbol, time, last price, volume,
best bid and ask) and want a subscribe message and an application ping. A
:class:`VendorMapping` (a JSON or TOML file, format in ``data/vendors/README.md``) names the
messages to send and where each field sits in a tick; :func:`vendor_protocol` turns it into a
:class:`~workbench.venues.base.VenueProtocol` class, so a new vendor needs a file, not a module.

A tick of the example mapping ``data/vendors/hk_ticks.json``::

    {"type":"tick","data":[{"symbol":"0700.HK","time":"2026-11-21 09:30:00.123",
     "last_price":"385.200","volume":"1205300","bid_price":"385.000","bid_size":"32000",
     "ask_price":"385.200","ask_size":"18500"}]}

What a tick becomes:

- a :class:`~workbench.events.Quote` when it carries the best bid and ask (all four quote
  fields; a tick with only some of them is malformed);
- a :class:`~workbench.events.Trade` when it carries a last price and a traded size. With
  ``volume_is_cumulative`` the size is the rise of the day volume since the previous tick of
  the symbol: the first tick only sets the baseline, an unchanged volume is no trade, a lower
  volume with a later time starts a new session (new baseline), and a tick older than the
  baseline (out of order) gives no trade. Otherwise a size of 0 means "no trade in this tick".

The trade id is the mapped field, else ``f"{ts}-{n}"`` with ``n`` counting this connection's
trades of the symbol at that same ``ts`` (unique while a symbol's times do not go back; a tick
the vendor repeats after a reconnect gets the same id, so the feed stores it once). The TAKER
side is the mapped field through its value map; where the vendor does not say (no side field,
or a value mapped to ``"infer"``) it is inferred: the quote rule against the latest quote
before this tick (price ≥ ask → buy, ≤ bid → sell; the tick's own quote if the symbol has none
yet), else the tick rule against the previous trade (up → buy, down → sell, unchanged → the
previous trade's side), else — the first trade of a connection with nothing to compare — buy.

A quarantined message changes no state (volume baseline, last quote, last trade): a tick is
fully checked before it touches the state, and a batch that fails part-way is rolled back.

Speed (≤ 3 µs a tick): only the mapped paths are decoded, into msgspec Structs generated from
the mapping, with JSON types and decimal strings → floats handled in C.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from operator import attrgetter
from pathlib import Path
from types import GenericAlias
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from workbench.errors import ProtocolError, UsageError
from workbench.events import MarketEvent, Quote, Side, Subscribed, Trade
from workbench.venues.base import VenueProtocol

Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]
Template = dict[str, Any]


class Timestamp(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How a tick's time is written. ``s``/``ms``/``us``: a JSON number of seconds,
    milliseconds or microseconds since the epoch; ``ms_string``: milliseconds as a string of
    digits; ``iso``: ISO 8601 text, read in ``tz`` when it carries no offset."""

    format: Literal["s", "ms", "us", "ms_string", "iso"]
    tz: str = "UTC"


class SideField(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the taker side is and what its values mean, keyed by their JSON text (strings
    as they are, numbers as digits, ``true``/``false``/``null``); ``"infer"`` = not said."""

    path: str
    values: dict[str, Literal["buy", "sell", "infer"]]


class Fields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Dotted paths into a tick (``quote.bid.0`` indexes lists); absent or null = not sent."""

    symbol: str
    ts: str
    last_price: str | None = None
    last_size: str | None = None
    volume: str | None = None
    bid_price: str | None = None
    bid_size: str | None = None
    ask_price: str | None = None
    ask_size: str | None = None
    trade_id: str | None = None
    side: SideField | None = None


class RestFields(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Paths in the REST ticker body that differ from the stream's ``fields``."""

    symbol: str | None = None
    ts: str | None = None
    bid_price: str | None = None
    bid_size: str | None = None
    ask_price: str | None = None
    ask_size: str | None = None


class RestSource(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The polling source: ``GET {url}{ticker_path}`` with ``{symbol}`` filled in → a Quote."""

    url: str
    ticker_path: str
    message_path: str | None = None
    fields: RestFields = RestFields()
    timestamp: Timestamp | None = None


class VendorMapping(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One vendor's feed, as data. See ``data/vendors/README.md`` for every key."""

    name: Name
    fields: Fields
    timestamp: Timestamp
    ws_url: str | None = None
    subscribe: Template | list[Template] | None = None
    heartbeat: str | Template | None = None
    heartbeat_interval: float = 0.0
    stale_after: float = 60.0
    currency: str | None = None
    message_path: str | None = None
    ignore: list[Template] = []
    ack: list[Template] = []
    volume_is_cumulative: bool = False
    rest: RestSource | None = None


def load_mapping(path: str | Path) -> VendorMapping:
    """Read and check a mapping file (``.json``, or ``.toml`` read with :mod:`tomllib`)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read vendor mapping {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            mapping = msgspec.convert(tomllib.loads(raw.decode()), VendorMapping, strict=True)
        else:
            mapping = msgspec.json.decode(raw, type=VendorMapping, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"vendor mapping {path}: {exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"vendor mapping {path}: not UTF-8 text") from None
    try:
        _check(mapping)
        _Plan(mapping)
    except ValueError as exc:
        raise UsageError(f"vendor mapping {path}: {exc}") from None
    return mapping


def _check(m: VendorMapping) -> None:
    """What the types alone cannot say; raises ValueError naming the key."""
    f = m.fields
    if m.ws_url is None and m.rest is None:
        raise ValueError("needs `ws_url` (a tick stream) or `rest` (a polling source)")
    if m.ws_url is not None:
        if urlsplit(m.ws_url).scheme not in ("ws", "wss"):
            raise ValueError(f"`ws_url` must start with ws:// or wss://, got {m.ws_url!r}")
        if m.subscribe is None:
            raise ValueError("`subscribe` is required with `ws_url` (use [] if none is sent)")
    if m.heartbeat is not None and m.heartbeat_interval <= 0:
        raise ValueError("`heartbeat` needs `heartbeat_interval` > 0 (seconds)")
    if m.stale_after <= 0 or (m.heartbeat is not None and m.stale_after <= m.heartbeat_interval):
        raise ValueError("`stale_after` must be > 0 and longer than `heartbeat_interval`")
    quoted = _quote_fields(f, "fields")
    sizes = [k for k in ("last_size", "volume") if getattr(f, k) is not None]
    if (f.last_price is None) != (not sizes):
        raise ValueError("a trade needs `fields.last_price` and `fields.last_size` or `.volume`")
    if len(sizes) == 2:
        raise ValueError("map one of `fields.last_size` and `fields.volume`, not both")
    if m.volume_is_cumulative and f.volume is None:
        raise ValueError("`volume_is_cumulative` needs `fields.volume`")
    if f.last_price is None and (f.trade_id is not None or f.side is not None):
        raise ValueError("`fields.trade_id` and `fields.side` need `fields.last_price`")
    if not quoted and f.last_price is None:
        raise ValueError("`fields` maps neither a quote nor a trade")
    _zone(m.timestamp.tz, "timestamp.tz")
    paths: dict[str, str | None] = {
        "message_path": m.message_path,
        "fields.side.path": f.side.path if f.side is not None else None,
    }
    paths.update((f"fields.{k}", getattr(f, k)) for k in f.__struct_fields__ if k != "side")
    for key, rules in (("ignore", m.ignore), ("ack", m.ack)):
        for i, rule in enumerate(rules):
            if not rule:
                raise ValueError(f"`{key}[{i}]` is empty: it would match every message")
            paths.update((f"{key}[{i}] key {k!r}", k) for k in rule)
    if m.rest is not None:
        r = m.rest
        if urlsplit(r.url).scheme not in ("http", "https"):
            raise ValueError(f"`rest.url` must start with http:// or https://, got {r.url!r}")
        if not r.ticker_path.startswith("/") or "{symbol}" not in r.ticker_path:
            raise ValueError("`rest.ticker_path` must start with / and contain {symbol}")
        if not _quote_fields(_merge(f, r.fields), "rest.fields"):
            raise ValueError("the REST ticker needs the four quote fields (`rest.fields`)")
        if r.timestamp is not None:
            _zone(r.timestamp.tz, "rest.timestamp.tz")
        paths["rest.message_path"] = r.message_path
        paths.update((f"rest.fields.{k}", v) for k, v in msgspec.structs.asdict(r.fields).items())
    for key, value in paths.items():
        if value is not None and any(not part for part in value.split(".")):
            raise ValueError(f"`{key}` is not a dotted path: {value!r}")


def _quote_fields(f: Fields, where: str) -> bool:
    """Whether ``f`` maps a quote: all four fields or none (a half quote is a mistake)."""
    keys = ("bid_price", "bid_size", "ask_price", "ask_size")
    missing = [k for k in keys if getattr(f, k) is None]
    if 0 < len(missing) < 4:
        names = ", ".join(f"`{where}.{k}`" for k in missing)
        raise ValueError(f"a quote needs all four quote fields; missing {names}")
    return not missing


def _zone(name: str, key: str) -> tzinfo:
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"`{key}`: unknown time zone {name!r}") from None


def _merge(stream: Fields, rest: RestFields) -> Fields:
    overrides = {k: v for k, v in msgspec.structs.asdict(rest).items() if v is not None}
    return msgspec.structs.replace(stream, **overrides)


# -- reading ticks ------------------------------------------------------------------------
_Number = str | int | float | None


def _leaf_types(exact_amount: bool) -> tuple[tuple[str, Any], ...]:
    """What a tick reader reads, in this order, and the JSON types each may have (null =
    absent). ``float`` leaves are decoded in lax mode: a decimal string or a JSON number
    becomes a correctly rounded float in C. A cumulative volume stays text, for exact sums."""
    price = float | None
    return (
        ("symbol", str | None),
        ("ts", _Number),
        ("last_price", price),
        ("amount", _Number if exact_amount else price),  # last_size or volume
        ("bid_price", price),
        ("bid_size", price),
        ("ask_price", price),
        ("ask_size", price),
        ("trade_id", str | int | None),
        ("side", str | int | bool | None),
    )


_INDEX = "[]"
"""Tree key of a list's elements: a path part made of digits indexes a list."""

Steps = list[str | int]


class _Node:
    """One place in a message's shape: a value (``leaf`` type), an object or a list."""

    __slots__ = ("attr", "children", "leaf")

    def __init__(self) -> None:
        self.leaf: Any = None
        self.children: dict[str, _Node] = {}
        self.attr = ""

    def add(self, path: str, leaf: Any, key: str) -> None:
        node = self
        for part in path.split("."):
            if node.leaf is not None:
                raise ValueError(f"`{key}` reads inside a value another key reads: {path!r}")
            node = node.children.setdefault(_INDEX if part.isdigit() else part, _Node())
        if node.children:
            raise ValueError(f"`{key}` reads as a value what other keys read inside: {path!r}")
        if node.leaf is None:  # the first reader decides the type (tick fields come first)
            node.leaf = leaf

    def type(self) -> Any:
        """The msgspec type that decodes what was added here and skips everything else."""
        if self.leaf is not None:
            return self.leaf
        if _INDEX in self.children:
            if len(self.children) > 1:
                raise ValueError("a path reads the same place as a list and as an object")
            return GenericAlias(list, (self.children[_INDEX].type(),))
        fields: list[tuple[str, Any, Any]] = []
        rename = {}
        for i, (key, child) in enumerate(self.children.items()):
            child.attr = f"f{i}"
            rename[child.attr] = key
            kind = child.type()
            default: Any = None
            if child.leaf is None:  # an object or list on the way to a value
                default = msgspec.field(default_factory=list if _INDEX in child.children else kind)
            fields.append((child.attr, kind, default))
        return msgspec.defstruct("Node", fields, rename=rename, namespace={"nil": None})

    def steps(self, path: str) -> Steps:
        """``path`` as attribute names and list indices into a decoded :meth:`type`."""
        steps: Steps = []
        node = self
        for part in path.split("."):
            if part.isdigit():
                node = node.children[_INDEX]
                steps.append(int(part))
            else:
                node = node.children[part]
                steps.append(node.attr)
        return steps


def _step_getter(steps: Steps | None) -> Callable[[Any], Any]:
    """Reads one path through list indices, which ``attrgetter`` cannot; None = unmapped."""
    if steps is None:
        return attrgetter("nil")

    def get(obj: Any) -> Any:
        for step in steps:
            if type(step) is int:
                obj = obj[step] if step < len(obj) else None
            else:
                obj = getattr(obj, step)  # type: ignore[arg-type]
            if obj is None:
                return None
        return obj

    return get


def _reader(paths: list[Steps | None]) -> Callable[[Any], Any]:
    """One function reading every path (a tuple if several): one C ``attrgetter`` call unless
    a path indexes a list; an unmapped path (None) reads the structs' ``nil`` (None)."""
    if all(s is None or all(type(x) is str for x in s) for s in paths):
        return attrgetter(*("nil" if s is None else ".".join(map(str, s)) for s in paths))
    getters = [_step_getter(s) for s in paths]
    if len(getters) == 1:
        return getters[0]
    return lambda obj: tuple(get(obj) for get in getters)


def _dict_getter(path: str) -> Callable[[Any], Any]:
    """``path`` read from plain decoded JSON (how ignore rules check an undecodable message)."""
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]

    def get(obj: Any) -> Any:
        for part in parts:
            if type(obj) is dict:
                obj = obj.get(str(part))
            elif type(obj) is list and type(part) is int:
                obj = obj[part] if part < len(obj) else None
            else:
                return None
        return obj

    return get


class _Layout:
    """Typed decoding of one message shape, generated from the mapping's paths.

    Only the mapped paths are decoded, into generated msgspec Structs with their JSON types
    checked in C (a bool where a price belongs fails there, naming its ``$.path``); the other
    fields of a vendor's often large tick objects are skipped unbuilt. ``values`` reads the
    ten fields of a decoded tick in one call."""

    def __init__(
        self,
        paths: tuple[str | None, ...],
        leaves: tuple[tuple[str, Any], ...],
        message_path: str | None,
        ignore: list[Template],
    ) -> None:
        tick = _Node()
        for (field, leaf), path in zip(leaves, paths, strict=True):
            if path is not None:
                tick.add(path, leaf, f"fields.{field}")
        root = tick if message_path is None else _Node()
        if message_path is not None:  # the ticks' place first: an ignore key cannot retype it
            tick_type = tick.type()
            root.add(
                message_path, tick_type | GenericAlias(list, (tick_type,)) | None, "message_path"
            )
        for i, rule in enumerate(ignore):
            for path in rule:
                root.add(path, Any, f"ignore[{i}]")
        root_type = root.type()
        if message_path is None:
            tick_type = root_type
        root_type |= GenericAlias(list, (tick_type,))
        self.decode = msgspec.json.Decoder(root_type, strict=False).decode
        self.values = _reader([None if p is None else tick.steps(p) for p in paths])
        self.message = None if message_path is None else _reader([root.steps(message_path)])
        # (read the rule's paths, the values that match): one-key rules on the same path
        # share one read, matched with ``in``; a rule of several keys matches one tuple
        by_path: dict[str, list[Any]] = {}
        self.ignore: list[tuple[Callable[[Any], Any], tuple[Any, ...]]] = []
        for rule in ignore:
            if len(rule) == 1:
                ((path, value),) = rule.items()
                by_path.setdefault(path, []).append(value)
            else:
                read_rule = _reader([root.steps(p) for p in rule])
                self.ignore.append((read_rule, (tuple(rule.values()),)))
        for path, values in by_path.items():
            self.ignore.append((_reader([root.steps(path)]), tuple(values)))
        self.dict_ignore = [
            [(_dict_getter(path), value) for path, value in rule.items()] for rule in ignore
        ]

    def ignored(self, payload: bytes) -> bool:
        """Whether a message the typed decoder refused is still one the mapping ignores."""
        msg = msgspec.json.decode(payload)
        return type(msg) is dict and any(
            all(get(msg) == value for get, value in rule) for rule in self.dict_ignore
        )


def _tick_paths(f: Fields) -> tuple[str | None, ...]:
    """The mapping's paths in :func:`_leaf_types` order."""
    amount = f.volume if f.last_size is None else f.last_size
    side = f.side.path if f.side is not None else None
    return (f.symbol, f.ts, f.last_price, amount, f.bid_price, f.bid_size, f.ask_price,
            f.ask_size, f.trade_id, side)  # fmt: skip


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TS_MIN = 946_684_800_000_000  # 2000-01-01
_TS_MAX = 4_102_444_800_000_000  # 2100-01-01: outside means a wrong unit in the mapping
_INF = float("inf")
_FRACTION_SCALE = (0, 100_000, 10_000, 1000, 100, 10, 1)
"""µs per unit of an n-digit fraction of a second (n = 0: no fraction)."""


def _time_reader(spec: Timestamp) -> Callable[[Any], int]:
    """The mapping's timestamp format → a function from the wire value to µs since the epoch.

    ISO text is parsed once per second of time: the part before the fraction maps to its µs
    in a cache, and the fraction digits are added. A naive local time placed in ``spec.tz``
    (``replace(tzinfo=...)`` and zone arithmetic) otherwise costs more than the rest of a tick
    together; the cache is exact because a zone's offset is the same within a second."""
    fmt = spec.format
    zone = _zone(spec.tz, "timestamp.tz")
    seconds: dict[str, int] = {}

    def checked(us: int, value: Any) -> int:
        if _TS_MIN <= us < _TS_MAX:
            return us
        raise ProtocolError(f"timestamp {value!r} read as {fmt} is not in 2000-2099")

    def parse_iso(value: str) -> int:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ProtocolError(f"bad ISO 8601 timestamp {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        d = moment - _EPOCH
        return checked((d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds, value)

    def iso(value: Any) -> int:
        if type(value) is not str:
            raise ProtocolError(f"timestamp {value!r} is not an ISO 8601 string")
        head, dot, fraction = value.partition(".")
        if dot and not fraction.isdigit():  # an offset after the fraction: no shortcut
            return parse_iso(value)
        digits = len(fraction)
        if digits < 7:
            micros = int(fraction) * _FRACTION_SCALE[digits] if digits else 0
        else:
            micros = int(fraction[:6])
        base = seconds.get(head)
        if base is None:
            if len(seconds) > 10_000:
                seconds.clear()
            base = seconds[head] = parse_iso(value) - micros
        return base + micros

    def ms_string(value: Any) -> int:
        if type(value) is not str or not value.isdigit():
            raise ProtocolError(f"timestamp {value!r} is not a string of milliseconds")
        return checked(int(value) * 1000, value)

    scale = {"us": 1, "ms": 1000, "s": 1_000_000}.get(fmt, 0)

    def number(value: Any) -> int:
        kind = type(value)
        if kind is int:
            return checked(value * scale, value)
        if kind is float and value == value:  # NaN is not a time
            return checked(round(value * scale), value)
        raise ProtocolError(f"timestamp {value!r} is not a number of {fmt}")

    return iso if fmt == "iso" else ms_string if fmt == "ms_string" else number


def _out_of_range(**values: float) -> ProtocolError:
    """Which decoded number breaks its range: prices > 0, sizes ≥ 0, all finite (NaN fails)."""
    for field, value in values.items():
        if not (0.0 <= value < _INF if field.endswith("size") else 0.0 < value < _INF):
            return ProtocolError(f"{field} out of range: {value!r}")
    raise AssertionError(f"no value out of range in {values}")


def _volume(value: str | float) -> int | Decimal:
    """Cumulative volume, exact: differences of floats would drift (0.3 - 0.1 ≠ 0.2)."""
    if type(value) is str and value.isdigit():
        return int(value)
    if type(value) is int:
        volume: int | Decimal = value
    else:
        try:
            volume = Decimal(repr(value) if type(value) is float else value)
        except InvalidOperation:
            raise ProtocolError(f"bad decimal in volume: {value!r}") from None
        if not volume.is_finite():
            raise ProtocolError(f"volume out of range: {value!r}")
    if volume < 0:
        raise ProtocolError(f"volume out of range: {value!r}")
    return volume


def _json_text(value: str | int | bool | None) -> str:
    """A side value's JSON text, its key in the mapping's value map."""
    if value is None or type(value) is bool:
        return "null" if value is None else "true" if value else "false"
    return str(value)


class _Last:
    """Per-symbol state on one connection: what side inference and volume deltas look back on."""

    __slots__ = ("ask", "bid", "id_n", "id_ts", "price", "side", "volume", "volume_ts")

    def __init__(self) -> None:
        self.bid: float | None = None
        self.ask: float | None = None
        self.volume: int | Decimal | None = None
        self.volume_ts = 0
        self.price: float | None = None
        self.side: Side = "buy"
        self.id_ts = -1
        self.id_n = 0

    def copy(self) -> _Last:
        """For rolling back a batch of ticks that turns out malformed part-way."""
        twin = _Last()
        for name in self.__slots__:
            setattr(twin, name, getattr(self, name))
        return twin


class _Reader:
    """One tick's raw values (in :func:`_leaf_types` order) → its events."""

    def __init__(self, exchange: str, f: Fields, timestamp: Timestamp, cumulative: bool) -> None:
        self.exchange = exchange
        self.ts_path = f.ts
        self.time = _time_reader(timestamp)
        self.amount_name = "last_size" if f.last_size is not None else "volume"
        self.cumulative = cumulative
        self.has_trade_id = f.trade_id is not None
        self.has_side = f.side is not None
        self.side_values = {} if f.side is None else dict(f.side.values)

    def tick(
        self,
        values: tuple[Any, ...],
        recv_ts: int,
        events: list[MarketEvent],
        state: dict[str, _Last],
        symbol: str | None = None,
    ) -> None:
        """Every check first, so a malformed tick raises before it changes ``state``; then
        the volume delta, the side, the trade id and the last quote. ``symbol`` stands in
        when the tick does not name its own."""
        said, raw_ts, price, amount, bp, bs, ap, az, tid, raw_side = values
        if said is not None:
            symbol = said
        elif symbol is None:
            raise ProtocolError("tick has no symbol")
        if raw_ts is None:
            raise ProtocolError(f"tick has no timestamp at `{self.ts_path}`")
        ts = self.time(raw_ts)
        quoted = bp is not None and bs is not None and ap is not None and az is not None
        if quoted:
            if not (0.0 < bp < _INF and 0.0 < ap < _INF and 0.0 <= bs < _INF and 0.0 <= az < _INF):
                raise _out_of_range(bid_price=bp, bid_size=bs, ask_price=ap, ask_size=az)
        elif bp is not None or bs is not None or ap is not None or az is not None:
            raise ProtocolError("tick has an incomplete quote (needs bid and ask price+size)")
        volume = trade_id = side = None
        if amount is not None:
            if price is None:
                raise ProtocolError(f"tick has a {self.amount_name} but no last_price")
            if not 0.0 < price < _INF:
                raise _out_of_range(last_price=price)
            if self.cumulative:
                volume, amount = _volume(amount), None
            elif not 0.0 <= amount < _INF:
                raise ProtocolError(f"{self.amount_name} out of range: {amount!r}")
            if self.has_trade_id:
                if tid is None or tid == "":
                    raise ProtocolError(f"trade id must be a non-empty string or integer: {tid!r}")
                trade_id = str(tid)
            if self.has_side:
                key = _json_text(raw_side)
                said_side = self.side_values.get(key)
                if said_side is None:
                    raise ProtocolError(f"side value {key!r} is not in the mapping's side values")
                side = None if said_side == "infer" else said_side
        # -- checked: from here on nothing raises --
        last = state.get(symbol)
        if last is None:
            last = state[symbol] = _Last()
        if volume is not None:  # cumulative: the traded size is the rise since the last tick
            previous = last.volume
            if previous is None or ts >= last.volume_ts:  # an older tick is counted already
                last.volume, last.volume_ts = volume, ts
                if previous is not None and volume > previous:  # not: first, same, new session
                    amount = float(volume - previous)
        if amount:
            if side is None:
                side = _infer_side(last, price, bp, ap)
            last.price, last.side = price, side
            if trade_id is None:
                last.id_n = last.id_n + 1 if last.id_ts == ts else 0
                last.id_ts = ts
                trade_id = f"{ts}-{last.id_n}"
            events.append(Trade(self.exchange, symbol, ts, recv_ts, price, amount, side, trade_id))
        if quoted:
            last.bid, last.ask = bp, ap
            events.append(Quote(self.exchange, symbol, ts, recv_ts, bp, bs, ap, az))


def _infer_side(last: _Last, price: float, bid: float | None, ask: float | None) -> Side:
    """The quote rule against the quote before this tick (this tick's own if there was
    none), else the tick rule against the previous trade, else the previous side."""
    if last.bid is not None:
        bid, ask = last.bid, last.ask
    if ask is not None and price >= ask:
        return "buy"
    if bid is not None and price <= bid:
        return "sell"
    if last.price is not None and price != last.price:
        return "buy" if price > last.price else "sell"
    return last.side


# -- the protocol ---------------------------------------------------------------------------
def _expand(template: Any, symbols: list[str], symbol: str | None) -> Any:
    """Fill a subscribe template: ``"{symbols}"`` alone → the JSON list, inside a longer
    string → comma-separated; ``{symbol}`` → the one symbol of a per-symbol message."""
    if isinstance(template, str):
        if template == "{symbols}":
            return list(symbols)
        text = template.replace("{symbols}", ",".join(symbols))
        return text if symbol is None else text.replace("{symbol}", symbol)
    if isinstance(template, list):
        return [_expand(item, symbols, symbol) for item in template]
    if isinstance(template, dict):
        return {k: _expand(v, symbols, symbol) for k, v in template.items()}
    return template


def _mentions_symbol(template: Any) -> bool:
    if isinstance(template, str):
        return "{symbol}" in template
    if isinstance(template, list):
        return any(_mentions_symbol(item) for item in template)
    if isinstance(template, dict):
        return any(_mentions_symbol(v) for v in template.values())
    return False


class _Plan:
    """Everything :class:`VendorProtocol` derives once from a mapping; raises ValueError
    when the mapping's paths contradict each other."""

    def __init__(self, m: VendorMapping) -> None:
        self.mapping = m
        leaves = _leaf_types(exact_amount=m.volume_is_cumulative)
        # An acknowledgement is no tick either: skipped like an ignored message once it has
        # done its job (the first one makes the subscription acknowledged).
        self.layout = _Layout(_tick_paths(m.fields), leaves, m.message_path, m.ignore + m.ack)
        self.ack = [[(_dict_getter(path), value) for path, value in rule.items()] for rule in m.ack]
        self.reader = _Reader(m.name, m.fields, m.timestamp, m.volume_is_cumulative)
        self.rest_layout: _Layout | None = None
        self.rest_reader: _Reader | None = None
        if m.rest is not None:
            fields = _merge(m.fields, m.rest.fields)
            quote_only = msgspec.structs.replace(
                fields, last_price=None, last_size=None, volume=None, trade_id=None, side=None
            )
            rest_paths = _tick_paths(quote_only)
            self.rest_layout = _Layout(rest_paths, leaves, m.rest.message_path, [])
            self.rest_reader = _Reader(m.name, quote_only, m.rest.timestamp or m.timestamp, False)
        subscribe = m.subscribe
        self.templates: list[Template] = (
            [] if subscribe is None else subscribe if isinstance(subscribe, list) else [subscribe]
        )
        beat = m.heartbeat
        self.heartbeat = msgspec.json.encode(beat).decode() if isinstance(beat, dict) else beat


class VendorProtocol(VenueProtocol):
    """The registry's ``vendor`` entry; usable only as configured by :func:`vendor_protocol`.

    No book and no sequence numbers: a vendor tick feed yields quotes and trades, in arrival
    order, and has no trade history to backfill from."""

    name: ClassVar[str] = "vendor"
    default_ws_url: ClassVar[str] = ""
    sequenced: ClassVar[bool] = False
    has_book: ClassVar[bool] = False
    acknowledged_by_data: ClassVar[bool] = True
    heartbeat_interval: ClassVar[float] = 0.0
    plan: ClassVar[_Plan | None] = None

    def __init__(self, symbols: list[str]) -> None:
        if self.plan is None:
            raise UsageError(
                "the vendor venue needs a mapping file: workbench record vendor SYMBOL... "
                "--mapping FILE (examples in data/vendors/)"
            )
        super().__init__(symbols)
        self._plan = self.plan
        self._last: dict[str, _Last] = {}
        self._acked = False
        """Whether an ``ack`` rule matched or a tick arrived on this connection: until then
        each message is checked against the ``ack`` rules."""

    def pair(self, symbol: str) -> tuple[str, str]:
        """Equities have no base/quote pair: the symbol and the mapping's ``currency``."""
        currency = self._plan.mapping.currency
        return (symbol, currency) if currency is not None else super().pair(symbol)

    def subscribe_messages(self) -> list[str]:
        out: list[str] = []
        for template in self._plan.templates:
            targets: list[str | None] = list(self.symbols) if _mentions_symbol(template) else [None]
            for symbol in targets:
                message = _expand(template, self.symbols, symbol)
                out.append(msgspec.json.encode(message).decode())
        return out

    def heartbeat_message(self) -> str | None:
        return self._plan.heartbeat

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        """One message: a tick object, a list of ticks, or a wrapper holding either at
        ``message_path``; a message matching an ``ignore`` rule (acks, pongs) gives nothing.
        The first message of a connection that matches an ``ack`` rule gives
        :class:`~workbench.events.Subscribed` for every symbol (a vendor's acknowledgement
        rarely names them); without one, a symbol's first tick is the proof
        (``acknowledged_by_data``)."""
        if not self._acked and self._plan.ack and self._is_ack(payload):
            self._acked = True
            return [Subscribed(self.name, list(self.symbols), recv_ts)]
        layout = self._plan.layout
        try:
            msg = layout.decode(payload)
        except msgspec.DecodeError as exc:
            return self._undecodable(payload, exc)
        if type(msg) is not list:
            for read_rule, matches in layout.ignore:
                if read_rule(msg) in matches:
                    return []
            if layout.message is not None:
                msg = layout.message(msg)
                if msg is None:
                    path = self._plan.mapping.message_path
                    raise ProtocolError(f"message has no ticks at `{path}` and no ignore rule")
        values, tick = layout.values, self._plan.reader.tick
        events: list[MarketEvent] = []
        if type(msg) is list and len(msg) == 1:
            msg = msg[0]
        self._acked = True  # a tick proves the subscription: stop looking for the ack
        if type(msg) is not list:
            tick(values(msg), recv_ts, events, self._last)
            return events
        saved = {symbol: last.copy() for symbol, last in self._last.items()}
        try:
            for item in msg:
                tick(values(item), recv_ts, events, self._last)
        except ProtocolError:
            self._last = saved  # a quarantined batch changes nothing
            raise
        return events

    def _is_ack(self, payload: bytes) -> bool:
        """Whether ``payload`` matches an ``ack`` rule (read as plain JSON: checked only
        until the first acknowledgement or tick, so its cost is paid a few times per connection)."""
        try:
            msg = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            return False
        return type(msg) is dict and any(
            all(get(msg) == value for get, value in rule) for rule in self._plan.ack
        )

    def _undecodable(self, payload: bytes, exc: msgspec.DecodeError) -> list[MarketEvent]:
        """Not the tick shape: an ignored message of another shape, or malformed."""
        try:
            if self._plan.layout.ignored(payload):
                return []
        except msgspec.DecodeError:
            raise ProtocolError(f"not JSON: {exc}") from None
        raise ProtocolError(str(exc)) from None

    # -- polling source -------------------------------------------------------------------
    def ticker_path(self, symbol: str) -> str | None:
        rest = self._plan.mapping.rest
        if rest is None:
            return None
        return rest.ticker_path.replace("{symbol}", quote(symbol, safe=""))

    def parse_ticker(self, body: bytes, symbol: str, recv_ts: int) -> Quote:
        """A REST ticker body (the object, a one-element list, or either at the REST
        ``message_path``) → the symbol's quote; the body need not repeat the symbol."""
        layout, reader = self._plan.rest_layout, self._plan.rest_reader
        if layout is None or reader is None:
            raise NotImplementedError(f"{self.name} has no REST ticker")
        try:
            msg = layout.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"REST ticker: {exc}") from None
        if layout.message is not None and type(msg) is not list:
            msg = layout.message(msg)
        if type(msg) is list:
            msg = msg[0] if len(msg) == 1 else None
        if msg is None:
            raise ProtocolError("REST ticker: the body holds no ticker object")
        events: list[MarketEvent] = []
        reader.tick(layout.values(msg), recv_ts, events, {}, symbol)
        if not events:
            raise ProtocolError("REST ticker: the body has no bid and ask")
        (quote,) = events
        assert isinstance(quote, Quote)
        if quote.symbol != symbol:
            raise ProtocolError(f"REST ticker for {quote.symbol!r}, asked for {symbol!r}")
        return quote


def vendor_protocol(mapping: VendorMapping) -> type[VenueProtocol]:
    """A :class:`VendorProtocol` subclass configured by ``mapping`` (class vars from it)."""
    try:
        _check(mapping)
        plan = _Plan(mapping)
    except ValueError as exc:
        raise UsageError(f"vendor mapping {mapping.name}: {exc}") from None
    heartbeat = mapping.heartbeat_interval if mapping.heartbeat is not None else 0.0
    namespace: dict[str, Any] = {
        "name": mapping.name,
        "default_ws_url": mapping.ws_url or "",
        "default_rest_url": mapping.rest.url if mapping.rest is not None else None,
        "heartbeat_interval": heartbeat,
        "stale_after": mapping.stale_after,
        "plan": plan,
        "__doc__": f"Vendor tick feed {mapping.name!r}, configured by a mapping.",
    }
    return type(f"VendorProtocol_{mapping.name}", (VendorProtocol,), namespace)
