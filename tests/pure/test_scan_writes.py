"""tasks/poll_plan.ScanWrites: when a sweep writes its plan between pages. Pure."""

from __future__ import annotations

from tasks.poll_plan import Plan, ScanWrites


def test_a_sweep_writes_its_first_page_then_pages_with_writes_and_renews_its_lease_every_few_seconds() -> None:
    writes, plan = ScanWrites("artistree:scan:p", lease=60.0), Plan("e")
    assert writes.due(plan, 100.0) and plan.reschedule == {"artistree:scan:p": 160.0}
    plan.reschedule.clear()
    plan.health.answered.add("artistree")  # a page that changed nothing
    assert not writes.due(plan, 102.0) and plan.reschedule == {}
    plan.errors.append("artistree:order:1")  # a page with a write of its own
    assert writes.due(plan, 103.0) and plan.reschedule == {"artistree:scan:p": 163.0}
    plan.clear_writes()
    assert not writes.due(plan, 107.9)
    assert writes.due(plan, 108.0) and plan.reschedule == {"artistree:scan:p": 168.0}  # 5 s since the last


def test_a_short_lease_is_renewed_within_a_third_of_it() -> None:
    writes, plan = ScanWrites("artistree:scan:p", lease=1.5), Plan("e")
    assert writes.due(plan, 0.0)
    plan.clear_writes()
    assert not writes.due(plan, 0.4) and writes.due(plan, 0.5)
