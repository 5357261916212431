"""Editing a node or a credential in the admin goes through the update actions: only the
changed fields are written, keys typed in are recorded as pinned by the admin, and a change
of how jobs log in closes the shared SSH masters."""

import json
from unittest import mock

import pytest

from portal.jobs import ssh
from portal.nodes.models import Credential, Node
from tests.factories import CredentialFactory, NodeFactory

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKXHtOwUXvvCsht2G4aMwteRmzvzroKM9qdtPRZQju2c"


@pytest.fixture
def closed(settings, tmp_path):
    settings.JOBS_CONTROL_DIR = str(tmp_path)
    settings.JOB_SSH_SHARE_SECONDS = 300
    with mock.patch.object(ssh, "close_node_masters") as close:
        yield close


def node_form(node: Node, **changes) -> dict:
    data = {
        "name": node.name,
        "address": node.address,
        "purpose": node.purpose,
        "labels": json.dumps(node.labels),
        "connection": node.connection,
        "ssh_port": node.ssh_port,
        "ssh_user": node.ssh_user,
        "credential": node.credential_id or "",
        "jump_host": node.jump_host_id or "",
        "host_keys": node.host_keys,
        "group": node.group_id or "",
        "queue": node.queue,
        "workspace_root": node.workspace_root,
        "workspace_quota_backend": node.workspace_quota_backend,
        "workspace_port_start": node.workspace_port_start,
        "workspace_port_end": node.workspace_port_end,
    }
    if node.enabled:
        data["enabled"] = "on"
    if node.become:
        data["become"] = "on"
    return {**data, **changes}


@pytest.mark.django_db
def test_a_node_edited_in_the_admin_is_saved_pinned_and_its_masters_closed(
    admin_client, admin_user, closed, django_capture_on_commit_callbacks
):
    node = NodeFactory(name="web-1", ssh_port=22)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/nodes/node/{node.pk}/change/",
            node_form(node, ssh_port=2222, host_keys=f"10.0.0.9 {ED25519}"),
        )
    assert response.status_code == 302, response.content
    node.refresh_from_db()
    assert node.ssh_port == 2222 and node.host_keys == ED25519  # normalized
    assert (node.host_keys_pinned_by, node.host_keys_pinned_how) == (admin_user, "set")
    assert {pk for call in closed.call_args_list for pk in call.args[0]} == {node.pk}


@pytest.mark.django_db
def test_an_unchanged_node_form_writes_nothing(
    admin_client, closed, django_capture_on_commit_callbacks
):
    node = NodeFactory(name="web-2", labels={"rack": "a"})
    stamped = node.updated_at
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/nodes/node/{node.pk}/change/", node_form(node))
    assert response.status_code == 302, response.content
    assert Node.objects.get(pk=node.pk).updated_at == stamped
    assert not closed.called


@pytest.mark.django_db
def test_a_node_form_with_a_bad_value_is_refused_naming_it(admin_client):
    node = NodeFactory(name="web-3", ssh_port=22)
    response = admin_client.post(
        f"/admin/nodes/node/{node.pk}/change/",
        node_form(node, workspace_port_start=9000, workspace_port_end=8000),
    )
    assert response.status_code == 200  # the form again, with the error
    assert "workspace_port_end" in response.context["adminform"].form.errors
    assert Node.objects.get(pk=node.pk).workspace_port_start == node.workspace_port_start


@pytest.mark.django_db
def test_a_credential_edited_in_the_admin_keeps_its_secret_when_left_empty(
    admin_client, closed, django_capture_on_commit_callbacks
):
    credential = CredentialFactory(name="deploy", username="")
    secret, hint = credential.secret, credential.hint
    node = NodeFactory(credential=credential)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/nodes/credential/{credential.pk}/change/",
            {"name": "deploy", "kind": credential.kind, "username": "ops", "secret": ""},
        )
    assert response.status_code == 302, response.content
    stored = Credential.objects.get(pk=credential.pk)
    assert (stored.username, stored.secret, stored.hint) == ("ops", secret, hint)
    assert {pk for call in closed.call_args_list for pk in call.args[0]} == {node.pk}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/nodes/credential/{credential.pk}/change/",
            {"name": "deploy", "kind": "password", "username": "ops", "secret": "s3cret"},
        )
    assert response.status_code == 302, response.content
    stored = Credential.objects.get(pk=credential.pk)
    assert (stored.kind, stored.secret, stored.hint) == ("password", "s3cret", "password (hidden)")
