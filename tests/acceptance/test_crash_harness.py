"""`loyalsync run` on SQLite, killed with SIGKILL at seeded random moments (5 in the suite, 12 with
`LOYALSYNC_FULL=1`, or `$LOYALSYNC_CRASH_KILLS`), ends exactly where an uninterrupted run ends, and
every action it sent landed exactly once.
See `crash_harness` for the harness and the command for a bigger run."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from tests.acceptance.crash_harness import (
    LEASE_SECONDS,
    LOYALSYNC,
    CrashReport,
    crash_and_compare,
    default_kills,
    differences,
    normalise,
)

SEED = 20260907


@pytest.mark.slow
def test_killed_daemon_ends_like_an_uninterrupted_one(tmp_path: Path) -> None:
    assert LOYALSYNC.exists(), f"no console script at {LOYALSYNC}: install the package (pip install -e .)"
    report = crash_and_compare(tmp_path, seed=SEED, replicas=1, database_url=f"sqlite:///{tmp_path / 'crash.db'}")

    assert report.kills == default_kills() and report.kills_while_working >= report.kills // 2
    assert report.exit_codes and all(code == 0 for code in report.exit_codes), report.exit_codes
    # The run did what it is meant to exercise: orders, a ledger, and each action kind really sent.
    sent = {a["kind"] for a in report.reference_actions_raw if a["status"] == "sent"}
    assert {"reply_to_review", "send_chat_message", "create_promo_code"} <= sent, sent
    assert {e["kind"] for e in report.reference["ledger"]} >= {"earn", "expire", "spend"}

    assert report.landed_more_than_once() == {}, "an action landed twice on a platform"
    assert report.sent_without_effect() == {}, "an action marked sent is not on the platform"
    assert report.export_differences() == {}, f"seed {SEED}: the crash run's exports differ"
    assert report.crash_effects == report.reference_effects, "the platforms saw different effects"
    assert "Traceback" not in report.logs


def _exports(buyer: str, lot_id: int, sent_at: str) -> dict[str, list[dict]]:
    order = {"marketplace": "ozon", "account": "a", "order_id": "o1", "buyer_key": buyer}
    lot = {"id": lot_id, "kind": "earn", "idempotency_key": "earn:ozon:a:o1:rate", "buyer_key": buyer,
           "effective_at": "2026-01-01T00:00:00+00:00"}
    expiry = {"id": lot_id + 7, "kind": "expire", "idempotency_key": f"expire:{lot_id}", "buyer_key": buyer,
              "effective_at": "2026-01-06T00:00:00+00:00"}
    promo = {"id": 3, "key": f"promo:ozon:a:{buyer}:0", "kind": "create_promo_code", "target": buyer,
             "params": {"buyer_key": buyer, "valid_until": sent_at}, "status": "sent", "attempts": 2,
             "created_at": sent_at, "updated_at": sent_at, "sent_at": sent_at, "platform_ref": "5000001"}
    return {"orders": [order], "reviews": [], "ledger": [lot, expiry], "actions": [promo]}


def test_the_comparison_ignores_salts_row_ids_and_wall_time_only() -> None:
    a = normalise(_exports("a" * 32, 11, "2026-01-01T10:00:00+00:00"))
    b = normalise(_exports("b" * 32, 42, "2026-01-01T10:05:00+00:00"))
    assert a == b
    assert a["ledger"][1]["idempotency_key"] == "expire:<earn:ozon:a:o1:rate>"
    assert a["actions"][0]["target"] == "buyer<ozon/a/o1>"
    changed = _exports("b" * 32, 42, "2026-01-01T10:05:00+00:00")
    changed["actions"][0]["status"] = "failed"
    assert differences(a["actions"], normalise(changed)["actions"], ("key",))


def test_a_promo_code_lapsed_for_points_is_timing_but_any_other_failure_is_a_difference() -> None:
    """One run proposed a code just before a return took its points back (failed, `points short`)
    and its next code got `…#2`; the other run proposed only the later code. Same effects, same
    ledger: equal. A code failed for any other reason, or missing, is a difference."""
    one = _exports("a" * 32, 11, "2026-01-01T10:00:00+00:00")
    other = _exports("a" * 32, 11, "2026-01-01T10:00:00+00:00")
    lapsed = {**one["actions"][0], "status": "failed", "detail": "points short: not sent, ..."}
    one["actions"] = [lapsed, {**one["actions"][0], "id": 4, "key": one["actions"][0]["key"] + "#2"}]
    assert normalise(one) == normalise(other)
    refused = {**lapsed, "detail": "platform refused: 400"}
    assert differences(normalise({**other, "actions": [refused]})["actions"], normalise(other)["actions"], ("key",))
    assert differences(normalise({**other, "actions": []})["actions"], normalise(other)["actions"], ("key",))


def test_an_effect_landing_twice_is_reported() -> None:
    reply = ("wildberries", "wb", "r1", "Спасибо")
    once = {"reply_to_review": Counter({reply: 1}), "send_chat_message": Counter(), "create_promo_code": Counter()}
    twice = {**once, "reply_to_review": Counter({reply: 1, (*reply[:3], "другой текст"): 1})}
    report = CrashReport(seed=0, kills=0, kills_while_working=0, seconds=0, crash={}, reference={}, crash_effects=twice,
                         reference_effects=once, crash_actions_raw=[], reference_actions_raw=[],
                         crash_attempts={}, reference_attempts={}, crash_vouchers={}, reference_vouchers={},
                         exit_codes=[], logs="")
    assert list(report.landed_more_than_once()) == ["crash/reply_to_review"]
    assert report.effect_differences() == {"reply_to_review": [("crash", (*reply[:3], "другой текст"), 1)]}


@pytest.mark.slow
@pytest.mark.postgres
def test_three_replicas_on_postgresql_one_killed_at_random(tmp_path: Path, pg_databases) -> None:
    """Every kill takes down one of 3 replicas; every fourth stays down for 1.5 lease periods, so the
    others take its accounts over (leases, fencing, outbox claims) before it comes back."""
    def stay_down_now_and_then(done: int, victim) -> None:
        if done % 4 == 0:
            time.sleep(1.5 * LEASE_SECONDS)

    report = crash_and_compare(tmp_path, seed=SEED + 1, replicas=3, database_url=pg_databases(),
                               reference_database_url=pg_databases(), on_kill=stay_down_now_and_then)

    assert report.kills == default_kills()
    assert report.exit_codes and all(code == 0 for code in report.exit_codes), report.exit_codes
    assert "took over" in report.logs, "no replica ever took a killed one's accounts over"
    sent = {a["kind"] for a in report.reference_actions_raw if a["status"] == "sent"}
    assert {"reply_to_review", "send_chat_message", "create_promo_code"} <= sent, sent
    assert report.landed_more_than_once() == {}, "an action landed twice on a platform"
    assert report.sent_without_effect() == {}, "an action marked sent is not on the platform"
    assert report.export_differences() == {}, f"seed {SEED + 1}: the crash run's exports differ"
    assert report.crash_effects == report.reference_effects, "the platforms saw different effects"
    assert "Traceback" not in report.logs
