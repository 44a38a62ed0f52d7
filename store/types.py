"""Column types that keep Python's Decimal and aware UTC datetimes exact on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, DateTime, Numeric, String, type_coerce
from sqlalchemy.engine import Dialect
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

__all__ = ["Binders", "Money", "Readers", "UTCDateTime", "binders", "raw", "readers"]

NAIVE_DATETIME = "naive datetime given to the store; convert to aware UTC in mapping"


class Money(TypeDecorator[Decimal]):
    """Exact decimal money: NUMERIC on PostgreSQL, text on SQLite (which has no decimal type)."""

    impl = Numeric(20, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(Numeric(20, 4, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return str(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        # Equal in value on both backends; PostgreSQL pads the scale to 4 places, exports format it.
        return value if isinstance(value, Decimal) else Decimal(value)

    @property
    def python_type(self) -> type:
        return Decimal


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out; naive values are refused, never guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(NAIVE_DATETIME)
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    @property
    def python_type(self) -> type:
        return datetime


@dataclass(frozen=True, slots=True)
class Binders:
    """What the driver receives for a value of each non-trivial column type, on one dialect.

    Exactly what the column types' bind processors produce (SQLAlchemy runs those per value of
    every row, which costs more than the database itself at ingest rates); the store's bulk
    upserts build their rows with these instead.
    """

    utc: Callable[[datetime | None], Any]
    money: Callable[[Decimal | None], Any]
    boolean: Callable[[bool | None], Any]


_DAY_TEXT: dict[int, str] = {}  # day ordinal -> "YYYY-MM-DD": the days a process writes (a few thousand)


def _sqlite_utc(value: datetime | None) -> str | None:
    """UTCDateTime on SQLite: naive UTC in SQLAlchemy's text format "YYYY-MM-DD HH:MM:SS.ffffff".

    The date part comes from a cache by day and the time is %-formatted: a third of the cost of
    `isoformat` on an aware datetime, which a rebuild calls four million times (bench/loyalty.py)."""
    if value is None:
        return None
    tz = value.tzinfo
    if tz is not UTC:
        if tz is None:
            raise ValueError(NAIVE_DATETIME)
        value = value.astimezone(UTC)
    ordinal = value.toordinal()
    day = _DAY_TEXT.get(ordinal)
    if day is None:
        if len(_DAY_TEXT) >= 100_000:  # bounded, whatever a process is given
            _DAY_TEXT.clear()
        day = _DAY_TEXT[ordinal] = value.date().isoformat()
    # %-formatting: measured faster here than an f-string with format specs
    return "%s %02d:%02d:%02d.%06d" % (day, value.hour, value.minute, value.second, value.microsecond)  # noqa: UP031


def _sqlite_money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


_PROBES: dict[str, tuple[Any, ...]] = {
    "utc": (None, datetime(2026, 8, 18, 9, 41, 27, 5, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
            datetime.fromisoformat("2026-08-18T23:59:59.999999+03:00")),
    "money": (None, Decimal("1248.32"), Decimal("0.10"), Decimal("1E+3"), Decimal("-0.00")),
}
_BINDERS: dict[tuple[str, str], Binders] = {}


def binders(dialect: Dialect) -> Binders:
    """The converters for `dialect`: shortcuts on SQLite, checked against the real processors."""
    key = (dialect.name, dialect.driver)
    found = _BINDERS.get(key)
    if found is not None:
        return found

    def processor(type_: TypeEngine[Any]) -> Callable[[Any], Any]:
        process = type_.dialect_impl(dialect).bind_processor(dialect)
        return process if process is not None else (lambda value: value)

    generic = {"utc": processor(UTCDateTime()), "money": processor(Money()),
               "boolean": processor(Boolean())}
    chosen = dict(generic)
    if dialect.name == "sqlite":
        for name, fast in (("utc", _sqlite_utc), ("money", _sqlite_money)):
            if all(fast(v) == generic[name](v) for v in _PROBES[name]):
                chosen[name] = fast
    found = _BINDERS[key] = Binders(**chosen)
    return found


@dataclass(frozen=True, slots=True)
class Readers:
    """What a raw driver value of each non-trivial column type becomes in Python, on one dialect:
    exactly what the column types' result processors give, for bulk reads that select `raw` columns
    (the processors run per value and cost more than the database at the loyalty job's volumes)."""

    utc: Callable[[Any], datetime | None]
    money: Callable[[Any], Decimal | None]


_UTC_SUFFIX = "+00:00"


def _sqlite_read_utc(value: Any) -> datetime | None:
    """UTCDateTime on SQLite: naive UTC text to an aware datetime in one parse."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value + _UTC_SUFFIX)
    except (TypeError, ValueError):  # not the stored text format: the column type's own way
        return _READERS_GENERIC[("sqlite", "utc")](value)


def _sqlite_read_money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


_RAW_PROBES: dict[str, tuple[Any, ...]] = {
    "utc": (None, "2026-08-18 09:41:27.000005", "0001-01-01 00:00:00.000000", "2026-08-18 20:59:59.999999",
            "2026-08-18 09:41:27"),
    "money": (None, "1248.32", "0.10", "1E+3", "-0.00"),
}
_READERS: dict[tuple[str, str], Readers] = {}
_READERS_GENERIC: dict[tuple[str, str], Callable[[Any], Any]] = {}


def readers(dialect: Dialect) -> Readers:
    """The raw-value converters for `dialect`: shortcuts on SQLite, checked against the real processors."""
    key = (dialect.name, dialect.driver)
    found = _READERS.get(key)
    if found is not None:
        return found

    def processor(type_: TypeDecorator[Any]) -> Callable[[Any], Any]:
        if dialect.name != "sqlite":  # psycopg gives datetimes and Decimals: the decorator's own step
            return lambda value: type_.process_result_value(value, dialect)
        process = type_.dialect_impl(dialect).result_processor(dialect, None)
        return process if process is not None else (lambda value: value)

    generic = {"utc": processor(UTCDateTime()), "money": processor(Money())}
    chosen = dict(generic)
    if dialect.name == "sqlite":
        _READERS_GENERIC[("sqlite", "utc")] = generic["utc"]
        for name, fast in (("utc", _sqlite_read_utc), ("money", _sqlite_read_money)):
            if all(fast(v) == generic[name](v) for v in _RAW_PROBES[name]):
                chosen[name] = fast
    found = _READERS[key] = Readers(**chosen)
    return found


def raw(column: Any) -> Any:
    """`column` selected without result processing (its raw driver value; convert with `readers`)."""
    return type_coerce(column, NullType()).label(column.name)
