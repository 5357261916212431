"""rules.step, table-driven: one (rule, node) pair fed values on a controlled clock."""

from datetime import UTC, datetime, timedelta

import pytest

from portal.monitoring import rules
from portal.monitoring.rules import FIRE, FLAPPING, FLAPPING_END, RESOLVE, Spec, State

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
DISK = Spec(">=", 80.0, 75.0)  # fires >= 80, clears < 75
MEMORY = Spec(">=", 90.0, 90.0, for_seconds=600)
SLOW_CLEAR = Spec(">=", 80.0, 75.0, keep_firing_for_seconds=120)
LOW = Spec("<", 10.0, 15.0)  # e.g. free quota: fires < 10, clears >= 15
RARE = rules.Flapping(flips=100, window=timedelta(hours=1))
OFTEN = rules.Flapping(flips=4, window=timedelta(minutes=10))


def run(spec, steps, flapping=RARE, inhibited_at=()):
    """steps: (seconds after T0, value); returns the events, one per step (None: nothing)."""
    state, events = State(), []
    for seconds, value in steps:
        state, event = rules.step(
            spec,
            state,
            value,
            T0 + timedelta(seconds=seconds),
            flapping=flapping,
            inhibited=seconds in inhibited_at,
        )
        events.append(event)
    return events, state


CASES = {
    "fires at the threshold at once without for": (DISK, [(0, 79.9), (10, 80.0)], [None, FIRE]),
    "hysteresis: between the thresholds it stays firing": (
        DISK,
        [(0, 85), (10, 78), (20, 75.0), (30, 74.9)],
        [FIRE, None, None, RESOLVE],
    ),
    "hysteresis: no second fire while between the thresholds": (
        DISK,
        [(0, 85), (10, 70), (20, 78), (30, 81)],
        [FIRE, RESOLVE, None, FIRE],
    ),
    "for: fires once the condition held for 600 s": (
        MEMORY,
        [(0, 95), (300, 95), (599, 99), (600, 91), (900, 92)],
        [None, None, None, FIRE, None],
    ),
    "for: a dip below restarts the wait": (
        MEMORY,
        [(0, 95), (500, 50), (550, 95), (1100, 95), (1150, 95)],
        [None, None, None, None, FIRE],
    ),
    "keep_firing_for: resolves once clear held 120 s": (
        SLOW_CLEAR,
        [(0, 90), (10, 70), (100, 70), (130, 70)],
        [FIRE, None, None, RESOLVE],
    ),
    "keep_firing_for: a return above clear restarts it": (
        SLOW_CLEAR,
        [(0, 90), (10, 70), (100, 77), (110, 70), (200, 70), (230, 70)],
        [FIRE, None, None, None, None, RESOLVE],
    ),
    "a falling metric: fires < 10, clears >= 15": (
        LOW,
        [(0, 12), (10, 9), (20, 14.9), (30, 15)],
        [None, FIRE, None, RESOLVE],
    ),
    "no data changes nothing": (DISK, [(0, 90), (10, None), (20, 90)], [FIRE, None, None]),
}


@pytest.mark.parametrize(("spec", "steps", "expected"), CASES.values(), ids=CASES.keys())
def test_rule_evaluation(spec, steps, expected):
    assert run(spec, steps)[0] == expected


def test_inhibited_pair_stays_pending_and_fires_when_released():
    events, state = run(DISK, [(0, 90), (10, 90), (20, 90)], inhibited_at={0, 10})
    assert events == [None, None, FIRE]
    assert state.firing


def test_inhibition_does_not_hold_back_a_resolve():
    events, _ = run(DISK, [(0, 90), (10, 50)], inhibited_at={10})
    assert events == [FIRE, RESOLVE]


def test_since_backdates_the_pending_time():
    down = Spec(">=", 1.0, 1.0, for_seconds=300)
    state, event = rules.step(
        down, State(), 1.0, T0, flapping=RARE, since=T0 - timedelta(seconds=300)
    )
    assert event == FIRE and state.firing


FLAP_STEPS = [(0, 90), (60, 50), (120, 90), (180, 50), (240, 90), (300, 50), (360, 90)]


def test_flapping_becomes_one_flapping_event_instead_of_a_storm():
    events, state = run(DISK, FLAP_STEPS, flapping=OFTEN)
    assert events == [FIRE, RESOLVE, FIRE, FLAPPING, None, None, None]
    assert state.flapping


def test_flapping_ends_after_a_quiet_window():
    steps = [*FLAP_STEPS, (400, 50), (900, 50), (1000, 50)]
    events, state = run(DISK, steps, flapping=OFTEN)
    # flips at 0..360 (7); the last one (360) leaves the 10-minute window after 960
    assert events[-3:] == [None, None, FLAPPING_END]
    assert not state.flapping and not state.firing and state.idle


def test_flips_leave_the_window():
    slow = [(0, 90), (400, 50), (800, 90), (1200, 50), (1600, 90)]
    events, state = run(DISK, slow, flapping=OFTEN)
    assert FLAPPING not in events and len(state.flips) <= 2


@pytest.mark.parametrize(
    ("comparison", "threshold", "clear", "field"),
    [
        (">=", 80, 85, "clear_threshold"),
        (">", 80, 80.1, "clear_threshold"),
        ("<=", 10, 5, "clear_threshold"),
        ("<", 10, float("nan"), "clear_threshold"),
        ("==", 10, None, "comparison"),
        (">=", float("inf"), None, "threshold"),
    ],
)
def test_rule_errors_name_the_field(comparison, threshold, clear, field):
    assert field in rules.rule_errors("disk_percent", comparison, threshold, clear)


@pytest.mark.parametrize(
    ("metric", "ok"),
    [("disk_percent", True), ("down", True), ("api_calls", True), ("bad name", False), ("", False)],
)
def test_rule_metric_names(metric, ok):
    assert ("metric" not in rules.rule_errors(metric, ">=", 1, None)) is ok


def test_a_clear_threshold_on_the_right_side_is_fine():
    assert rules.rule_errors("disk_percent", ">=", 80, 75) == {}
    assert rules.rule_errors("free", "<", 10, 15) == {}
