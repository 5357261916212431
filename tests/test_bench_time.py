"""`make bench` shares its time between figures: on a slow machine every figure is measured
with fewer repetitions instead of the last ones being left out."""

import time

import pytest

from bench.context import Context, OutOfTime
from bench.suite import ORDER, WEIGHTS, share


def context(seconds_left: float, share_left: float) -> Context:
    now = time.monotonic()
    ctx = Context(
        stack="postgres", env={}, work=None, fixtures=None, port=0, deadline=now + seconds_left
    )
    ctx.figure_end = now + share_left
    return ctx


def test_every_figure_has_a_share_and_the_shares_add_up_to_the_time_left():
    assert set(WEIGHTS) == set(ORDER)
    left = 400.0
    shares = []
    for index, name in enumerate(ORDER):
        shares.append(share(left, name, list(ORDER[index:])))
        left -= shares[-1]  # each figure used exactly its share
    assert all(s > 0 for s in shares) and left == pytest.approx(0)


def test_required_repetitions_run_past_the_share_but_not_past_the_deadline():
    ctx = context(seconds_left=100, share_left=5)
    assert ctx.another(0, 2, 30, "x") and ctx.another(1, 2, 30, "x")
    assert not ctx.another(2, 2, 30, "x")  # past its share: no more
    with pytest.raises(OutOfTime):
        context(seconds_left=10, share_left=5).another(0, 2, 30, "x")


def test_more_repetitions_while_the_share_lasts():
    ctx = context(seconds_left=100, share_left=60)
    assert ctx.another(5, 2, 30, "x")
    assert not ctx.another(5, 2, 70, "x")
    assert not context(seconds_left=20, share_left=60).another(5, 2, 30, "x")


def test_optional_work_fits_only_in_the_share_and_the_time_left():
    assert context(seconds_left=100, share_left=60).fits(30)
    assert not context(seconds_left=100, share_left=20).fits(30)
    assert not context(seconds_left=20, share_left=60).fits(30)
