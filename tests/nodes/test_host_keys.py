"""Pinned SSH host keys: parsing, the files a job gets (known_hosts, ssh_config, ssh args),
the actions (first contact, accept, admin edits), the refusal reason, the admin's button.
Real SSH against real hosts: tests/e2e/test_host_keys.py."""

import os
import shlex
import socket
import stat
import subprocess
from pathlib import Path
from unittest import mock

import pytest
from django.core.exceptions import ValidationError

from portal.core.errors import Conflict
from portal.jobs import actions as jobs
from portal.jobs import runner, ssh
from portal.jobs.models import Job, JobEvent
from portal.nodes import actions, hostkeys
from portal.nodes.choices import Connection, CredentialKind
from portal.nodes.inventory import InventoryError, build_inventory
from portal.nodes.models import Node
from tests.factories import CredentialFactory, NodeFactory
from tests.helpers import stubbed_broker

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKXHtOwUXvvCsht2G4aMwteRmzvzroKM9qdtPRZQju2c"
ED25519_FP = "SHA256:uRwfHels7Bgq4QWheZ6YA7KjQgkkgIFlKv3hhzC1ESU"
ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBP0oZx8rwBXmR7"
    "1BIJzoGDLr8Edd+9JrdJQmpMH0fztNjnt3wtfGzTX2S+t730kra2BjDE0AhoGssE3pnatb3xk="
)
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFzfEQ0Wa8a7vvvJm4WqKYdKRhB4Q+XmHbV5nAWHOGW9"


def keys(*lines):
    return [hostkeys.parse(line)[0] for line in lines]


# --- parsing and fingerprints ----------------------------------------------------------------


def test_parse_takes_keyscan_known_hosts_and_bare_lines():
    text = (
        f"# 10.0.0.1:22 SSH-2.0-OpenSSH_9.2\n10.0.0.1 {ED25519}\n"
        f"[10.0.0.1]:2222,host {ECDSA} comment\n\n{ED25519}\n"
    )
    parsed = hostkeys.parse(text)
    assert [key.line for key in parsed] == [ED25519, ECDSA]
    assert hostkeys.normalize(text) == "\n".join(sorted([ED25519, ECDSA]))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("hello world", "not a host key"),
        ("ssh-ed25519", "not a host key"),
        ("ssh-ed25519 not*base64", "not valid base64"),
        (f"ssh-rsa {ED25519.split()[1]}", "not a ssh-rsa key"),
        (f"@cert-authority * {ED25519}", "not supported"),
    ],
)
def test_parse_refuses_what_is_not_a_key(text, problem):
    with pytest.raises(hostkeys.HostKeyError, match=problem):
        hostkeys.parse(text)


def test_fingerprint_is_what_ssh_keygen_shows(tmp_path):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "k"], check=True
    )
    public = (tmp_path / "k.pub").read_text()
    shown = subprocess.run(
        ["ssh-keygen", "-lf", tmp_path / "k.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert hostkeys.parse(public)[0].fingerprint == shown
    assert hostkeys.fingerprints(ED25519) == [f"ED25519 {ED25519_FP}"]


@pytest.mark.django_db
def test_the_model_normalizes_and_validates_host_keys():
    node = NodeFactory(host_keys="")
    node.host_keys = f"10.0.0.1 {ED25519}\n"
    node.full_clean()
    assert node.host_keys == ED25519
    node.host_keys = "not a key"
    with pytest.raises(ValidationError, match="host_keys"):
        node.full_clean()


# --- jump hosts ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_jump_host_rules():
    bastion = NodeFactory(name="bastion")
    target = NodeFactory(name="target", jump_host=bastion)
    target.full_clean()

    target.jump_host = target
    with pytest.raises(ValidationError, match="its own jump host"):
        target.full_clean()
    beyond = NodeFactory(name="beyond")
    beyond.jump_host = target
    target.jump_host = bastion
    target.save()
    with pytest.raises(ValidationError, match="one hop"):
        beyond.full_clean()
    bastion.jump_host = NodeFactory(name="other")
    with pytest.raises(ValidationError, match="one hop"):
        bastion.full_clean()
    local = NodeFactory(name="local", connection=Connection.LOCAL, credential=None)
    beyond.jump_host = local
    with pytest.raises(ValidationError, match="must be an SSH node"):
        beyond.full_clean()
    beyond.jump_host = NodeFactory(
        name="pw", credential=CredentialFactory(kind=CredentialKind.PASSWORD, secret="pw")
    )
    with pytest.raises(ValidationError, match="SSH key credential"):
        beyond.full_clean()


# --- the files a job (or the operators' inventory) gets --------------------------------------


@pytest.mark.django_db
def test_inventory_with_ssh_dir_pins_every_node_and_routes_through_the_jump_host(tmp_path):
    bastion = NodeFactory(
        name="bastion",
        address="10.1.0.1",
        ssh_port=2200,
        host_keys=ED25519,
        credential=CredentialFactory(username="jump"),
    )
    target = NodeFactory(
        name="target", address="10.2.0.5", host_keys=f"{ED25519}\n{ECDSA}", jump_host=bastion
    )
    NodeFactory(name="local", connection=Connection.LOCAL, credential=None)
    ssh_dir = tmp_path / "ssh"

    inventory = build_inventory(key_dir=tmp_path / "keys", ssh_dir=ssh_dir)

    known = (ssh_dir / "known_hosts").read_text().splitlines()
    assert sorted(known) == sorted(
        [
            f"portal-node-{bastion.pk} {ED25519}",
            f"portal-node-{target.pk} {ECDSA}",
            f"portal-node-{target.pk} {ED25519}",
        ]
    )
    assert stat.S_IMODE(ssh_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((ssh_dir / "known_hosts").stat().st_mode) == 0o600
    hostvars = inventory["_meta"]["hostvars"]
    assert "ansible_ssh_common_args" not in hostvars["local"]
    args = shlex.split(str(hostvars["target"]["ansible_ssh_common_args"]))
    options = dict(args[i + 1].split("=", 1) for i in range(0, len(args), 2))
    assert options["StrictHostKeyChecking"] == "yes"
    assert options["HostKeyAlias"] == f"portal-node-{target.pk}"
    assert options["UserKnownHostsFile"] == str(ssh_dir / "known_hosts")
    assert options["GlobalKnownHostsFile"] == "/dev/null"
    assert options["ProxyCommand"] == (
        f"ssh -F {ssh_dir / 'ssh_config'} -W %h:%p portal-node-{bastion.pk}"
    )
    bastion_args = str(hostvars["bastion"]["ansible_ssh_common_args"])
    assert "ProxyCommand" not in bastion_args and "StrictHostKeyChecking=yes" in bastion_args

    config = (ssh_dir / "ssh_config").read_text()
    key_file = tmp_path / "keys" / f"credential-{bastion.credential_id}"
    for line in (
        f"Host portal-node-{bastion.pk}",
        "HostName 10.1.0.1",
        "Port 2200",
        "User jump",
        "StrictHostKeyChecking yes",
        f"HostKeyAlias portal-node-{bastion.pk}",
        f"UserKnownHostsFile {ssh_dir / 'known_hosts'}",
        f"IdentityFile {key_file}",
        "IdentitiesOnly yes",
        "BatchMode yes",
    ):
        assert f"  {line}\n" in config or config.startswith(line + "\n"), line
    assert key_file.exists()
    # ssh itself accepts the file (and resolves the jump host from it)
    parsed = subprocess.run(
        ["ssh", "-G", "-F", ssh_dir / "ssh_config", f"portal-node-{bastion.pk}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "hostname 10.1.0.1" in parsed and "stricthostkeychecking true" in parsed


@pytest.mark.django_db
def test_a_jump_host_address_that_could_inject_ssh_config_is_refused(tmp_path):
    bastion = NodeFactory(name="bastion", address="10.1.0.1\n  ProxyCommand touch /tmp/x")
    NodeFactory(name="target", jump_host=bastion)
    with pytest.raises(InventoryError, match="cannot be used for SSH"):
        build_inventory(ssh_dir=tmp_path / "ssh")


@pytest.mark.django_db
def test_an_unpinned_node_gets_no_key_and_an_invalid_pin_pins_nothing(tmp_path):
    NodeFactory(name="new", host_keys="")
    odd = NodeFactory(name="odd")
    Node.objects.filter(pk=odd.pk).update(host_keys="garbage")
    build_inventory(ssh_dir=tmp_path / "ssh")
    assert (tmp_path / "ssh" / "known_hosts").read_text() == ""


def test_the_job_ansible_cfg_checks_host_keys_strictly(tmp_path, settings):
    settings.JOB_SSH_SHARE_SECONDS = 0
    settings.JOBS_CONTROL_DIR = str(tmp_path)
    config = runner.write_ansible_cfg(tmp_path).read_text()
    assert "host_key_checking = True" in config
    assert "StrictHostKeyChecking=yes" in config and "StrictHostKeyChecking=no" not in config
    assert f"UserKnownHostsFile={tmp_path / 'ssh' / 'known_hosts'}" in config
    assert "GlobalKnownHostsFile=/dev/null" in config


@pytest.mark.django_db
def test_write_inventory_pins_first_contact_then_writes_the_pins(tmp_path, settings):
    settings.JOB_SSH_SHARE_SECONDS = 0
    node = NodeFactory(name="fresh", host_keys="")
    job = _launched(node)
    with mock.patch.object(hostkeys, "scan", return_value=keys(ED25519)) as scan:
        runner.write_inventory(job, tmp_path)
    scan.assert_called_once()
    node.refresh_from_db()
    assert node.host_keys == ED25519 and node.host_keys_pinned_how == "first_contact"
    assert (tmp_path / "ssh" / "known_hosts").read_text() == f"portal-node-{node.pk} {ED25519}\n"


# --- actions ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_first_contact_pins_once_and_never_overwrites():
    node = NodeFactory(host_keys="")
    with mock.patch.object(hostkeys, "scan", return_value=keys(ED25519)):
        actions.do_record_host_key(node)
    node.refresh_from_db()
    assert (node.host_keys, node.host_keys_pinned_how, node.host_keys_pinned_by) == (
        ED25519,
        "first_contact",
        None,
    )
    with mock.patch.object(hostkeys, "scan", return_value=keys(OTHER)) as scan:
        actions.do_record_host_key(node)
        assert (
            actions.do_pin_first_contact([node], Path("/nonexistent"), Path("/nonexistent")) == {}
        )
    scan.assert_not_called()
    node.refresh_from_db()
    assert node.host_keys == ED25519


@pytest.mark.django_db
def test_first_contact_that_cannot_read_the_key_leaves_the_node_unpinned(tmp_path):
    node = NodeFactory(name="down", host_keys="")
    with mock.patch.object(hostkeys, "scan", side_effect=hostkeys.ScanError("no answer")):
        problems = actions.do_pin_first_contact([node], tmp_path / "ssh", tmp_path / "keys")
    assert problems == {"down": "no answer"}
    node.refresh_from_db()
    assert node.host_keys == ""


@pytest.mark.django_db
def test_first_contact_pins_the_jump_host_before_the_node_behind_it(tmp_path):
    bastion = NodeFactory(name="bastion", host_keys="")
    target = NodeFactory(name="target", host_keys="", jump_host=bastion)
    seen = []

    def scan(node, ssh_dir=None):
        seen.append((node.name, ssh_dir))
        if node.name == "target":  # the jump host's pin is already in the files it uses
            assert f"portal-node-{bastion.pk} {ED25519}" in (ssh_dir / "known_hosts").read_text()
            return keys(OTHER)
        return keys(ED25519)

    with mock.patch.object(hostkeys, "scan", side_effect=scan):
        assert actions.do_pin_first_contact([target], tmp_path / "ssh", tmp_path / "keys") == {}
    assert seen == [("bastion", None), ("target", tmp_path / "ssh")]
    bastion.refresh_from_db()
    target.refresh_from_db()
    assert (bastion.host_keys, target.host_keys) == (ED25519, OTHER)


@pytest.mark.django_db
def test_accept_replaces_the_pin_and_records_who(admin_user):
    node = NodeFactory(host_keys=ED25519)
    with mock.patch.object(hostkeys, "scan", return_value=keys(OTHER)):
        actions.do_accept_host_key(node, by=admin_user)
    node.refresh_from_db()
    assert node.host_keys == OTHER
    assert node.host_keys_pinned_how == "accepted" and node.host_keys_pinned_by == admin_user
    assert node.host_keys_pinned_at is not None


@pytest.mark.django_db
def test_accept_says_why_when_the_key_cannot_be_read():
    node = NodeFactory(name="gone", host_keys=ED25519)
    with (
        mock.patch.object(hostkeys, "scan", side_effect=hostkeys.ScanError("no answer")),
        pytest.raises(Conflict, match="cannot read the host key of gone: no answer"),
    ):
        actions.do_accept_host_key(node, by=None)
    local = NodeFactory(name="here", connection=Connection.LOCAL, credential=None)
    with pytest.raises(Conflict, match="not reached over SSH"):
        actions.do_accept_host_key(local, by=None)


@pytest.mark.django_db
def test_keys_set_by_hand_record_who_set_them(admin_user):
    node = actions.do_create_node(
        by=admin_user,
        name="n1",
        address="10.0.0.9",
        purpose="fleet_host",
        credential=CredentialFactory(),
        host_keys=f"10.0.0.9 {ED25519}",
    )
    assert (node.host_keys, node.host_keys_pinned_how, node.host_keys_pinned_by) == (
        ED25519,
        "set",
        admin_user,
    )
    actions.do_update_node(node, by=None, labels={"a": "b"})
    node.refresh_from_db()
    assert node.host_keys_pinned_by == admin_user  # untouched keys keep their record
    actions.do_update_node(node, by=None, host_keys="")
    node.refresh_from_db()
    assert (node.host_keys, node.host_keys_pinned_at, node.host_keys_pinned_how) == ("", None, "")


# --- shared masters are closed when their node or credential changes ----------------------------


@pytest.fixture
def closed(settings, tmp_path):
    settings.JOBS_CONTROL_DIR = str(tmp_path)
    settings.JOB_SSH_SHARE_SECONDS = 300
    with mock.patch.object(ssh, "close_node_masters") as close:
        yield close


def _closed_ids(close) -> set[int]:
    return {pk for call in close.call_args_list for pk in call.args[0]}


@pytest.mark.django_db
def test_changing_how_a_node_logs_in_closes_its_masters(closed, django_capture_on_commit_callbacks):
    bastion = NodeFactory(name="bastion")
    target = NodeFactory(name="target", jump_host=bastion)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_update_node(bastion, labels={"rack": "a"})
    assert not closed.called  # nothing about the login changed
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_update_node(bastion, ssh_port=2222)
    assert _closed_ids(closed) == {bastion.pk, target.pk}  # the target rides on its login
    closed.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_update_credential(target.credential, username="other")
    assert _closed_ids(closed) == {target.pk}
    closed.reset_mock()
    target_pk = target.pk
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_delete_node(target)
    assert _closed_ids(closed) == {target_pk}


@pytest.mark.django_db
def test_a_rolled_back_change_closes_nothing(closed, django_capture_on_commit_callbacks):
    node = NodeFactory()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        actions.do_update_node(node, ssh_port=0)
    assert not closed.called


def test_close_node_masters_exits_and_removes_that_nodes_sockets(settings, tmp_path):
    settings.JOBS_CONTROL_DIR = str(tmp_path)
    settings.JOB_SSH_SHARE_SECONDS = 300
    shared = ssh.shared_dir()
    listeners = []
    for name in ("n7-aaa", "n7-bbb", "n70-ccc", "n8-ddd"):
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(shared / name))
        listeners.append(server)
    try:
        with mock.patch.object(ssh.subprocess, "run") as run:
            assert ssh.close_node_masters([7]) == 2
        exits = sorted(Path(call.args[0][2].split("=", 1)[1]).name for call in run.call_args_list)
        assert exits == ["n7-aaa", "n7-bbb"]
        assert sorted(os.listdir(shared)) == ["n70-ccc", "n8-ddd"]
    finally:
        for server in listeners:
            server.close()


@pytest.mark.django_db
def test_a_master_name_changes_with_the_pin_and_the_jump_host(settings):
    settings.JOB_SSH_SHARE_SECONDS = 300
    node = NodeFactory(host_keys=ED25519)
    with mock.patch("portal.jobs.ssh.time.time", return_value=900.0):
        name = ssh.control_name(node)
        node.host_keys = OTHER
        assert ssh.control_name(node) != name
        renamed = ssh.control_name(node)
        node.jump_host = NodeFactory(name="bastion")
        assert ssh.control_name(node) != renamed


# --- the reason a refused job gets -----------------------------------------------------------

CHANGED_MESSAGE = (
    'fatal: [web-1]: UNREACHABLE! => {"changed": false, "msg": "Failed to connect to the host '
    "via ssh: @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\\r\\n@    WARNING: "
    "REMOTE HOST IDENTIFICATION HAS CHANGED!     @\\r\\n... The fingerprint for the ED25519 "
    "key sent by the remote host is\\nSHA256:a7YpAJq2gOqu4xbMLz1FP8/OhkRHre5vJCH6pOQb7hQ.\\r\\n"
    "Please contact your system administrator.\\r\\nHost key for portal-node-{pk} has "
    'changed and you have requested strict checking.\\r\\nHost key verification failed.", '
    '"unreachable": true}'
)


def _launched(node) -> Job:
    with stubbed_broker():
        return jobs.launch(playbook="ping.yml", nodes=[node])


def _job_with_unreachable_event(node, stdout) -> Job:
    job = _launched(node)
    JobEvent.objects.create(
        job=job,
        counter=1,
        event="runner_on_unreachable",
        host=node.name,
        stdout=stdout,
        created="2026-01-01T00:00:00Z",
    )
    return job


@pytest.mark.django_db
def test_a_changed_key_gives_the_job_a_clear_reason():
    node = NodeFactory(name="web-1", host_keys=ED25519)
    job = _job_with_unreachable_event(node, CHANGED_MESSAGE.replace("{pk}", str(node.pk)))
    reason = jobs.host_key_refusal(job, {"web-1": {"unreachable": 1}})
    assert reason == (
        f"host key of node web-1 changed (expected {ED25519_FP}, got "
        "SHA256:a7YpAJq2gOqu4xbMLz1FP8/OhkRHre5vJCH6pOQb7hQ); an admin must accept the new key"
    )


@pytest.mark.django_db
def test_no_pinned_key_of_that_type_reads_the_offered_one():
    node = NodeFactory(name="web-2", host_keys="")
    message = (
        f"Failed to connect: No ED25519 host key is known for portal-node-{node.pk} "
        "and you have requested strict checking."
    )
    job = _job_with_unreachable_event(node, message)
    with mock.patch.object(hostkeys, "scan", return_value=keys(OTHER)):
        reason = jobs.host_key_refusal(job, {"web-2": {"unreachable": 1}})
    assert reason.startswith(
        "no host key pinned for node web-2 (first contact could not read it; got SHA256:"
    )
    assert reason.endswith("the next job reads it again, or an admin accepts it")


@pytest.mark.django_db
def test_a_jump_hosts_changed_key_is_found_by_reading_it():
    bastion = NodeFactory(name="bastion", host_keys=ED25519)
    target = NodeFactory(name="target", host_keys=OTHER, jump_host=bastion)
    job = _job_with_unreachable_event(target, "kex_exchange_identification: Connection closed")
    with mock.patch.object(hostkeys, "scan", return_value=keys(ECDSA)):
        reason = jobs.host_key_refusal(job, {"target": {"unreachable": 1}})
    assert reason.startswith(
        f"host key of node bastion (jump host of target) changed "
        f"(expected {ED25519_FP}, got SHA256:"
    )
    with mock.patch.object(hostkeys, "scan", return_value=keys(ED25519)):  # the same key
        assert jobs.host_key_refusal(job, {"target": {"unreachable": 1}}) == ""


@pytest.mark.django_db
def test_an_ordinary_unreachable_host_keeps_its_reason():
    node = NodeFactory(name="web-3", host_keys=ED25519)
    job = _job_with_unreachable_event(node, "ssh: connect to host 10.0.0.3: Connection refused")
    assert jobs.host_key_refusal(job, {"web-3": {"unreachable": 1}}) == ""


# --- the admin --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_shows_fingerprints_and_accepts_a_new_key(admin_client, admin_user):
    node = NodeFactory(name="web-4", host_keys=ED25519)
    page = admin_client.get(f"/admin/nodes/node/{node.pk}/change/")
    assert page.status_code == 200
    assert ED25519_FP.encode() in page.content and b"Accept new host key" in page.content
    listing = admin_client.get("/admin/nodes/node/")
    assert ED25519_FP.encode() in listing.content

    assert admin_client.get(f"/admin/nodes/node/{node.pk}/accept-host-key/").status_code == 405
    with mock.patch.object(hostkeys, "scan", return_value=keys(OTHER)):
        response = admin_client.post(f"/admin/nodes/node/{node.pk}/accept-host-key/", follow=True)
    assert b"host key accepted and pinned" in response.content
    node.refresh_from_db()
    assert node.host_keys == OTHER and node.host_keys_pinned_by == admin_user

    with mock.patch.object(hostkeys, "scan", return_value=keys(ED25519)):
        response = admin_client.post(
            "/admin/nodes/node/",
            {"action": "accept_new_host_key", "_selected_action": [node.pk]},
            follow=True,
        )
    node.refresh_from_db()
    assert node.host_keys == ED25519 and node.host_keys_pinned_how == "accepted"


@pytest.mark.django_db
def test_the_api_shows_fingerprints_and_takes_a_jump_host(admin_client):
    bastion = NodeFactory(name="bastion", host_keys=ED25519)
    node = NodeFactory(name="web-5")
    response = admin_client.patch(
        f"/api/nodes/{node.pk}/", {"jump_host": "bastion"}, content_type="application/json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["jump_host"] == "bastion"
    shown = admin_client.get(f"/api/nodes/{bastion.pk}/").json()
    assert shown["host_key_fingerprints"] == [f"ED25519 {ED25519_FP}"]
