"""The stats' one recorder and one reader: the field names stay those already stored in
`sh:stats`, and every field the recorder writes reads back as what it counts."""

from __future__ import annotations

from store.stats import POLL_BUCKETS, HistogramCounts, StatsRecorder, parse_stats


def test_the_recorder_writes_the_stored_field_names() -> None:
    r = StatsRecorder()
    r.poll("rev", "unchanged", 7)
    r.event("rev", "rev.order.state_changed")
    r.delivery("ops-hook", "ok", 0.02)
    r.delivery("ops-hook", "dead")
    r.corrupt(2)
    assert r.drain() == {
        "polls:rev:unchanged": 7,
        "events:rev": 1, "events_type:rev.order.state_changed": 1,
        "deliveries_ok": 1, "deliveries:ops-hook:ok": 1,
        "lat:deliver:ops-hook:2": 1, "lat:deliver:ops-hook:sum_us": 20000,
        "deliveries_dead": 1, "deliveries:ops-hook:dead": 1,
        "corrupt_records": 2,
    }
    assert r.drain() == {}


def test_bucket_bounds_are_inclusive_and_the_last_is_inf() -> None:
    r = StatsRecorder()
    r.observe("poll", "rev", 0.005)
    r.observe("poll", "rev", 0.0051)
    r.observe("poll", "rev", 999.0)
    counts = r.drain()
    assert counts["lat:poll:rev:0"] == 1 and counts["lat:poll:rev:1"] == 1
    assert counts[f"lat:poll:rev:{len(POLL_BUCKETS)}"] == 1


def test_what_is_recorded_reads_back() -> None:
    r = StatsRecorder()
    r.poll("artistree", "changed", 2)
    r.event("artistree", "artistree.order.state_changed")
    r.event("rev", "rev.order.gone")
    r.delivery("team-a:b", "retried", 0.5)  # a destination name with a colon
    r.observe("batch", "rev", 1.5)
    r.corrupt()
    stats = parse_stats(r.drain())
    assert stats.polls == {("artistree", "changed"): 2}
    assert stats.events_by_provider == {"artistree": 1, "rev": 1} and stats.events == 2
    assert stats.events_by_type == {"artistree.order.state_changed": 1, "rev.order.gone": 1}
    assert stats.deliveries == {"retried": 1}
    assert stats.deliveries_by_destination == {("team-a:b", "retried"): 1}
    assert stats.histograms["deliver"]["team-a:b"] == HistogramCounts({6: 1}, 0.5)
    assert stats.histograms["batch"]["rev"] == HistogramCounts({6: 1}, 1.5)
    assert stats.corrupt_records == 1 and stats.unknown == {}


def test_fields_of_no_known_form_are_kept_apart() -> None:
    stats = parse_stats({"lat:poll:rev:99": 1, "lat:nope:rev:0": 1, "polls:": 3, "something": 4, "events:": 1})
    assert stats.unknown == {"lat:poll:rev:99": 1, "lat:nope:rev:0": 1, "polls:": 3, "something": 4, "events:": 1}
    assert stats.polls == {} and stats.histograms["poll"] == {}
