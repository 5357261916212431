"""The alert rules' arithmetic, without the database: one (rule, node) pair's next state.

``step`` is a pure function of the rule's spec, the pair's state, the node's current value
and the clock, so every case (for, keep_firing_for, hysteresis, flapping, inhibition) is a
row of a table in tests/monitoring/test_rules.py. portal.monitoring.alerts runs it over
every node and turns its events into alerts.
"""

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from portal.monitoring.choices import BUILTIN_METRICS, DOWN, Comparison, RuleKind

GAUGE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
# "api_calls/api_quota": one gauge as a percent of another (the source fleet's API quota).
GAUGE_RATIO = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]{0,30})/([A-Za-z_][A-Za-z0-9_.-]{0,30})$")


def ratio_of(metric: str) -> tuple[str, str] | None:
    """(numerator, denominator) gauges of a ratio metric, else None."""
    found = GAUGE_RATIO.match(metric or "")
    return (found.group(1), found.group(2)) if found else None


def percent_of(gauges: dict, numerator: str, denominator: str) -> float | None:
    """100 x numerator / denominator from a heartbeat's gauges (None when either is missing
    or not a number, or the denominator is not above 0)."""
    values = [gauges.get(numerator), gauges.get(denominator)]
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        return None
    top, bottom = float(values[0]), float(values[1])  # type: ignore[arg-type]
    return 100.0 * top / bottom if bottom > 0 else None


# Events step() returns; the evaluator turns them into alert writes.
FIRE = "fire"  # raise the rule's alert
RESOLVE = "resolve"  # resolve the open alert
FLAPPING = "flapping"  # the pair's open alert becomes (or a new one is) the one flapping alert
FLAPPING_END = "flapping_end"  # quiet for a window: resolve it, or back to the rule's alert


def compare(comparison: str, value: float, threshold: float) -> bool:
    if comparison == Comparison.GE:
        return value >= threshold
    if comparison == Comparison.GT:
        return value > threshold
    if comparison == Comparison.LE:
        return value <= threshold
    if comparison == Comparison.LT:
        return value < threshold
    raise ValueError(f"unknown comparison {comparison!r}")


def rule_errors(
    metric: str,
    comparison: str,
    threshold: float | None,
    clear_threshold: float | None,
    *,
    kind: str = RuleKind.THRESHOLD,
    min_spread: float | None = 1.0,
) -> dict[str, str]:
    """What is wrong with a rule, by field (empty when nothing is)."""
    errors: dict[str, str] = {}
    if (
        metric not in BUILTIN_METRICS
        and not GAUGE_NAME.match(metric or "")
        and not ratio_of(metric)
    ):
        errors["metric"] = (
            f"One of {', '.join(BUILTIN_METRICS)}, a gauge name (letters, digits, _ . -), or "
            "a gauge as a percent of another (api_calls/api_quota)."
        )
    elif kind == RuleKind.BASELINE and metric == DOWN:
        errors["metric"] = "A baseline rule watches a measured value, not down."
    if comparison not in Comparison.values:
        errors["comparison"] = f"One of {', '.join(Comparison.values)}."
    if threshold is None or not math.isfinite(threshold):
        errors["threshold"] = "A finite number."
    if clear_threshold is not None and not math.isfinite(clear_threshold):
        errors["clear_threshold"] = "A finite number, or empty for the fire threshold."
    elif clear_threshold is not None and threshold is not None and not errors:
        upward = comparison in (Comparison.GE, Comparison.GT)
        if upward and clear_threshold > threshold:
            errors["clear_threshold"] = (
                f"A rule that fires at {comparison} {threshold:g} clears below it: the clear "
                f"threshold is at most {threshold:g} (disk fires >= 80, clears < 75)."
            )
        if not upward and clear_threshold < threshold:
            errors["clear_threshold"] = (
                f"A rule that fires at {comparison} {threshold:g} clears above it: the clear "
                f"threshold is at least {threshold:g}."
            )
    if kind not in RuleKind.values:
        errors["kind"] = f"One of {', '.join(RuleKind.values)}."
    if min_spread is None or not math.isfinite(min_spread) or min_spread <= 0:
        errors["min_spread"] = "A number above 0."
    return errors


@dataclass(frozen=True)
class Spec:
    comparison: str
    threshold: float
    clear_threshold: float
    for_seconds: int = 0
    keep_firing_for_seconds: int = 0


@dataclass(frozen=True)
class State:
    pending_since: datetime | None = None
    clearing_since: datetime | None = None
    firing: bool = False
    flapping: bool = False
    flips: tuple[float, ...] = field(default_factory=tuple)

    @property
    def idle(self) -> bool:
        return self == State()


@dataclass(frozen=True)
class Flapping:
    flips: int  # this many fire/clear flips ...
    window: timedelta  # ... within this window make the pair flapping


def step(
    spec: Spec,
    state: State,
    value: float | None,
    now: datetime,
    *,
    flapping: Flapping,
    inhibited: bool = False,
    since: datetime | None = None,
) -> tuple[State, str | None]:
    """The pair's next state and what happened to its alert (an event above, or None).

    - No value (no data yet): nothing changes.
    - Not firing: the condition holding starts ``pending_since`` (``since`` when the caller
      knows better, e.g. the time the node went down); it fires once it has held
      ``for_seconds``, unless ``inhibited`` (it then stays pending and fires when no longer
      inhibited, if the condition still holds).
    - Firing: the clear condition (value no longer compares to ``clear_threshold``) starts
      ``clearing_since``; it resolves once that has held ``keep_firing_for_seconds``. A value
      between the two thresholds neither fires nor clears (hysteresis).
    - Every fire and resolve is a flip; ``flapping.flips`` of them within ``flapping.window``
      make the pair flapping: one open ``flapping`` alert, no further fire/resolve alerts,
      until a whole window passes without a flip.
    """
    if value is None:
        return state, None
    cutoff = (now - flapping.window).timestamp()
    flips = [moment for moment in state.flips if moment > cutoff]
    pending, clearing, firing = state.pending_since, state.clearing_since, state.firing
    event: str | None = None
    if not firing:
        clearing = None
        if compare(spec.comparison, value, spec.threshold):
            pending = pending or since or now
            if now - pending >= timedelta(seconds=spec.for_seconds) and not inhibited:
                firing, event = True, FIRE
                flips.append(now.timestamp())
        else:
            pending = None
    elif not compare(spec.comparison, value, spec.clear_threshold):
        clearing = clearing or now
        if now - clearing >= timedelta(seconds=spec.keep_firing_for_seconds):
            firing, pending, clearing, event = False, None, None, RESOLVE
            flips.append(now.timestamp())
    else:
        clearing = None
    is_flapping = state.flapping
    if is_flapping:
        event = None  # the flapping alert stands for this pair's alerts
        if not flips:
            is_flapping, event = False, FLAPPING_END
    elif len(flips) >= flapping.flips:
        is_flapping, event = True, FLAPPING
    new = replace(
        state,
        pending_since=pending,
        clearing_since=clearing,
        firing=firing,
        flapping=is_flapping,
        flips=tuple(flips),
    )
    return new, event
