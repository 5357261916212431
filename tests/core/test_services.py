"""model_update: set only what differs, validate, write only those columns."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.core.services import editable_fields, model_update
from portal.nodes.models import Node, NodeGroup
from tests.factories import CredentialFactory, NodeFactory

FIELDS = ["name", "address", "ssh_port", "labels", "group", "credential", "jump_host"]


def _updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]


@pytest.mark.django_db
def test_changed_fields_are_validated_and_only_they_are_written():
    node = NodeFactory(name="n1", ssh_port=22, labels={})
    stamped = node.updated_at
    Node.objects.filter(pk=node.pk).update(address="10.9.9.9")  # someone else's change
    with CaptureQueriesContext(connection) as queries:
        same, changed = model_update(
            node, {"ssh_port": 2222, "labels": {"rack": "a"}, "name": "n1"}, FIELDS
        )
    assert same is node and changed is True
    [update] = _updates(queries.captured_queries)
    assert '"ssh_port"' in update and '"labels"' in update and '"updated_at"' in update
    assert '"address"' not in update and '"name"' not in update
    stored = Node.objects.get(pk=node.pk)
    assert (stored.ssh_port, stored.labels) == (2222, {"rack": "a"})
    assert stored.address == "10.9.9.9"  # the column left out kept the other change
    assert stored.updated_at > stamped


@pytest.mark.django_db
def test_nothing_differs_nothing_is_written():
    node = NodeFactory(ssh_port=22, labels={"a": "b"})
    stamped = node.updated_at
    with CaptureQueriesContext(connection) as queries:
        _, changed = model_update(
            node, {"ssh_port": 22, "labels": {"a": "b"}, "credential": node.credential}, FIELDS
        )
    assert changed is False
    assert queries.captured_queries == []  # related objects compared by id: no query either
    assert Node.objects.get(pk=node.pk).updated_at == stamped


@pytest.mark.django_db
def test_foreign_keys_compare_by_id_and_accept_instances_or_none():
    node = NodeFactory()
    group = NodeGroup.objects.create(name="site-a", queue="site-a")
    _, changed = model_update(node, {"group": group}, FIELDS)
    assert changed and Node.objects.get(pk=node.pk).group_id == group.pk
    _, changed = model_update(node, {"group": group}, FIELDS)
    assert not changed
    _, changed = model_update(node, {"group": None}, FIELDS)
    assert changed and Node.objects.get(pk=node.pk).group_id is None


@pytest.mark.django_db
def test_an_invalid_value_raises_validation_error_naming_the_field_and_writes_nothing():
    node = NodeFactory(ssh_port=22)
    with pytest.raises(ValidationError) as caught:
        model_update(node, {"ssh_port": 0}, FIELDS)
    assert set(caught.value.message_dict) == {"ssh_port"}
    assert Node.objects.get(pk=node.pk).ssh_port == 22
    with pytest.raises(ValidationError) as caught:  # the model's clean() runs too
        model_update(NodeFactory(), {"labels": ["not", "a", "mapping"]}, FIELDS)
    assert set(caught.value.message_dict) == {"labels"}


@pytest.mark.django_db
def test_a_field_outside_the_allowed_ones_is_refused_loudly():
    node = NodeFactory()
    with pytest.raises(ValueError, match="host_keys_pinned_at"):
        model_update(node, {"host_keys_pinned_at": None, "ssh_port": 2}, FIELDS)
    assert Node.objects.get(pk=node.pk).ssh_port == node.ssh_port


def test_editable_fields_leave_out_the_key_timestamps_and_what_the_model_keeps_to_itself():
    fields = editable_fields(Node)
    assert {"name", "ssh_port", "labels", "credential", "host_keys"} <= set(fields)
    assert not {
        "id",
        "created_at",
        "updated_at",
        "host_keys_pinned_at",
        "host_keys_pinned_by",
        "host_keys_pinned_how",
    } & set(fields)


@pytest.mark.django_db
def test_a_field_the_model_keeps_to_itself_cannot_be_set():
    node = NodeFactory()
    with pytest.raises(ValueError, match="host_keys_pinned_by"):
        model_update(node, {"host_keys_pinned_by": None}, editable_fields(Node))


@pytest.mark.django_db
def test_also_save_writes_what_save_derives():
    credential = CredentialFactory(kind="ssh_key")
    hint = credential.hint
    _, changed = model_update(
        credential, {"kind": "password", "secret": "pw"}, ["kind", "secret"], also_save=["hint"]
    )
    stored = type(credential).objects.get(pk=credential.pk)
    assert changed and stored.secret == "pw"
    assert stored.hint == "password (hidden)" != hint
