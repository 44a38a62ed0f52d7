"""Loyalty rules load with the config: every mistake is one line, and rating-based rewards never load."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from app.config import load_config
from connectors.errors import ConfigError
from loyalty.rules import LoyaltySettings

VALID = """
[loyalty]
enabled = true
earn_rate = 0.05
return_window = "14d"

[[loyalty.tiers]]
name = "base"
min_spend = 0
earn_rate = 0.03

[[loyalty.tiers]]
name = "gold"
min_spend = 20000
earn_rate = 0.07

[loyalty.welcome]
points = 100

[loyalty.every_nth]
n = 5
points = 300
period = "180d"

[[loyalty.offers]]
name = "winback"
starts = 2026-11-27T00:00:00+03:00
ends = 2026-11-30T00:00:00+03:00
multiplier = 2
segments = ["at_risk", "sleeping"]
conditions = [{ field = "total", op = "ge", value = 3000 }]

[loyalty.marketplaces.ozon]
return_window = "7d"
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "loyalsync.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(path, env={})


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return info.value.problems


def test_a_full_program_loads_with_typed_values(tmp_path: Path):
    loyalty = load(tmp_path, VALID).settings.loyalty
    assert loyalty.enabled and [t.name for t in loyalty.tiers] == ["base", "gold"]
    assert loyalty.tiers[1].earn_rate == Decimal("0.07") and loyalty.every_nth.period == timedelta(days=180)
    assert loyalty.offers[0].segments == ("at_risk", "sleeping")
    assert loyalty.return_window_for("ozon") == timedelta(days=7)
    assert loyalty.return_window_for("yandex_market") == timedelta(days=14)


def test_the_program_is_off_by_default():
    assert LoyaltySettings().enabled is False


@pytest.mark.parametrize("field", ["rating", "review_rating", "review.text", "stars", "productValuation",
                                   "sentiment", "pros"])
def test_a_reward_conditioned_on_a_review_is_refused_at_load(tmp_path: Path, field: str):
    condition = f'{{ field = "{field}", op = "ge", value = 5 }}'
    text = VALID.replace('{ field = "total", op = "ge", value = 3000 }', condition)
    [line] = problems(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'loyalsync.toml'}: loyalty.offers[0].conditions[0].field: ")
    assert "may not depend on a review's rating or text" in line


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (("min_spend = 20000", "min_spend = 0"), "loyalty.tiers", "each higher than the last"),
        (('name = "gold"', 'name = "base"'), "loyalty.tiers", "tier names must be unique"),
        (("min_spend = 20000", "min_orders = 5"), "loyalty.tiers", "all tiers use min_spend"),
        (("earn_rate = 0.07", "earn_rate = 7"), "loyalty.tiers[1].earn_rate", "less than or equal to 1"),
        (("n = 5", "n = 1"), "loyalty.every_nth.n", "greater than or equal to 2"),
        (('period = "180d"', 'period = "half a year"'), "loyalty.every_nth.period", "is not a duration"),
        (("ends = 2026-11-30T00:00:00+03:00", "ends = 2026-11-26T00:00:00+03:00"), "loyalty.offers[0]",
         "ends must be after starts"),
        (("multiplier = 2", "multiplier = 1"), "loyalty.offers[0]", "needs a multiplier above 1"),
        (('segments = ["at_risk", "sleeping"]', 'segments = ["vip"]'), "loyalty.offers[0].segments[0]",
         "'new', 'active', 'at_risk', 'sleeping' or 'lost'"),
        (('field = "total"', 'field = "buyer_name"'), "loyalty.offers[0].conditions[0].field",
         "unknown order field 'buyer_name'"),
        (("points = 100", "points = 0"), "loyalty.welcome.points", "greater than 0"),
    ],
)
def test_each_bad_rule_names_its_key(tmp_path: Path, change, key, message):
    [line] = problems(tmp_path, VALID.replace(*change))
    assert f": {key}: " in line and message in line, line
