"""The shared fault plan: short pages are never empty and never the true end; late changes are
handed to the emulator that builds its data."""

from __future__ import annotations

from connectors.emulation import LATE_CHANGE_AGE, Fault, FaultPlan

PATH = "/api/v3/orders"


def test_a_short_page_keeps_at_least_one_record_and_fewer_than_all():
    plan = FaultPlan((Fault(PATH, "short_page", times=None),), seed=3)
    page = list(range(10))
    for _ in range(200):
        served = plan.shorten(PATH, page, more=True)
        assert 1 <= len(served) < len(page) and served == page[: len(served)]
    assert len(plan.short_pages) == 200 and {p for p, _, _ in plan.short_pages} == {PATH}
    assert len({n for _, n, _ in plan.short_pages}) > 3, "the cut should vary"


def test_the_last_page_and_other_paths_are_never_cut():
    plan = FaultPlan((Fault(PATH, "short_page", times=None),), seed=3)
    assert plan.shorten(PATH, [1, 2, 3], more=False) == [1, 2, 3]  # a short last page is the truth
    assert plan.shorten(PATH, [1], more=True) == [1]  # nothing to cut without emptying it
    assert plan.shorten("/api/v1/feedbacks", [1, 2, 3], more=True) == [1, 2, 3]
    assert plan.short_pages == []


def test_short_pages_follow_times_and_probability():
    plan = FaultPlan((Fault(PATH, "short_page", times=2),), seed=1)
    cut = [len(plan.shorten(PATH, list(range(5)), more=True)) < 5 for _ in range(6)]
    assert cut == [True, True, False, False, False, False]
    sometimes = FaultPlan((Fault(PATH, "short_page", times=None, probability=0.5),), seed=1)
    cuts = sum(len(sometimes.shorten(PATH, list(range(5)), more=True)) < 5 for _ in range(400))
    assert 140 < cuts < 260


def test_a_short_page_fault_is_not_a_request_fault():
    plan = FaultPlan((Fault(PATH, "short_page", times=None), Fault(PATH, "late_change", times=3)), seed=1)
    assert plan.pick(PATH) is None  # the request stage sees neither
    assert [f.kind for f in plan.late_changes()] == ["late_change"]
    assert plan.late_changes()[0].age == LATE_CHANGE_AGE
