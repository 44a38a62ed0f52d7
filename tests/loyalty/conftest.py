"""Shared by the actions crash tests: an executor that dies between sending and recording."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest


class Killed(BaseException):
    """The executor dies here: nothing after this line runs, no handler records anything."""


class Killer:
    """Makes `loyalty.outbox._done` die after a send the platform applied, with `probability`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        import loyalty.outbox as outbox

        self.kills = 0
        self._monkeypatch, self._outbox = monkeypatch, outbox

    def arm(self, seed: str, probability: float) -> None:
        dice, real_done = random.Random(seed), self._outbox._done

        def dying_done(store, row, result, step, at):
            if step == "send" and dice.random() < probability:  # applied on the platform, not recorded
                self.kills += 1
                raise Killed
            return real_done(store, row, result, step, at)

        self._monkeypatch.setattr(self._outbox, "_done", dying_done)

    async def restart_until_settled(self, run_once: Callable, pending: Callable[[], bool], passes: int = 200) -> None:
        """Run the executor again after every kill (each pass is a restart) until nothing is pending."""
        for _ in range(passes):
            try:
                await run_once()
            except Killed:
                continue
            if not pending():
                return


@pytest.fixture
def killer(monkeypatch: pytest.MonkeyPatch) -> Killer:
    return Killer(monkeypatch)
