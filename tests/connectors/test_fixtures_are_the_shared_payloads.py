"""The payloads the connector tests read (tests/fixtures/<platform>) are the shared reference's,
byte for byte, where a platform's folder is a whole copy of it. The reference sits beside the
checkout (`../shared`, as on CI); without it the project still tests, and this check skips."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "marketplaces" / "payloads"


@pytest.mark.parametrize("platform", ["kaspi", "avito", "megamarket"])
def test_the_fixtures_are_the_shared_payloads_unchanged(platform: str) -> None:
    shared, fixtures = SHARED / platform, ROOT / "tests" / "fixtures" / platform
    if not shared.is_dir():
        pytest.skip(f"{shared} is not on this machine (the shared reference beside the checkout)")
    assert sorted(p.name for p in fixtures.iterdir()) == sorted(p.name for p in shared.iterdir())
    assert all((fixtures / p.name).read_bytes() == p.read_bytes() for p in shared.iterdir())
