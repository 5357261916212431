"""Reads about nodes and credentials (actions, admin)."""

from portal.nodes.models import Credential, Node


def stored_values(node: Node, fields) -> dict:
    """``fields`` of the node as stored now ({} for a node not saved yet)."""
    return Node.objects.filter(pk=node.pk).values(*fields).first() or {}


def with_jumping_nodes(node_ids) -> list[int]:
    """The nodes and those that jump through them (their SSH masters ride on these logins)."""
    ids = list(node_ids)
    return ids + list(Node.objects.filter(jump_host_id__in=ids).values_list("pk", flat=True))


def node_ids_using(credential: Credential) -> list[int]:
    return list(credential.nodes.values_list("pk", flat=True))


def node_names_using(credential: Credential, limit: int) -> list[str]:
    return list(credential.nodes.values_list("name", flat=True)[:limit])


def nodes_for(purpose: str, *, enabled_only: bool = False):
    nodes = Node.objects.filter(purpose=purpose)
    return nodes.filter(enabled=True) if enabled_only else nodes
