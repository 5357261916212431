"""The one way tests wait: poll a predicate until it holds, or fail naming what never came.

Tests never sleep a fixed time hoping something happened, and never spin without sleeping.
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str | Callable[[], str] = "the condition",
    *,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something truthy, and
    return that. After ``timeout`` seconds, raise ``AssertionError`` naming ``message`` (a
    callable is asked then, e.g. for a log's tail). Exceptions of the ``ignoring`` types count
    as "not yet"; the last one is chained to the timeout's error."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
        except ignoring as error:
            last_error = error
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what}"
            ) from last_error
        time.sleep(interval)


def with_log_tail(what: str, log_path) -> Callable[[], str]:
    """A ``message`` for :func:`wait_for`: what was awaited, then the log's last lines."""
    from pathlib import Path

    return lambda: f"{what}\n{Path(log_path).read_text()[-3000:]}"
