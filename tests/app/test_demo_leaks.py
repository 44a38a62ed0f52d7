"""A full demo run with sentinel tokens and sentinel buyer data: none of it in the logs (JSON, debug
level, every library included), on the console, or in the store."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

import connectors.ozon.emulator_data as ozon_data
import connectors.wildberries.emulator_data as wb_data
import connectors.yandex_market.emulator_data as ym_data
from app.demo import demo_setups, run_demo
from app.logs import setup_logging

NAME, PHONE, EMAIL = "Сентинелла", "+79990001122", "sentinel.buyer@example.org"


@pytest.fixture
def sentinel_buyers(monkeypatch) -> Counter:
    """Every buyer in every emulator is the same sentinel person; counts how often each was handed out."""
    served: Counter = Counter()

    def give(what: str, value):
        def handed_out(self, _i):
            served[what] += 1
            return value
        return handed_out

    monkeypatch.setattr(ozon_data.PostingTable, "buyer_name", give("ozon name", f"{NAME} Тестовая"))
    monkeypatch.setattr(ozon_data.PostingTable, "buyer_email", give("ozon email", EMAIL))
    monkeypatch.setattr(ozon_data.PostingTable, "phone", give("ozon phone", PHONE))
    monkeypatch.setattr(ym_data.Buyers, "name", give("ym name", ("Тестова", NAME, "Ивановна")))
    monkeypatch.setattr(ym_data.Buyers, "phone", give("ym phone", PHONE))
    monkeypatch.setattr(wb_data, "_NAMES", (NAME,))
    return served


def test_a_full_demo_leaks_no_token_and_no_buyer_data(sentinel_buyers, tmp_path: Path):
    setups = demo_setups(orders=400, reviews=150)
    tokens = [secret for s in setups.values() for secret in s.secrets]
    assert tokens, "the demo accounts carry tokens"
    logs, console = io.StringIO(), io.StringIO()
    setup_logging(tokens, verbose=True, fmt="json", stream=logs)
    try:
        summary = asyncio.run(run_demo(orders=400, reviews=150, database_url=f"sqlite:///{tmp_path / 'demo.db'}",
                                       console=Console(file=console, width=120), setups=setups))
    finally:
        for handler in list(logging.getLogger().handlers):
            if getattr(handler, "_loyalsync", False):
                logging.getLogger().removeHandler(handler)
    assert summary.ok
    lines = logs.getvalue().splitlines()
    assert len(lines) > 20 and all(json.loads(line)["level"] for line in lines), "debug logs were captured"
    # The emulators really did hand out the sentinel person (else this test proves nothing).
    assert all(sentinel_buyers[k] > 0 for k in ("ozon name", "ozon email", "ozon phone", "ym name", "ym phone")), \
        sentinel_buyers
    stored = (tmp_path / "demo.db").read_bytes()
    for where, text in (("logs", logs.getvalue()), ("console", console.getvalue())):
        for secret in (*tokens, NAME, PHONE, EMAIL, PHONE.removeprefix("+")):
            assert secret not in text, f"{secret!r} in the {where}"
    for secret in (*tokens, NAME, PHONE, EMAIL):
        assert secret.encode() not in stored, f"{secret!r} in the store"
