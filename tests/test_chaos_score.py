"""chaos/score.py with plain values: what counts as observed, missed, lost with the data,
false, reused, duplicated, stuck, and how recovery is measured."""

from __future__ import annotations

import json
import math
from pathlib import Path

from chaos.report import RunData
from chaos.score import (
    Change,
    Delivery,
    FaultRecord,
    PollRequest,
    nearest_rank,
    score,
)

RK = "rev:order:TC1"
HOOK = ("webhook",)


def change(n: int, to: str, at: float, until: float | None, receivers: tuple[str, ...] = HOOK,
           rkey: str = RK) -> Change:
    return Change(n=n, rkey=rkey, to_state=to, at=at, until=until, receivers=receivers)


def body(event_id: str, to: str, detected: float, **extra: object) -> str:
    return json.dumps({"id": event_id, "data": {"to": to}, "detected_at": detected, **extra}, sort_keys=True)


def delivery(event_id: str, to: str, detected: float, received: float, receiver: str = "webhook",
             rkey: str = RK, event_type: str = "rev.order.state_changed", text: str | None = None) -> Delivery:
    return Delivery(receiver, event_id, event_type, rkey, to, float(int(detected)), received,
                    text if text is not None else body(event_id, to, int(detected)))


def test_a_change_seen_by_every_receiver_of_its_route_is_observed_with_its_latency() -> None:
    changes = [change(1, "Transcribing", 100.0, 110.0, ("webhook", "email"))]
    got = [delivery("evt_a", "Transcribing", 101.2, 101.5),
           delivery("evt_a", "Transcribing", 101.2, 103.0, receiver="email", text="mail a")]
    s = score(changes, got, [], [], 0)
    assert (s.changes, s.missed, s.false, s.reused_ids, s.dup_same_id, s.stuck_over_60s) == (1, 0, 0, 0, 0, 0)
    assert s.verdicts[0].status == "observed"
    assert s.verdicts[0].latency == 3.0  # the last receiver's first receipt


def test_a_change_one_receiver_never_got_is_missed() -> None:
    changes = [change(1, "Transcribing", 100.0, 110.0, ("webhook", "slack"))]
    s = score(changes, [delivery("evt_a", "Transcribing", 101, 101.5)], [], [], 0)
    assert s.missed == 1 and s.false == 0


def test_a_delivery_detected_outside_the_changes_lifetime_is_false_and_the_change_missed() -> None:
    changes = [change(1, "Complete", 100.0, 110.0), change(2, "Transcribing", 110.0, None)]
    # "Complete" detected at 130 while the order had been Transcribing for 20 s
    s = score(changes, [delivery("evt_x", "Complete", 130, 130.5), delivery("evt_y", "Transcribing", 111, 111.4)],
              [], [], 0)
    assert s.false == 1 and s.false_ids == ["evt_x"]
    assert [v.status for v in s.verdicts] == ["missed", "observed"]


def test_an_event_for_a_baseline_or_of_another_type_is_false() -> None:
    s = score([], [delivery("evt_b", "Transcribing", 5, 6),
                   delivery("evt_c", None, 5, 6, event_type="rev.order.comment_added")], [], [], 0)  # type: ignore[arg-type]
    assert s.false == 2


def test_the_same_state_twice_matches_each_change_by_its_lifetime() -> None:
    changes = [change(1, "B", 100, 108), change(2, "A", 108, 116), change(3, "B", 116, None)]
    got = [delivery("e1", "B", 101, 101.3), delivery("e2", "A", 109, 109.3), delivery("e3", "B", 117, 117.2)]
    s = score(changes, got, [], [], 0)
    assert [v.status for v in s.verdicts] == ["observed"] * 3
    assert [v.observed_at for v in s.verdicts] == [101.3, 109.3, 117.2]


def test_one_id_with_two_bodies_is_reused_and_the_same_body_twice_a_duplicate() -> None:
    changes = [change(1, "B", 100, 110), change(2, "C", 110, None)]
    got = [
        delivery("e1", "B", 101, 101.5),
        delivery("e1", "B", 101, 102.5),  # the same id and body again: allowed, counted
        delivery("e1", "B", 101, 103.0),
        delivery("e2", "C", 111, 111.5),
        delivery("e2", "C", 111, 112.0, text=body("e2", "C", 112)),  # same id, another body
    ]
    s = score(changes, got, [], [], 0)
    assert s.dup_same_id == 2
    assert s.reused_ids == 1 and s.reused == {"e2": ["detected_at"]}
    assert s.missed == 0


def test_latency_leaves_out_the_time_redis_did_not_answer() -> None:
    outage = FaultRecord("redis-down-60s", "redis", started=100.0, redis_back=160.0)
    other = "rev:order:TC2"
    changes = [change(1, "B", 101.0, 200.0), change(2, "C", 170.0, None),
               change(3, "D", 95.0, None, rkey=other)]  # made just before the outage
    got = [delivery("e1", "B", 161, 163.0), delivery("e2", "C", 171, 240.5),
           delivery("e3", "D", 96, 163.0, rkey=other)]
    s = score(changes, got, [outage], [PollRequest(160.5, "rev", (RK,))], 0)
    assert [v.latency for v in s.verdicts] == [3.0, 70.5, 8.0]
    assert s.stuck_over_60s == 1 and s.verdicts[1].stuck


def test_recovery_is_the_later_of_the_first_poll_and_the_first_delivery_of_a_change_made_after() -> None:
    outage = FaultRecord("redis-sigstop-20s", "redis", started=100.0, redis_back=120.0)
    changes = [change(1, "B", 110.0, 140.0), change(2, "C", 140.0, None, rkey="rev:order:TC2")]
    got = [delivery("e1", "B", 121, 122.0),  # made during the outage: not a recovery sign
           delivery("e2", "C", 141, 142.5, rkey="rev:order:TC2")]
    polls = [PollRequest(99.0, "rev", (RK,)), PollRequest(121.0, "rev", (RK,))]
    s = score(changes, got, [outage], polls, 0)
    fault = s.faults[0]
    assert fault.poll_recovery_s == 1.0
    assert fault.delivery_recovery_s == 22.5
    assert fault.recovery_s == 22.5 and s.recovery_p99_s == 22.5


def test_a_fault_never_recovered_from_makes_recovery_infinite() -> None:
    outage = FaultRecord("redis-kill9-aof", "redis", started=100.0, redis_back=103.0)
    s = score([change(1, "B", 104.0, None)], [], [outage], [], 3)
    assert math.isinf(s.recovery_p99_s) and s.worker_exits == 3
    assert s.line().endswith("worker_exits=3 stuck_over_60s=0 recovery_p99_s=inf")
    assert set(s.failed_targets()) == {"missed", "worker_exits", "recovery_p99_s"}


def test_worker_faults_do_not_count_in_recovery() -> None:
    kill = FaultRecord("worker-kill-polls", "worker", started=50.0, victim="w1")
    s = score([change(1, "B", 51.0, None)], [delivery("e1", "B", 52, 60.0)], [kill], [], 0)
    assert s.recovery_p99_s == 0.0 and s.faults[0].recovery_s is None
    assert s.faults[0].changes == 1 and s.faults[0].latency_max == 9.0
    assert s.failed_targets() == []


def test_changes_made_after_a_flushall_before_the_rebaseline_are_lost_with_the_data_not_missed() -> None:
    flush = FaultRecord("flushall", "redis", started=200.0, redis_back=200.0, data_loss=True)
    other = "rev:order:TC2"
    changes = [
        change(1, "B", 200.1, 200.6),  # made and reverted before its resource was polled again
        change(2, "A", 200.6, None),  # its resource is polled again at 201.0: this one is in that baseline
        change(3, "C", 200.2, None, rkey=other),  # its resource is never polled again: the fleet did not recover
        change(4, "D", 215.0, None, rkey="rev:order:TC3"),  # later than 10 s after the loss: missed
    ]
    polls = [PollRequest(201.0, "rev", (RK,))]
    s = score(changes, [], [flush], polls, 0)
    assert [v.status for v in s.verdicts] == ["lost_with_data", "lost_with_data", "missed", "missed"]
    assert s.lost_with_data == 2 and s.missed == 2
    # a poll by the next stage's fleet is no re-baseline of this one
    ended = FaultRecord("flushall", "redis", started=200.0, redis_back=200.0, data_loss=True, horizon=200.5)
    s = score(changes[:2], [], [ended], polls, 0)
    assert [v.status for v in s.verdicts] == ["missed", "missed"]
    assert math.isinf(s.recovery_p99_s)
    # a scan page covers every resource of its provider: polled again at once, both should be seen
    polls = [PollRequest(200.05, "rev", None)]
    s = score(changes[:2], [], [flush], polls, 0)
    assert [v.status for v in s.verdicts] == ["missed", "missed"]


def test_a_change_that_undoes_one_lost_with_the_data_is_lost_with_it() -> None:
    flush = FaultRecord("flushall", "redis", started=200.0, redis_back=200.0, data_loss=True)
    polls = [PollRequest(200.3, "rev", (RK,))]  # between the two: its commit may be refused meanwhile
    flip = Change(n=1, rkey=RK, to_state="QUEUED", from_state="PENDING", at=200.1, until=200.6, receivers=HOOK)
    back = Change(n=2, rkey=RK, to_state="PENDING", from_state="QUEUED", at=200.6, until=None, receivers=HOOK)
    s = score([flip, back], [], [flush], polls, 0)
    assert [v.status for v in s.verdicts] == ["lost_with_data", "lost_with_data"] and s.missed == 0
    # to another state than the one before the loss: there is something to tell, and it was not
    other = Change(n=2, rkey=RK, to_state="DONE", from_state="QUEUED", at=200.6, until=None, receivers=HOOK)
    assert [v.status for v in score([flip, other], [], [flush], polls, 0).verdicts] == ["lost_with_data", "missed"]
    # the same revert long after the loss: the fleet had its baseline by then
    late = Change(n=2, rkey=RK, to_state="PENDING", from_state="QUEUED", at=230.0, until=None, receivers=HOOK)
    assert [v.status for v in score([flip, late], [], [flush], polls, 0).verdicts] == ["lost_with_data", "missed"]


def test_the_line_has_every_field_in_order() -> None:
    s = score([], [], [], [], 0)
    assert s.line() == ("chaos: changes=0 missed=0 false=0 reused_ids=0 dup_same_id=0 worker_exits=0 "
                        "stuck_over_60s=0 recovery_p99_s=0.0")


def test_nearest_rank() -> None:
    assert nearest_rank([3.0, 1.0, 2.0], 0.99) == 3.0
    assert nearest_rank([float(i) for i in range(1, 201)], 0.99) == 198.0
    assert nearest_rank([], 0.99) == 0.0


def test_a_saved_run_scores_the_same_when_loaded(tmp_path: Path) -> None:
    outage = FaultRecord("redis-down-60s", "redis", started=100.0, redis_back=160.0)
    data = RunData(t0=90.0, end=300.0, changes=[change(1, "B", 101.0, 200.0, ("webhook", "email"))],
                   deliveries=[delivery("e1", "B", 161, 163.0), delivery("e1", "B", 161, 164.0, receiver="email")],
                   faults=[outage], polls=[PollRequest(160.5, "rev", None)], worker_exits=["w2 (code 1)"],
                   healthz=[(161.0, 200)], rkeys={RK: "rev"})
    data.save(tmp_path / "run-data.json")
    loaded = RunData.load(tmp_path / "run-data.json")
    assert loaded == data
    assert loaded.score().line() == data.score().line()
    assert data.score().worker_exits == 1
