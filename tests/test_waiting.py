"""tests/waiting.py: the suite's one wait helper."""

import itertools

import pytest

from tests.waiting import wait_for


def test_returns_the_first_truthy_value():
    calls = itertools.count(1)
    assert wait_for(lambda: (n := next(calls)) >= 3 and n, timeout=5, interval=0.01) == 3


def test_times_out_naming_what_it_waited_for():
    calls = itertools.count()
    with pytest.raises(AssertionError, match=r"timed out after 0.2 s waiting for the door"):
        wait_for(lambda: next(calls) < 0, timeout=0.2, interval=0.05, message="the door")
    assert 2 <= next(calls) <= 10  # it polled, with pauses in between (no busy loop)


def test_message_may_be_computed_at_the_end():
    with pytest.raises(AssertionError, match="log tail: nothing"):
        wait_for(lambda: False, timeout=0, message=lambda: "log tail: nothing")


def test_ignored_errors_count_as_not_yet_and_are_chained():
    attempts = iter([OSError("refused"), OSError("refused"), "page"])

    def fetch():
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert wait_for(fetch, timeout=5, interval=0.01, ignoring=(OSError,)) == "page"
    with pytest.raises(AssertionError) as failure:
        wait_for(lambda: 1 / 0, timeout=0, ignoring=(ZeroDivisionError,))
    assert isinstance(failure.value.__cause__, ZeroDivisionError)
    with pytest.raises(KeyError):  # other errors are not swallowed
        wait_for(lambda: {}["x"], timeout=5, ignoring=(OSError,))
