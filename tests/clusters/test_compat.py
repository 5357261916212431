"""The old system, kept: import_registered_nodes (idempotent, all or nothing, a bad file is
a CLI error), the registered-nodes.json export in the old shape (a round trip), the old
trigger and the old registration (an admin's token) answered by the new endpoints."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from portal.clusters.choices import NodeStatus as N
from portal.clusters.models import Cluster, ClusterNode, ReprovisionRun
from portal.nodes.models import Node
from tests.clusters.conftest import make_cluster, node_runs, start

pytestmark = pytest.mark.django_db

OLD = {
    "52:54:00:aa:00:01": {
        "hostname": "pve1.lab",
        "ip": "10.0.0.11",
        "mac": "52:54:00:aa:00:01",
        "type": "proxmox",
        "status": "registered",
        "registered_at": "2025-03-01T10:00:00Z",
        "reprovision_status": "clustered",
        "reprovision_started": "2025-03-01T09:30:00Z",
        "last_update": "2025-03-01T10:20:00Z",
    },
    "52:54:00:AA:00:02": {
        "hostname": "pve2",
        "ip": "10.0.0.12",
        "mac": "52:54:00:aa:00:02",
        "type": "proxmox",
        "status": "registered",
        "registered_at": "2025-03-01T10:01:00Z",
        "reprovision_status": "timeout",
        "reprovision_started": "2025-03-01T09:30:00Z",
        "last_update": "2025-03-01T10:15:00Z",
    },
}


def import_file(tmp_path, data, *args):
    path = tmp_path / "registered-nodes.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    out = StringIO()
    call_command("import_registered_nodes", str(path), *args, stdout=out)
    return out.getvalue()


def test_import_then_export_gives_the_old_file_back_and_a_second_import_changes_nothing(
    tmp_path, admin_api
):
    Cluster.objects.create(name="lab")
    assert import_file(tmp_path, OLD, "--cluster", "lab") == "2 created, 0 updated, 0 unchanged.\n"
    nodes = {n.mac: n for n in ClusterNode.objects.select_related("node", "cluster")}
    assert nodes["52:54:00:aa:00:01"].node.name == "pve1"
    assert nodes["52:54:00:aa:00:01"].node.address == "10.0.0.11"
    assert {n.cluster.name for n in nodes.values()} == {"lab"}
    exported = admin_api.get("/api/clusters/registered-nodes.json")
    assert exported.status_code == 200
    expected = {mac.lower(): entry for mac, entry in OLD.items()}
    assert exported.json() == expected
    assert import_file(tmp_path, OLD) == "0 created, 0 updated, 2 unchanged.\n"
    assert ClusterNode.objects.count() == 2 and Node.objects.count() == 2


def test_a_changed_entry_is_updated(tmp_path):
    import_file(tmp_path, OLD)
    changed = json.loads(json.dumps(OLD))
    changed["52:54:00:aa:00:01"]["ip"] = "10.0.0.21"
    assert import_file(tmp_path, changed) == "0 created, 1 updated, 1 unchanged.\n"
    assert ClusterNode.objects.get(mac="52:54:00:aa:00:01").ip == "10.0.0.21"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "one JSON object keyed by MAC"),
        ({"zz": OLD["52:54:00:aa:00:01"]}, "not a MAC address"),
        ({"52:54:00:aa:00:01": {**OLD["52:54:00:aa:00:01"], "ip": "x"}}, "not an IP"),
        ({"52:54:00:aa:00:01": {**OLD["52:54:00:aa:00:01"], "type": "esxi"}}, "type"),
        ({"52:54:00:aa:00:01": {**OLD["52:54:00:aa:00:01"], "hostname": "a b"}}, "hostname"),
        ({"52:54:00:aa:00:01": {**OLD["52:54:00:aa:00:01"], "last_update": "soon"}}, "ISO"),
        ({"52:54:00:aa:00:01": {**OLD["52:54:00:aa:00:01"], "reprovision_status": "x"}}, "old"),
        ({"52:54:00:aa:00:01": "registered"}, "not an object"),
        (
            {
                "52:54:00:aa:00:01": OLD["52:54:00:aa:00:01"],
                "52-54-00-AA-00-01": OLD["52:54:00:aa:00:01"],
            },
            "given twice",
        ),
    ],
)
def test_a_bad_file_imports_nothing_and_is_a_cli_error(tmp_path, data, says):
    good = dict(OLD)
    bad = (
        data
        if isinstance(data, str)
        else {**{"52:54:00:AA:00:02": good["52:54:00:AA:00:02"]}, **data}
    )
    with pytest.raises(CommandError, match=says):
        import_file(tmp_path, bad)
    assert not ClusterNode.objects.exists() and not Node.objects.exists()


def test_a_missing_file_or_cluster_is_a_cli_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        call_command("import_registered_nodes", str(tmp_path / "nope.json"))
    with pytest.raises(CommandError, match="No cluster named"):
        import_file(tmp_path, OLD, "--cluster", "nope")


def test_the_command_exits_non_zero_on_a_bad_file(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "bad.json"
    path.write_text("{")
    done = subprocess.run(
        [sys.executable, "manage.py", "import_registered_nodes", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "DEBUG": "true"},
    )
    assert done.returncode == 1 and "not JSON" in done.stderr


def test_the_export_derives_reprovision_status_from_the_latest_run(admin_api, broker):
    cluster = make_cluster(count=1)
    run = start(cluster)
    node_run = node_runs(run)["pve-1"]
    from portal.clusters import actions

    actions.legacy_register(
        {
            "mac": node_run.cluster_node.mac,
            "hostname": "pve-1",
            "ip": "10.9.0.1",
            "link0": "10.10.0.1",
            "status": "post-install-complete",
        },
        by=None,
    )
    entry = admin_api.get("/api/clusters/registered-nodes.json").json()[node_run.cluster_node.mac]
    assert entry["reprovision_status"] == "in_progress"
    assert (entry["hostname"], entry["ip"], entry["type"], entry["status"]) == (
        "pve-1",
        "10.9.0.1",
        "proxmox",
        "registered",
    )
    assert entry["reprovision_started"] == run.created_at.isoformat().replace("+00:00", "Z")


# --- the old calls ----------------------------------------------------------------------------


def test_the_old_trigger_for_one_mac_and_for_all(admin_api, broker):
    cluster = make_cluster(count=2)
    mac = cluster.nodes.first().mac
    one = admin_api.get(f"/api/clusters/legacy?action=reprovision&mac={mac.upper()}")
    assert one.status_code == 202, one.json()
    assert one.json()["nodes"] == [mac]
    busy = admin_api.post("/api/clusters/legacy?action=reprovision")
    assert busy.status_code == 409 and busy.json()["code"] == "node_busy"
    ReprovisionRun.objects.update(status="canceled")
    every = admin_api.post("/api/clusters/legacy?action=reprovision&timeout=90")
    assert every.status_code == 202
    assert len(every.json()["nodes"]) == 2
    assert ReprovisionRun.objects.get(pk=every.json()["runs"][0]).timeout_minutes == 90


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("action=delete", "action", 400),
        ("", "action", 400),
        ("action=reprovision&mac=nope", "mac", 400),
        ("action=reprovision&mac=52:54:00:99:99:99", "mac", 404),
        ("action=reprovision&timeout=-5", "timeout", 400),
    ],
)
def test_a_bad_old_trigger_is_a_4xx_naming_the_parameter(admin_api, query, field, code):
    make_cluster(count=1)
    answer = admin_api.post(f"/api/clusters/legacy?{query}")
    assert answer.status_code == code
    assert answer.json()["errors"][0]["field"] == field
    assert not ReprovisionRun.objects.exists()


def test_the_old_registration_needs_an_admin_and_registers(admin_api, user_api, broker):
    run = start(make_cluster(count=1))
    node_run = node_runs(run)["pve-1"]
    body = {
        "mac": node_run.cluster_node.mac,
        "hostname": "pve-1",
        "ip": "10.9.0.1",
        "status": "post-install-complete",
    }
    refused = user_api().post("/api/clusters/legacy/register", body, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "permission_denied"
    answer = admin_api.post("/api/clusters/legacy/register", body, format="json")
    assert answer.status_code == 200, answer.json()
    node_run.refresh_from_db()
    assert node_run.status == N.REGISTERED
    assert node_run.registration["link0"] == "10.9.0.1"  # the old body had no link0
    again = admin_api.post("/api/clusters/legacy/register", body, format="json")
    assert again.status_code == 200 and again.json()["repeated"] is True
    other = admin_api.post(
        "/api/clusters/legacy/register", {**body, "ip": "10.9.0.77"}, format="json"
    )
    assert other.status_code == 409 and other.json()["code"] == "token_used"
