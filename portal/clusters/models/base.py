"""What the clusters' models share: the status sets, the legacy mapping, the deadline
reason and the late-bound timeout handler."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db.models import Q

from portal.clusters.choices import LegacyStatus, NodeStatus, RunStatus

logger = logging.getLogger("portal.clusters.models")

N = NodeStatus
R = RunStatus

# A node's own reprovision: these phases count against its overall deadline.
NODE_DEADLINE_PHASES = frozenset({N.REQUESTED, N.REBOOTING, N.INSTALLING, N.REGISTERED})
# Still moving (a run with such a node is not over); READY waits for the others.
NODE_ACTIVE = frozenset({*NODE_DEADLINE_PHASES, N.JOINING})
NODE_FAILED = frozenset({N.TIMEOUT, N.ERROR})
RUN_ACTIVE = frozenset({R.REQUESTED, R.RUNNING})
LEGACY = {
    N.REQUESTED: LegacyStatus.IN_PROGRESS,
    N.REBOOTING: LegacyStatus.IN_PROGRESS,
    N.INSTALLING: LegacyStatus.IN_PROGRESS,
    N.REGISTERED: LegacyStatus.IN_PROGRESS,
    N.READY: LegacyStatus.COMPLETED,
    N.JOINING: LegacyStatus.COMPLETED,
    N.CLUSTERED: LegacyStatus.CLUSTERED,
    N.TIMEOUT: LegacyStatus.TIMEOUT,
    N.ERROR: LegacyStatus.ERROR,
    N.CANCELED: LegacyStatus.ERROR,
}


def legacy_status(status: str) -> str:
    """The old ``reprovision_status`` of a node in ``status`` (table in the module doc)."""
    return str(LEGACY[N(status)])


def _who(by: Any) -> Any:
    return by if by is not None and getattr(by, "pk", None) else None


class TimedOutHandler:
    """Late-bound: the owner's actions say what follows a timeout (apps.ready wires it),
    so models never import actions."""

    handler: Callable[[Any, str], None] | None = None


class DeadlineReasonMixin:
    """``expire`` with a reason that names the deadline that passed."""

    def timeout_reason(self, status: str, now: datetime) -> str:
        raise NotImplementedError

    def expire(self, now: datetime) -> bool:
        status = self.status  # type: ignore[attr-defined]
        reason = self.timeout_reason(status, now)
        won = self.move(  # type: ignore[attr-defined]
            self.timeout_status(status),  # type: ignore[attr-defined]
            [status],
            reason=reason,
            where=Q(status_expires__lte=now),
        )
        if won:
            logger.warning("%s %s %s", type(self).__name__, self.pk, reason)  # type: ignore[attr-defined]
            self.status_timed_out(status)  # type: ignore[attr-defined]
        return won
