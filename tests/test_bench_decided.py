"""A figure measured in pairs takes pairs until its verdict is decided (#18): its median's
90 % interval (order statistics, no assumption on the pairs' distribution) lies wholly on
one side of its target, or its share of the run's time is spent."""

import math
import time
from pathlib import Path

import pytest

from bench import context as bench_context
from bench import overhead, stats
from bench.context import Context


def _outside(n: int, k: int) -> float:
    """The chance that the median lies outside the k-th smallest and k-th largest of n."""
    return 2 * sum(math.comb(n, i) for i in range(k)) / 2**n


@pytest.mark.parametrize("n", range(1, 25))
def test_the_median_interval_is_the_narrowest_with_its_confidence(n):
    values = [float(v) for v in range(1, n + 1)]
    interval = stats.median_interval(list(reversed(values)))
    if interval is None:
        assert _outside(n, 1) > 0.1  # even the whole range is not 90 % sure
        return
    k = int(interval[0])
    assert interval == (values[k - 1], values[n - k])
    assert _outside(n, k) <= 0.1
    assert k == n // 2 or _outside(n, k + 1) > 0.1


def test_too_few_pairs_have_no_interval():
    assert stats.median_interval([1.0, 1.1, 0.9, 1.0]) is None
    assert stats.median_interval([1.0, None, 1.1, 0.9, 1.0, None]) is None
    assert stats.median_interval([0.9, 1.0, 1.1, 1.0, 0.95]) == (0.9, 1.1)


def test_a_verdict_is_decided_only_when_the_interval_is_on_one_side_of_the_line():
    below = [0.95, 0.97, 1.0, 0.99, 1.02, 0.96, 1.04, 0.98]
    straddling = [0.95, 1.07, 1.0, 0.99, 1.08, 0.96, 1.06, 1.09]
    above = [1.06, 1.07, 1.1, 1.09, 1.08, 1.12, 1.06, 1.09]
    assert stats.decided(below, "<=", 1.05)
    assert not stats.decided(straddling, "<=", 1.05)
    assert stats.decided(above, "<=", 1.05)  # decided as missed: more pairs change nothing
    assert stats.decided(below, ">=", 0.8)
    assert not stats.decided(below[:4], "<=", 1.05)  # too few
    assert not stats.decided(below, "report", None)


@pytest.fixture
def ctx(monkeypatch):
    monkeypatch.setattr(bench_context, "_active", None)  # restored after the test
    return Context(
        stack="postgres",
        env={},
        work=Path("."),
        fixtures=None,
        port=0,
        deadline=time.monotonic() + 3600,
    )


def test_a_figure_is_decided_only_after_its_minimum_and_a_whole_couple(ctx):
    clear = [0.9, 0.92, 0.95, 0.91, 0.93, 0.94, 0.9, 0.92]
    assert ctx.decided("job_overhead_ratio", clear[:6], minimum=2)
    assert not ctx.decided("job_overhead_ratio", clear[:7], minimum=2)  # BA still to come
    assert not ctx.decided("job_overhead_ratio", clear[:6], minimum=8)
    assert not ctx.decided("job_overhead_ratio_sqlite", clear, minimum=2)  # no target
    assert ctx.verdict_spread("job_overhead_ratio", clear) == {
        "median_interval_90": [0.9, 0.94],
        "decided": True,
    }
    # the details say where the interval lies whatever count the run ended with
    assert ctx.verdict_spread("job_overhead_ratio", clear[:7])["decided"] is True


def test_the_engine_stops_taking_pairs_once_its_verdict_is_decided(ctx):
    near_the_line = [1.0, 1.1, 0.97, 1.08, 1.02, 1.06]
    clear = [0.95, 0.97, 0.96, 0.98, 0.94, 0.97]
    assert overhead.another_pair(ctx, 6, near_the_line, 2, 30.0, "job_overhead_ratio")
    assert not overhead.another_pair(ctx, 6, clear, 2, 30.0, "job_overhead_ratio")
    # the minimum comes first, decided or not
    assert overhead.another_pair(ctx, 0, [], 2, 30.0, "job_overhead_ratio")


def test_past_the_minimum_a_pair_starts_only_if_its_couple_fits(ctx):
    ctx.figure_end = time.monotonic() + 50  # a pair fits, a couple (2.3 pairs) does not
    assert overhead.another_pair(ctx, 1, [1.0], 2, 30.0, "job_overhead_ratio")
    assert not overhead.another_pair(ctx, 2, [1.0, 1.1], 2, 30.0, "job_overhead_ratio")
