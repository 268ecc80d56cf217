"""Pure flow-control decisions: rate syntax, the token bucket, concurrency slots."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from conveyor.policies.concurrency import ConcurrencyLimit, decide_slot
from conveyor.policies.fanout import after_quiet_hours, due_at, parse_quiet_hours, zone
from conveyor.policies.ratelimit import (
    GUARD_MARGIN,
    Limit,
    Rate,
    decide,
    parse_rate,
    submit_limit,
    task_limit,
)
from conveyor.queues import broker_priority, supports_priorities
from conveyor.settings import load_settings
from conveyor.task import TaskSpec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/m", Rate(10, 60.0)),
        ("5/s", Rate(5, 1.0)),
        ("1/h", Rate(1, 3600.0)),
        ("50/s;burst=5", Rate(50, 1.0, 5)),
        (" 3 / S ; burst = 2 ", Rate(3, 1.0, 2)),
    ],
)
def test_parse_rate(text: str, expected: Rate) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "10", "0/s", "10/d", "10/m;burst=-1", "x/s", "5/s;b=1"])
def test_parse_rate_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_rate_round_trips_as_text() -> None:
    for text in ("10/m", "5/s;burst=2", "1/h"):
        assert str(parse_rate(text)) == text


def test_limits_name_their_buckets() -> None:
    shared = Limit("telegram", "30/s")
    assert shared.parsed == Rate(30, 1.0)
    assert task_limit("a", shared) is shared
    assert task_limit("a", "10/m") == Limit("task:a", Rate(10, 60.0))
    assert task_limit("a", None) is None
    assert submit_limit("a", "5/s").bucket != submit_limit("a", "6/s").bucket
    with pytest.raises(ValueError, match="name"):
        Limit("bad name!", "1/s")


def test_decide_spaces_tokens_evenly() -> None:
    rate = parse_rate("4/s")
    first = decide(rate, 100.0, None)
    assert first.allowed and first.tat == pytest.approx(100.25)
    second = decide(rate, 100.0, first.tat)
    assert not second.allowed
    assert second.wait == pytest.approx(0.25)
    assert second.reservation == pytest.approx(100.25)
    assert second.tat == pytest.approx(100.5)
    # an idle bucket does not save up tokens beyond its burst
    later = decide(rate, 200.0, second.tat)
    assert later.allowed and later.tat == pytest.approx(200.25)


def test_decide_never_exceeds_limit_plus_burst_in_any_window() -> None:
    rate = parse_rate("5/s;burst=2")
    tat: float | None = None
    starts: list[float] = []
    now = 0.0
    for _ in range(40):  # 40 jobs arriving at once, each runs when its token is due
        decision = decide(rate, now, tat)
        tat = decision.tat
        starts.append(now + decision.wait)
    starts.sort()
    for i, start in enumerate(starts):
        in_window = [s for s in starts[i:] if s < start + 1.0 - 1e-9]
        assert len(in_window) <= 5 + 2


def test_a_reservation_runs_once_due() -> None:
    rate = parse_rate("1/s")
    assert decide(rate, 10.0, 50.0, reserved=12.0).wait == pytest.approx(2.0)
    due = decide(rate, 12.0, 50.0, reserved=12.0)
    assert due.allowed and due.tat is None and due.reservation is None


def test_decide_slot() -> None:
    leases = {"a": 110.0, "b": 105.0, "old": 99.0}
    assert decide_slot(leases, "c", 3, 100.0, 1.0).acquired  # "old" expired
    refused = decide_slot(leases, "c", 2, 100.0, 10.0)
    assert not refused.acquired and refused.wait == pytest.approx(5.0)
    assert decide_slot(leases, "c", 2, 100.0, 1.0).wait == pytest.approx(1.0)
    assert decide_slot(leases, "a", 1, 100.0, 1.0).acquired


def test_concurrency_key_names_a_parameter() -> None:
    def send(user_id: int, text: str) -> None:
        return None

    spec = TaskSpec("flow.send", send, concurrency=ConcurrencyLimit(key="user_id", limit=1))
    assert spec.concurrency is not None
    one = spec.concurrency.slot_key(spec.name, {"user_id": 1, "text": "x"})
    assert one == spec.concurrency.slot_key(spec.name, {"user_id": 1, "text": "y"})
    assert one != spec.concurrency.slot_key(spec.name, {"user_id": 2, "text": "x"})
    with pytest.raises(TypeError, match="concurrency key"):
        TaskSpec("flow.bad", send, concurrency=ConcurrencyLimit(key="nope"))
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyLimit(key="user_id", limit=0)


def test_late_jobs_start_only_while_the_start_log_has_room() -> None:
    rate = parse_rate("5/s")
    full = [1.0, 1.1, 1.2, 1.3, 1.4, 0.2]  # 0.2 is older than a period: ignored
    late = decide(rate, 1.5, 9.0, reserved=0.4, recent=full)
    # when 1.0 leaves the guard window (one period plus GUARD_MARGIN)
    assert late.wait == pytest.approx(0.5 + GUARD_MARGIN)
    assert late.reservation == pytest.approx(2.0 + GUARD_MARGIN)
    assert late.tat is None  # it keeps its turn, takes no new token
    assert decide(rate, 1.5, 9.0, reserved=0.4, recent=full[1:]).allowed
    # a fresh job whose token is due now is held by the same guard
    fresh = decide(rate, 1.5, None, recent=full)
    assert fresh.wait == pytest.approx(0.5 + GUARD_MARGIN) and fresh.tat == pytest.approx(1.7)
    burst = parse_rate("5/s;burst=1")
    assert decide(burst, 1.5, None, recent=full).allowed


def test_priorities_are_turned_around_for_redis_only() -> None:
    redis = load_settings(broker_url="redis://127.0.0.1:1/0")
    amqp = load_settings(broker_url="amqp://guest:guest@127.0.0.1:1//")
    assert [broker_priority(redis, p) for p in (9, 5, 0, None)] == [0, 4, 9, 9]
    assert [broker_priority(amqp, p) for p in (9, 0, None)] == [9, 0, None]
    assert supports_priorities(redis) and supports_priorities(amqp)
    assert not supports_priorities(load_settings(broker_url=""))


# -- fan-out -----------------------------------------------------------------------


def test_quiet_hours_wrap_past_midnight() -> None:
    quiet = parse_quiet_hours("22:00-08:00")
    assert str(quiet) == "22:00-08:00"
    assert quiet.contains(time(23, 0)) and quiet.contains(time(7, 59))
    assert not quiet.contains(time(8, 0)) and not quiet.contains(time(21, 59))
    day = parse_quiet_hours("12:00-13:30")
    assert day.contains(time(12, 45)) and not day.contains(time(13, 30))
    for bad in ("22-08", "25:00-08:00", "10:00-10:00", ""):
        with pytest.raises(ValueError, match="quiet hours"):
            parse_quiet_hours(bad)


def test_fanout_spacing_and_quiet_hours_in_the_recipients_zone() -> None:
    start = datetime(2024, 5, 1, 19, 59, 58, tzinfo=UTC)  # 21:59:58 in Prague (UTC+2)
    rate, quiet, prague = (
        parse_rate("1/2s"),
        parse_quiet_hours("22:00-08:00"),
        zone("Europe/Prague"),
    )
    assert due_at(start, 0, rate) == start
    assert due_at(start, 3, rate) == start + timedelta(seconds=6)
    assert due_at(start, 0, rate, quiet, prague) == start  # 21:59:58 is not quiet yet
    # 22:00:00 in Prague is quiet: moved to 08:00 next morning Prague time (06:00 UTC)
    assert due_at(start, 1, rate, quiet, prague) == datetime(2024, 5, 2, 6, 0, tzinfo=UTC)
    # the same moment is 15:59:58 in New York: not moved
    assert due_at(start, 1, rate, quiet, zone("America/New_York")) == start + timedelta(seconds=2)
    # early morning: moved to 08:00 the same day
    early = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)  # 05:00 Prague
    assert after_quiet_hours(early, quiet, prague) == datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="time zone"):
        zone("Mars/Olympus")


def test_rate_with_a_multiple_of_its_unit() -> None:
    assert parse_rate("1/2s") == Rate(1, 2.0)
    assert parse_rate("5/10m").interval == 120.0
    assert str(parse_rate("1/90s;burst=2")) == "1/90s;burst=2"
