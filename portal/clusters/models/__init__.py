"""Bare-metal Proxmox clusters: the cluster, its nodes, and reprovision runs with their
per-node state machine and history.

A :class:`ClusterNode` is a profile of a :class:`portal.nodes.models.Node` (one to one), so
inventory, credentials, jobs and monitoring work on it unchanged. A :class:`ReprovisionRun`
re-images some of a cluster's nodes and forms the cluster once every one of them is ready;
each node's part is a :class:`NodeReprovision` on the status base
(:class:`portal.core.status.StatusModel`): every move is guarded, has a deadline per phase
(and the node's overall deadline), and writes a :class:`ReprovisionEvent`.

The old system's ``reprovision_status`` is derived, never stored (:func:`legacy_status`):

| NodeReprovision.status                              | reprovision_status |
|-----------------------------------------------------|--------------------|
| requested, rebooting, installing, registered        | in_progress        |
| ready, joining                                      | completed          |
| clustered                                           | clustered          |
| timeout                                             | timeout            |
| error, canceled                                     | error              |

The migrations name DeadlineReasonMixin as a base here: it stays exported.
"""

from portal.clusters.models.base import (
    LEGACY,
    NODE_ACTIVE,
    NODE_DEADLINE_PHASES,
    NODE_FAILED,
    RUN_ACTIVE,
    DeadlineReasonMixin,
    legacy_status,
)
from portal.clusters.models.clusters import Cluster, ClusterNode
from portal.clusters.models.history import RegistrationNonce, ReprovisionEvent
from portal.clusters.models.runs import NodeReprovision, ReprovisionRun

__all__ = [
    "LEGACY",
    "NODE_ACTIVE",
    "NODE_DEADLINE_PHASES",
    "NODE_FAILED",
    "RUN_ACTIVE",
    "Cluster",
    "ClusterNode",
    "DeadlineReasonMixin",
    "NodeReprovision",
    "RegistrationNonce",
    "ReprovisionEvent",
    "ReprovisionRun",
    "legacy_status",
]
