"""Who besides operators may read a node's alerts.

Monitoring knows no owner of a node: a layer above it does (a fleet VM belongs to a
customer). That layer registers, at start-up (its AppConfig.ready), a function giving the
ids of the nodes a user's customers own, as a queryset (a subquery: one query in all).
An alert is visible to a customer's members when it names their customer or one of those
nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Q, QuerySet

from portal.accounts.models import Customer

OwnedNodes = Callable[[Any], QuerySet]

_owned_nodes: list[OwnedNodes] = []


def register_owned_nodes(nodes_of: OwnedNodes) -> None:
    if nodes_of not in _owned_nodes:
        _owned_nodes.append(nodes_of)


def visible_alerts(user: Any) -> Q:
    """The condition on Alert rows a customer's member may read (operators read all)."""
    condition = Q(customer__in=Customer.objects.visible_to(user).values("pk"))
    for nodes_of in _owned_nodes:
        condition |= Q(node__in=nodes_of(user))
    return condition
