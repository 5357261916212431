"""Down groups (sites): when many of a group's nodes are down at once, the cause is the site
(its uplink, its power), so the group gets one alert and its nodes' down alerts are held.

A group is down while at least MONITORING_GROUP_DOWN_MIN_NODES of its monitored, enabled
nodes, and at least MONITORING_GROUP_DOWN_PERCENT of them, are down. It has been down since
the moment the last node needed for that went down (the k-th earliest ``status_changed_at``
of its down nodes), so a down rule's ``for`` counts from then, with no state of its own.
The evaluator (portal.monitoring.alerts) asks ``down_groups`` once per pass: it holds the
down alerts of those groups' nodes (inhibition) and raises and resolves the groups' alerts.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Q

from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness


@dataclass(frozen=True)
class Outage:
    group_id: int
    down: int
    total: int
    since: datetime

    def describe(self, name: str) -> str:
        return f"Group {name} is down: {self.down} of {self.total} nodes are down."


def needed(total: int) -> int:
    """How many of a group's ``total`` nodes must be down for the group to be down."""
    share = math.ceil(total * settings.MONITORING_GROUP_DOWN_PERCENT / 100)
    return max(settings.MONITORING_GROUP_DOWN_MIN_NODES, share)


def down_groups(now: datetime) -> dict[int, Outage]:
    """The groups that are down now, by id: one aggregate over the liveness rows, and the
    down nodes' times of the groups that qualify."""
    counts = (
        NodeLiveness.objects.filter(node__enabled=True, node__group__isnull=False)
        .values("node__group_id")
        .annotate(total=Count("pk"), down=Count("pk", filter=Q(status=Liveness.DOWN)))
        .filter(down__gte=settings.MONITORING_GROUP_DOWN_MIN_NODES)
        .order_by()
    )
    qualifying = {
        row["node__group_id"]: (row["down"], row["total"])
        for row in counts
        if row["down"] >= needed(row["total"])
    }
    if not qualifying:
        return {}
    times: dict[int, list[datetime]] = {group_id: [] for group_id in qualifying}
    rows = NodeLiveness.objects.filter(
        node__enabled=True, node__group_id__in=list(qualifying), status=Liveness.DOWN
    ).values_list("node__group_id", "status_changed_at")
    for group_id, changed_at in rows:
        times[group_id].append(changed_at or now)
    outages = {}
    for group_id, (down, total) in qualifying.items():
        moments = sorted(times[group_id])  # as many as counted, unless one came up since
        since = moments[min(needed(total), len(moments)) - 1] if moments else now
        outages[group_id] = Outage(group_id, down, total, since)
    return outages
