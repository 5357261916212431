"""Self-registration: the post-install script's endpoint and the signed registration.

Every refusal (forged, replayed, expired, stale, another node's token, malformed) is a 4xx in
the API's error shape and changes nothing; the identical registration again is a 200 that
moves nothing twice."""

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from portal.clusters.choices import NodeStatus as N
from portal.clusters.models import ClusterNode, NodeReprovision, RegistrationNonce, ReprovisionEvent
from portal.jobs.models import Job
from tests.clusters.conftest import make_cluster, node_runs, start

pytestmark = pytest.mark.django_db
REGISTER = "/api/clusters/register"
SCRIPT = "/api/clusters/post-install"


def body_for(mac, hostname="pve-1", ip="10.9.0.101", link0="10.10.0.1", **more):
    data = {"mac": mac, "hostname": hostname, "ip": ip, "link0": link0}
    data["status"] = "post-install-complete"
    data.update(more)
    return json.dumps(data).encode()


def signed(secret, body, *, token, timestamp=None, nonce=None):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    message = f"{timestamp}\n{nonce}\n".encode() + body
    signature = hmac.new(bytes.fromhex(secret), message, hashlib.sha256).hexdigest()
    return {
        "HTTP_X_PORTAL_TOKEN": token,
        "HTTP_X_PORTAL_TIMESTAMP": timestamp,
        "HTTP_X_PORTAL_NONCE": nonce,
        "HTTP_X_PORTAL_SIGNATURE": signature,
    }


def fetch_token(api, node_run):
    """The token the node's script carries (the portal keeps only its hash)."""
    answer = api.get(SCRIPT, {"mac": node_run.cluster_node.mac})
    assert answer.status_code == 200, answer.content
    line = next(li for li in answer.content.decode().splitlines() if li.startswith("PORTAL_TOKEN="))
    return line.split("=", 1)[1].strip("'")


@pytest.fixture
def waiting(api, broker):
    """(api, node_run, token): a node of a fresh run that fetched its script."""
    run = start(make_cluster(count=2))
    node_run = node_runs(run)["pve-1"]
    token = fetch_token(api, node_run)
    node_run.refresh_from_db()
    assert node_run.status == N.INSTALLING
    return api, node_run, token


def post(api, body, headers):
    return api.generic("POST", REGISTER, body, content_type="application/json", **headers)


def snapshot(node_run):
    node_run.refresh_from_db()
    return (
        node_run.status,
        node_run.token_used_at,
        ReprovisionEvent.objects.count(),
        RegistrationNonce.objects.count(),
        Job.objects.count(),
        ClusterNode.objects.get(pk=node_run.cluster_node_id).registered_at,
    )


# --- success ---------------------------------------------------------------------------------


def test_a_signed_registration_registers_the_node_and_launches_its_readiness_check(
    waiting, django_capture_on_commit_callbacks, broker
):
    api, node_run, token = waiting
    body = body_for(node_run.cluster_node.mac)
    with django_capture_on_commit_callbacks(execute=True):
        answer = post(api, body, signed(node_run.secret, body, token=token))
    assert answer.status_code == 200, answer.json()
    assert answer.json() == {
        "status": "registered",
        "node": "pve-1",
        "run": node_run.run_id,
        "repeated": False,
    }
    node_run.refresh_from_db()
    assert node_run.status == N.REGISTERED and node_run.token_used_at is not None
    assert node_run.registration == json.loads(body)
    profile = node_run.cluster_node
    profile.refresh_from_db()
    assert (profile.hostname, profile.ip, profile.link0) == ("pve-1", "10.9.0.101", "10.10.0.1")
    job = node_run.current_job
    assert job.playbook == "cluster_node_ready.yml" and list(job.nodes.all()) == [profile.node]
    assert job.target == node_run
    published = [name for name, _ in broker.published()]
    assert "clusters.disable_network_boot" in published and "jobs.run" in published
    moves = list(node_run.history.values_list("from_status", "status"))
    assert moves[-1] == (N.INSTALLING, N.REGISTERED)


HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHd0U2Gv1MDtDXMBBvRPyW2ySm3rX0k7U3k5n7OBfMtl"


def test_the_new_host_keys_a_registration_sends_are_pinned_on_the_node(waiting, settings):
    """A reinstall made new SSH host keys: the signed registration carries them and the
    portal pins them (its jobs then trust this install's keys, no other)."""
    api, node_run, token = waiting
    node = node_run.cluster_node.node
    type(node).objects.filter(pk=node.pk).update(host_keys="ssh-rsa AAAAB3NzaC1yc2E= old")
    body = body_for(node_run.cluster_node.mac, host_keys=f"{HOST_KEY}\n")
    answer = post(api, body, signed(node_run.secret, body, token=token))
    assert answer.status_code == 200, answer.json()
    node.refresh_from_db()
    assert node.host_keys == HOST_KEY and node.host_keys_pinned_how == "registered"


def test_the_identical_registration_again_is_200_and_moves_nothing_twice(waiting):
    api, node_run, token = waiting
    body = body_for(node_run.cluster_node.mac)
    assert post(api, body, signed(node_run.secret, body, token=token)).status_code == 200
    before = snapshot(node_run)
    again = post(api, body, signed(node_run.secret, body, token=token))
    assert again.status_code == 200 and again.json()["repeated"] is True
    after = snapshot(node_run)
    assert after[:3] == before[:3] and after[4:] == before[4:]  # one more nonce only


# --- refusals: each a 4xx, nothing changes ---------------------------------------------------


def test_a_replayed_request_is_409_even_after_success(waiting):
    api, node_run, token = waiting
    body = body_for(node_run.cluster_node.mac)
    headers = signed(node_run.secret, body, token=token)
    assert post(api, body, headers).status_code == 200
    before = snapshot(node_run)
    replay = post(api, body, headers)
    assert replay.status_code == 409 and replay.json()["code"] == "replayed"
    assert replay.json()["errors"][0]["field"] == "X-Portal-Nonce"
    assert snapshot(node_run) == before


def test_a_used_token_for_another_registration_is_409(waiting):
    api, node_run, token = waiting
    body = body_for(node_run.cluster_node.mac)
    assert post(api, body, signed(node_run.secret, body, token=token)).status_code == 200
    before = snapshot(node_run)
    other = body_for(node_run.cluster_node.mac, ip="10.9.0.66")
    answer = post(api, other, signed(node_run.secret, other, token=token))
    assert answer.status_code == 409 and answer.json()["code"] == "token_used"
    assert snapshot(node_run) == before


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("signature", "bad_signature"),
        ("body", "bad_signature"),
        ("secret", "bad_signature"),
        ("token", "invalid_token"),
        ("stale", "stale_timestamp"),
        ("future", "stale_timestamp"),
    ],
)
def test_forged_or_stale_requests_are_403_and_change_nothing(waiting, tamper, code):
    api, node_run, token = waiting
    body = body_for(node_run.cluster_node.mac)
    secret = secrets.token_hex(32) if tamper == "secret" else node_run.secret
    # 10 s past the 300 s bound: int() truncates, and the server reads its clock later
    when = {"stale": time.time() - 310, "future": time.time() + 310}.get(tamper)
    headers = signed(secret, body, token=token, timestamp=int(when) if when else None)
    if tamper == "signature":
        headers["HTTP_X_PORTAL_SIGNATURE"] = "0" * 64
    if tamper == "token":
        headers["HTTP_X_PORTAL_TOKEN"] = secrets.token_urlsafe(32)
    sent = body.replace(b"10.9.0.101", b"10.9.0.102") if tamper == "body" else body
    before = snapshot(node_run)
    answer = post(api, sent, headers)
    assert answer.status_code == 403, answer.json()
    assert answer.json()["code"] == code and answer.json()["status"] == 403
    assert snapshot(node_run) == before


def test_an_expired_token_is_403(waiting):
    api, node_run, token = waiting
    NodeReprovision.objects.filter(pk=node_run.pk).update(
        token_expires=timezone.now() - timedelta(seconds=1)
    )
    body = body_for(node_run.cluster_node.mac)
    before = snapshot(node_run)
    answer = post(api, body, signed(node_run.secret, body, token=token))
    assert answer.status_code == 403 and answer.json()["code"] == "token_expired"
    assert snapshot(node_run) == before


def test_the_token_expires_with_the_nodes_deadline(waiting):
    _, node_run, _ = waiting
    assert node_run.token_expires == node_run.deadline


def test_another_nodes_token_is_403_wrong_node(waiting):
    api, node_run, token = waiting
    other_mac = node_runs(node_run.run)["pve-2"].cluster_node.mac
    body = body_for(other_mac)
    before = snapshot(node_run)
    answer = post(api, body, signed(node_run.secret, body, token=token))
    assert answer.status_code == 403 and answer.json()["code"] == "wrong_node"
    assert snapshot(node_run) == before
    assert node_runs(node_run.run)["pve-2"].status == N.REBOOTING


def test_a_token_replaced_by_a_later_fetch_is_refused(waiting):
    api, node_run, old = waiting
    new = fetch_token(api, node_run)
    assert new != old
    body = body_for(node_run.cluster_node.mac)
    answer = post(api, body, signed(node_run.secret, body, token=old))
    assert answer.status_code == 403 and answer.json()["code"] == "invalid_token"
    assert post(api, body, signed(node_run.secret, body, token=new)).status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        "HTTP_X_PORTAL_TOKEN",
        "HTTP_X_PORTAL_TIMESTAMP",
        "HTTP_X_PORTAL_NONCE",
        "HTTP_X_PORTAL_SIGNATURE",
    ],
)
def test_a_missing_header_is_400_naming_it(waiting, header):
    api, node_run, token = waiting
    body = body_for(node_run.cluster_node.mac)
    headers = signed(node_run.secret, body, token=token)
    del headers[header]
    answer = post(api, body, headers)
    assert answer.status_code == 400
    name = "-".join(part.capitalize() for part in header[5:].split("_")).replace("Portal", "Portal")
    assert answer.json()["errors"][0]["field"] == name


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", None),
        (b"not json", None),
        (b"[" * 5000, None),
        (json.dumps({"mac": "52:54:00:00:00:01"}).encode(), "hostname"),
        (body_for("52:54:00:00:00:01", status="done"), "status"),
        (body_for("52:54:00:00:00:01", ip="10.9.0.999"), "ip"),
        (body_for("52:54:00:00:00:01", link0="$(reboot)"), "link0"),
        (body_for("52:54:00:00:00:01", hostname="pve 1;rm -rf /"), "hostname"),
        (body_for("nope"), "mac"),
        (body_for(7), "mac"),
        (body_for("52:54:00:00:00:01", host_keys="ssh-ed25519 not-base64!"), "host_keys"),
        (body_for("52:54:00:00:00:01", host_keys=["ssh-ed25519 AAAA"]), "host_keys"),
    ],
)
def test_a_bad_body_is_400_naming_the_field_and_changes_nothing(waiting, body, field):
    api, node_run, token = waiting
    before = snapshot(node_run)
    answer = post(api, body, signed(node_run.secret, body, token=token))
    assert answer.status_code == 400, answer.json()
    assert answer.json()["errors"][0]["field"] == field
    assert snapshot(node_run) == before


def test_a_registration_for_a_node_not_installing_is_409(waiting):
    api, node_run, token = waiting
    NodeReprovision.objects.filter(pk=node_run.pk).update(status=N.CANCELED)
    body = body_for(node_run.cluster_node.mac)
    answer = post(api, body, signed(node_run.secret, body, token=token))
    assert answer.status_code == 409 and answer.json()["code"] == "not_expected"
    assert not RegistrationNonce.objects.exists()


# --- the post-install script endpoint -------------------------------------------------------


def test_the_script_is_only_for_a_node_waiting_for_it_and_unknown_macs_look_the_same(api, broker):
    run = start(make_cluster(count=2), reimage=False)
    requested = node_runs(run)["pve-1"]
    answers = [
        api.get(SCRIPT, {"mac": mac})
        for mac in (requested.cluster_node.mac, "52:54:00:99:99:99", "junk", "")
    ]
    assert [a.status_code for a in answers] == [404] * 4
    assert len({json.dumps(a.json()) for a in answers}) == 1
    requested.refresh_from_db()
    assert requested.status == N.REQUESTED and requested.token_hash == ""


def test_the_script_moves_the_node_to_installing_and_embeds_only_a_hash(api, broker):
    run = start(make_cluster(count=1))
    node_run = node_runs(run)["pve-1"]
    answer = api.get(SCRIPT, {"mac": node_run.cluster_node.mac.upper()})
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/x-shellscript")
    assert answer["Cache-Control"] == "no-store"
    script = answer.content.decode()
    assert script.startswith("#!/bin/sh\n")
    node_run.refresh_from_db()
    line = next(li for li in script.splitlines() if li.startswith("PORTAL_TOKEN="))
    clear = line.split("=", 1)[1].strip("'")
    assert node_run.token_hash == hashlib.sha256(clear.encode()).hexdigest()
    assert clear not in json.dumps(list(NodeReprovision.objects.values()), default=str)
    assert f"\nPORTAL_SECRET={node_run.secret}\n" in script  # hex: no quoting needed
    assert "\nPORTAL_URL=http://testserver/api/clusters/register\n" in script
    assert node_run.status == N.INSTALLING
    assert list(node_run.history.values_list("status", flat=True))[-1] == N.INSTALLING


def test_a_registration_over_4_kb_is_413(waiting):
    api, node_run, token = waiting
    body = body_for(node_run.cluster_node.mac, padding="x" * 5000)
    before = snapshot(node_run)
    answer = post(api, body, signed(node_run.secret, body, token=token))
    assert answer.status_code == 413 and answer.json()["code"] == "request_too_large"
    assert snapshot(node_run) == before


def test_the_script_is_served_only_to_the_provisioning_networks(api, broker, settings):
    run = start(make_cluster(count=1))
    mac = node_runs(run)["pve-1"].cluster_node.mac
    settings.CLUSTERS_POST_INSTALL_NETWORKS = ["10.77.0.0/16"]
    outside = api.get(SCRIPT, {"mac": mac}, REMOTE_ADDR="192.0.2.9")
    assert outside.status_code == 404  # the same answer as an unknown MAC
    assert node_runs(run)["pve-1"].status == N.REBOOTING
    settings.CLUSTERS_POST_INSTALL_NETWORKS = ["not-a-network"]
    assert api.get(SCRIPT, {"mac": mac}, REMOTE_ADDR="10.77.1.2").status_code == 404
    from portal.clusters.checks import post_install_networks_check

    assert [e.id for e in post_install_networks_check()] == ["clusters.E001"]
    settings.CLUSTERS_POST_INSTALL_NETWORKS = ["10.77.0.0/16"]
    inside = api.get(SCRIPT, {"mac": mac}, REMOTE_ADDR="10.77.1.2")
    assert inside.status_code == 200
    assert post_install_networks_check() == []
