"""Fixtures shared by the app tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def demo_platforms() -> list[str]:
    """The platforms `loyalsync demo` syncs: every installed connector that ships a demo (the three
    built-ins, and any connector `loyalsync new-connector` generated), sorted by name."""
    from app.demo import demo_setups

    return sorted(demo_setups(orders=1, reviews=1))
