"""Wave plans of a rollout: which targets go in which wave (pure functions, no queries).

A rollout's ``waves`` lists how many of its targets are covered once each wave is done,
cumulatively: a count (``"1"``: one VM, the canary) or a share of the targets (``"10%"``,
rounded up). The default ``["1", "10%", "50%", "100%"]`` over 40 VMs gives waves of
1, 3, 16 and 20 VMs. A wave that would add no VM (10 % of 3 VMs is 1, already covered by the
canary) is dropped, and the last entry must cover every target.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from portal.core.errors import PortalError

T = TypeVar("T")
MAX_WAVES = 20
MAX_COUNT = 1_000_000
WAVE_RE = re.compile(r"^\s*([0-9]{1,7})\s*(%?)\s*\Z")


def _entry(index: int, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    match = WAVE_RE.match(value) if isinstance(value, str) else None
    field = f"waves[{index}]"
    if match is None:
        raise PortalError(
            f"{value!r} is neither a count of VMs ('1') nor a share of them ('10%').", field=field
        )
    number, percent = int(match[1]), bool(match[2])
    if percent and not 1 <= number <= 100:
        raise PortalError(f"A share is 1% to 100%, not {number}%.", field=field)
    if not percent and not 1 <= number <= MAX_COUNT:
        raise PortalError(f"A count is 1 to {MAX_COUNT}, not {number}.", field=field)
    return f"{number}%" if percent else str(number)


def check_waves(waves: Any) -> list[str]:
    """The waves normalised ("10 %" -> "10%", 5 -> "5"), or a PortalError naming the entry."""
    if not isinstance(waves, list) or not waves:
        raise PortalError(
            'A non-empty list of counts and shares, e.g. ["1", "10%", "50%", "100%"].',
            field="waves",
        )
    if len(waves) > MAX_WAVES:
        raise PortalError(f"At most {MAX_WAVES} waves.", field="waves")
    return [_entry(index, value) for index, value in enumerate(waves)]


def covered(entry: str, total: int) -> int:
    """How many of ``total`` targets a (normalised) entry covers."""
    if entry.endswith("%"):
        return min(total, math.ceil(total * int(entry[:-1]) / 100))
    return min(total, int(entry))


def plan_waves(targets: Sequence[T], waves: list[str]) -> list[list[T]]:
    """``targets`` (in rollout order) cut into waves; empty waves dropped. Refuses a plan
    whose last wave leaves targets out or whose waves shrink (field ``waves``)."""
    total = len(targets)
    reach = [covered(entry, total) for entry in waves]
    for index in range(1, len(reach)):
        if reach[index] < reach[index - 1]:
            raise PortalError(
                f"Waves are cumulative: {waves[index]!r} covers {reach[index]} VM(s), fewer "
                f"than the {reach[index - 1]} covered by {waves[index - 1]!r} before it.",
                field=f"waves[{index}]",
            )
    if total and reach[-1] < total:
        raise PortalError(
            f"The last wave ({waves[-1]!r}) covers {reach[-1]} of the {total} VMs: it must "
            "cover all of them (e.g. '100%').",
            field="waves",
        )
    plan, done = [], 0
    for count in reach:
        if count > done:
            plan.append(list(targets[done:count]))
            done = count
    return plan
