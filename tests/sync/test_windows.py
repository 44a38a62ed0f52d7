"""Window planning: lookback, lag, window size, first run, re-scans, monotonic cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.base import CursorKind, RecordType, StreamSpec
from sync.windows import next_cursor, plan_run

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SPEC = StreamSpec(name="orders", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW, window=30 * DAY,
                  lookback=14 * DAY, lag=timedelta(minutes=2), start_history=89 * DAY,
                  poll_interval=timedelta(minutes=10), rescan_lookback=60 * DAY, rescan_every=DAY)


def test_first_run_covers_start_history_in_contiguous_windows_up_to_the_lag():
    plan = plan_run(SPEC, None, None, NOW)
    assert plan.windows[0].start == NOW - 89 * DAY
    assert plan.windows[-1].end == NOW - timedelta(minutes=2)
    assert all(w.end - w.start <= 30 * DAY for w in plan.windows)
    assert all(a.end == b.start for a, b in zip(plan.windows, plan.windows[1:], strict=False))
    assert not plan.rescan


def test_next_run_starts_a_lookback_before_the_cursor():
    cursor = NOW - timedelta(hours=1)
    plan = plan_run(SPEC, cursor, NOW - timedelta(hours=2), NOW)
    assert plan.windows[0].start == cursor - 14 * DAY and not plan.rescan


def test_daily_rescan_widens_the_lookback():
    cursor = NOW - timedelta(hours=1)
    plan = plan_run(SPEC, cursor, NOW - 2 * DAY, NOW)
    assert plan.rescan and plan.windows[0].start == cursor - 60 * DAY


def test_a_cursor_older_than_the_platforms_history_is_clamped():
    plan = plan_run(SPEC, NOW - 400 * DAY, NOW, NOW)
    assert plan.windows[0].start == NOW - 89 * DAY


def test_high_water_streams_get_one_open_span():
    spec = StreamSpec(name="s", record_type=RecordType.ORDER, cursor=CursorKind.HIGH_WATER, window=DAY,
                      lookback=timedelta(hours=2), lag=timedelta(0), start_history=10 * DAY,
                      poll_interval=timedelta(minutes=30))
    plan = plan_run(spec, NOW - DAY, None, NOW)
    assert len(plan.windows) == 1 and plan.windows[0].start == NOW - DAY - timedelta(hours=2)


def test_nothing_to_do_when_the_cursor_is_within_the_lag():
    spec = StreamSpec(name="s", record_type=RecordType.ORDER, cursor=CursorKind.WINDOW, window=DAY,
                      lookback=timedelta(0), lag=timedelta(minutes=5), start_history=DAY,
                      poll_interval=timedelta(minutes=1))
    assert plan_run(spec, NOW - timedelta(minutes=1), None, NOW).windows == ()


def test_cursors_never_move_back():
    assert next_cursor(NOW, NOW - DAY) == NOW
    assert next_cursor(NOW - DAY, NOW) == NOW
    assert next_cursor(None, NOW) == NOW


def test_an_accounts_lag_override_holds_the_runs_upper_bound_back():
    from pydantic import SecretStr

    from connectors.base import StreamSettings
    from connectors.yandex_market.connector import STREAMS
    from connectors.yandex_market.settings import YandexMarketAccountSettings

    account = YandexMarketAccountSettings(
        name="main", token_env="T", token=SecretStr("t"), business_id=1,
        streams={"reviews": StreamSettings(lag=timedelta(minutes=30))})
    spec = account.stream_spec(STREAMS["reviews"])
    assert spec.lag == timedelta(minutes=30) != STREAMS["reviews"].lag
    assert plan_run(spec, None, None, NOW).windows[-1].end == NOW - timedelta(minutes=30)
    assert account.stream_spec(STREAMS["orders"]).lag == STREAMS["orders"].lag  # others keep the default
