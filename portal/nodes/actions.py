"""Writes to nodes, groups and credentials."""

from django.db import transaction

from portal.core.errors import Conflict
from portal.nodes.models import Credential, Node, NodeGroup


def _save_validated(instance):
    instance.full_clean()
    instance.save()
    return instance


@transaction.atomic
def do_create_node(**fields) -> Node:
    return _save_validated(Node(**fields))


@transaction.atomic
def do_update_node(node: Node, **fields) -> Node:
    for name, value in fields.items():
        setattr(node, name, value)
    return _save_validated(node)


@transaction.atomic
def do_delete_node(node: Node) -> None:
    node.delete()


@transaction.atomic
def do_create_group(**fields) -> NodeGroup:
    return _save_validated(NodeGroup(**fields))


@transaction.atomic
def do_update_group(group: NodeGroup, **fields) -> NodeGroup:
    for name, value in fields.items():
        setattr(group, name, value)
    return _save_validated(group)


@transaction.atomic
def do_create_credential(**fields) -> Credential:
    return _save_validated(Credential(**fields))


@transaction.atomic
def do_update_credential(credential: Credential, **fields) -> Credential:
    # An empty secret on update means "keep the stored one" (it is never shown back).
    if not fields.get("secret"):
        fields.pop("secret", None)
    for name, value in fields.items():
        setattr(credential, name, value)
    return _save_validated(credential)


def check_credential_unused(credential: Credential) -> None:
    users = list(credential.nodes.values_list("name", flat=True)[:5])
    if users:
        raise Conflict(f"Credential is used by nodes: {', '.join(users)}.", field="credential")


@transaction.atomic
def do_delete_credential(credential: Credential) -> None:
    check_credential_unused(credential)
    credential.delete()
