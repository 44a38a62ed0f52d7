"""Streams are declared objects: each connector's table carries fetch, mapping, key and cursor kind."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import Connector, CursorKind, MappingContext, Page, RecordType, StreamSpec, Window
from connectors.registry import available_connectors
from connectors.streams import Stream, stream_table

CONNECTORS = sorted(available_connectors().items())
DAY = timedelta(days=1)


def _spec(name: str) -> StreamSpec:
    return StreamSpec(name=name, record_type=RecordType.ORDER, cursor=CursorKind.WINDOW, window=DAY,
                      lookback=DAY, lag=timedelta(0), start_history=DAY)


@pytest.mark.parametrize(("name", "cls"), CONNECTORS)
def test_every_stream_is_declared_in_the_table(name: str, cls: type[Connector]) -> None:
    assert cls.stream_table, name
    assert dict(cls.streams) == {n: s.spec for n, s in cls.stream_table.items()}
    assert all(n == s.spec.name and s.key for n, s in cls.stream_table.items())
    # The base class dispatches on the table: no connector branches on a stream's name itself.
    for method in ("fetch", "map_record", "record_key"):
        assert getattr(cls, method) is getattr(Connector, method), f"{name} overrides {method}"


@pytest.mark.parametrize(("name", "cls"), CONNECTORS)
def test_record_key_reads_the_field_the_stream_declares(name: str, cls: type[Connector]) -> None:
    connector = cls.__new__(cls)  # keys need no client
    for stream, declared in cls.stream_table.items():
        assert connector.record_key(stream, {declared.key: 12}) == "12"
        assert connector.record_key(stream, {declared.key: ""}) is None
        assert connector.record_key(stream, ["not", "an", "object"]) is None
    assert connector.record_key("no_such_stream", {"id": 1}) is None
    with pytest.raises(KeyError, match=f"unknown {name} stream 'no_such_stream'"):
        connector.map_record("no_such_stream", {}, MappingContext(marketplace=name, account="a"))


class _Tiny(Connector):
    """A connector declared only through its table (the base supplies the rest)."""

    name = "tiny"
    stream_table = stream_table([
        Stream(_spec("things"), fetch=lambda conn, window: conn.pages(window), map=lambda raw, ctx: raw["mapped"],
               key="thingId"),
    ])

    async def pages(self, window: Window):  # the table's fetch reaches the connector it was built for
        yield Page(items=[{"thingId": "t-1", "mapped": window.start}])


@pytest.mark.anyio
async def test_the_base_class_fetches_maps_and_keys_through_the_table() -> None:
    assert inspect.isabstract(_Tiny) is False and list(_Tiny.streams) == ["things"]
    conn = _Tiny.__new__(_Tiny)
    window = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    pages = [page async for page in conn.fetch("things", window)]
    raw = pages[0].items[0]
    assert conn.map_record("things", raw, MappingContext(marketplace="tiny", account="a")) == window.start
    assert conn.record_key("things", raw) == "t-1"


def test_a_stream_declared_twice_is_refused() -> None:
    one = Stream(_spec("things"), fetch=lambda conn, window: conn, map=lambda raw, ctx: raw, key="id")
    with pytest.raises(ValueError, match="'things' is declared twice"):
        stream_table([one, one])
