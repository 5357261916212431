"""The installers' figures on the admin home (registered with portal.jobs.dashboard): the
queue, and the last 7 days' install runs: success rate, failures by type, average run time."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

from portal.installers import selectors

DAYS = 7
FAILURE_LABELS = {
    "rejected": "rejected",
    "needs_operator": "need an operator",
    "failed_timeout": "timed out",
    "failed": "failed",
}


def admin_home_figures() -> dict[str, Any]:
    since = timezone.now() - timedelta(days=DAYS)
    counts: dict[str, int] = {}
    for per_installer in selectors.run_outcomes(since).values():
        for kind, count in per_installer.items():
            counts[kind] = counts.get(kind, 0) + count
    ended = sum(counts.values())
    runs = selectors.run_seconds(since).values()
    jobs, seconds = sum(n for n, _ in runs), sum(total for _, total in runs)
    return {
        "installers_days": DAYS,
        "installers_queued": sum(selectors.queue_depth().values()),
        "installers_ended": ended,
        "installers_success_percent": (
            round(100 * counts.get(selectors.SUCCESS, 0) / ended) if ended else None
        ),
        "installers_failures": [
            (kind, label, counts.get(kind, 0))
            for kind, label in FAILURE_LABELS.items()
            if counts.get(kind)
        ],
        "installers_average_seconds": round(seconds / jobs, 1) if jobs else None,
    }
