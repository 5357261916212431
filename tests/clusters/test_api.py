"""/api/clusters/…: admins only (a customer's token is 403, anonymous 401, except the node's
own calls); clusters and nodes (the BMC password written, never read); runs started,
canceled and retried through the actions, with a per-node timeline; 4xx naming the field."""

import pytest
from rest_framework.authtoken.models import Token

from portal.clusters.choices import NodeStatus as N
from portal.clusters.choices import RunStatus as R
from portal.clusters.models import ClusterNode, NodeReprovision, ReprovisionRun
from portal.nodes.choices import NodePurpose
from tests.clusters.conftest import make_cluster, node_runs, start
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db

ADMIN_ONLY = [
    ("get", "/api/clusters/"),
    ("post", "/api/clusters/"),
    ("get", "/api/clusters/nodes/"),
    ("get", "/api/clusters/runs/"),
    ("post", "/api/clusters/runs/"),
    ("get", "/api/clusters/registered-nodes.json"),
    ("post", "/api/clusters/legacy?action=reprovision"),
    ("get", "/api/clusters/legacy?action=reprovision"),
    ("post", "/api/clusters/legacy/register"),
]


@pytest.fixture
def customer_api(api, owner):
    user, _ = owner
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


@pytest.mark.parametrize(("method", "path"), ADMIN_ONLY)
def test_a_customer_token_is_403_and_anonymous_401(customer_api, api, method, path):
    make_cluster(count=1)
    answer = getattr(customer_api, method)(path, {}, format="json")
    assert answer.status_code == 403, answer.content
    assert answer.json()["code"] == "permission_denied"
    customer_api.credentials()
    assert getattr(customer_api, method)(path, {}, format="json").status_code == 401
    assert ReprovisionRun.objects.count() == 0


def test_a_customer_cannot_see_or_act_on_a_run(customer_api, broker):
    run = start(make_cluster(count=1))
    for method, path in [
        ("get", f"/api/clusters/runs/{run.pk}/"),
        ("post", f"/api/clusters/runs/{run.pk}/cancel"),
        ("post", f"/api/clusters/runs/{run.pk}/nodes/1/retry"),
        ("delete", f"/api/clusters/{run.cluster_id}/"),
    ]:
        assert getattr(customer_api, method)(path).status_code in (403, 404)
    run.refresh_from_db()
    assert run.status == R.RUNNING


# --- clusters and nodes ---------------------------------------------------------------------


def test_clusters_and_nodes_are_created_and_the_bmc_password_never_read(admin_api):
    cluster = admin_api.post("/api/clusters/", {"name": "pve-lab"}, format="json")
    assert cluster.status_code == 201, cluster.json()
    node = NodeFactory(name="pve-a", purpose=NodePurpose.PROXMOX_NODE)
    body = {
        "node": node.pk,
        "cluster": cluster.json()["id"],
        "mac": "52-54-00-AA-BB-01",
        "link0": "10.10.0.1",
        "power_driver": "ipmi",
        "bmc_address": "10.8.0.1",
        "bmc_password": "s3cret-bmc",
    }
    made = admin_api.post("/api/clusters/nodes/", body, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["mac"] == "52:54:00:aa:bb:01"
    assert "bmc_password" not in made.json() and made.json()["bmc_password_set"] is True
    assert ClusterNode.objects.get().bmc_password == "s3cret-bmc"
    listed = admin_api.get("/api/clusters/nodes/", {"mac": "52:54:00:AA:BB:01"})
    assert [n["node_name"] for n in listed.json()["results"]] == ["pve-a"]
    assert "s3cret-bmc" not in listed.content.decode()
    init = admin_api.patch(
        f"/api/clusters/{cluster.json()['id']}/", {"init_node": made.json()["id"]}, format="json"
    )
    assert init.status_code == 200 and init.json()["init_node"] == made.json()["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a-name-far-too-long"}, "name"),
        ({"name": "pve_1"}, "name"),
        ({"name": 15}, "name"),
    ],
)
def test_a_bad_cluster_is_400_naming_the_field(admin_api, body, field):
    answer = admin_api.post("/api/clusters/", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == field


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mac": "taken"}, "mac"),  # the other node's
        ({"mac": "zz:54:00:00:00:01"}, "mac"),
        ({"power_driver": "telnet"}, "power_driver"),
        ({"link0": "not-an-ip"}, "link0"),
        ({"power_options": []}, "power_options"),
    ],
)
def test_a_bad_node_is_400_naming_the_field(admin_api, change, field):
    cluster = make_cluster(count=1)
    body = {
        "node": NodeFactory(name="pve-b").pk,
        "cluster": cluster.pk,
        "mac": "52:54:00:00:ff:09",
        "power_driver": "ipmi",
        **change,
    }
    if body["mac"] == "taken":
        body["mac"] = cluster.nodes.get().mac.upper()
    answer = admin_api.post("/api/clusters/nodes/", body, format="json")
    assert answer.status_code == 400, answer.json()
    assert answer.json()["errors"][0]["field"] == field


def test_an_init_node_of_another_cluster_is_refused(admin_api):
    first, second = make_cluster("one", count=1), make_cluster("two", count=1)
    answer = admin_api.patch(
        f"/api/clusters/{first.pk}/", {"init_node": second.nodes.get().pk}, format="json"
    )
    assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "init_node"


# --- runs -------------------------------------------------------------------------------------


def test_a_run_is_started_with_its_rows_and_reimage_tasks_on_commit(
    admin_api, broker, django_capture_on_commit_callbacks
):
    cluster = make_cluster(count=3)
    with django_capture_on_commit_callbacks(execute=True):
        answer = admin_api.post(
            "/api/clusters/runs/",
            {"cluster": cluster.pk, "nodes": "all", "timeout_minutes": 90},
            format="json",
        )
    assert answer.status_code == 201, answer.json()
    run = ReprovisionRun.objects.get()
    assert answer.json()["id"] == run.pk and answer.json()["requested_by"] == "root-admin"
    assert (run.status, run.timeout_minutes) == (R.REQUESTED, 90)
    assert [n["status"] for n in answer.json()["nodes"]] == [N.REQUESTED] * 3
    assert [n["timeline"][0]["status"] for n in answer.json()["nodes"]] == [N.REQUESTED] * 3
    reimages = [args for name, args in broker.published() if name == "clusters.reimage"]
    assert sorted(reimages) == sorted([nr.pk] for nr in NodeReprovision.objects.all())


def test_a_run_of_some_nodes(admin_api, broker):
    cluster = make_cluster(count=3)
    chosen = list(cluster.nodes.order_by("node__name")[:2])
    answer = admin_api.post(
        "/api/clusters/runs/",
        {"cluster": cluster.pk, "nodes": [n.pk for n in chosen]},
        format="json",
    )
    assert answer.status_code == 201
    assert [n["node_name"] for n in answer.json()["nodes"]] == ["pve-1", "pve-2"]
    assert answer.json()["timeout_minutes"] == 60


@pytest.mark.parametrize(
    ("nodes", "timeout", "field"),
    [
        ("other", None, "nodes"),
        ([], None, "nodes"),
        ("some", None, "nodes"),
        ([99999], None, "nodes"),
        ("all", 0, "timeout_minutes"),
        ("all", 10**9, "timeout_minutes"),
        ("all", "soon", "timeout_minutes"),
        ("twice", None, "nodes"),
    ],
)
def test_a_bad_run_is_400_naming_the_field_and_starts_nothing(admin_api, nodes, timeout, field):
    cluster = make_cluster("one", count=2)
    other = make_cluster("two", count=1)
    if nodes == "other":
        nodes = [other.nodes.get().pk]
    if nodes == "twice":
        nodes = [cluster.nodes.first().pk] * 2
    body = {"cluster": cluster.pk, "nodes": nodes}
    if timeout is not None:
        body["timeout_minutes"] = timeout
    answer = admin_api.post("/api/clusters/runs/", body, format="json")
    assert answer.status_code == 400, answer.json()
    assert answer.json()["errors"][0]["field"] == field
    assert not ReprovisionRun.objects.exists()


def test_a_node_in_another_active_run_is_409(admin_api, broker):
    cluster = make_cluster(count=2)
    start(cluster, nodes=[cluster.nodes.first()])
    answer = admin_api.post("/api/clusters/runs/", {"cluster": cluster.pk}, format="json")
    assert answer.status_code == 409 and answer.json()["code"] == "node_busy"
    assert ReprovisionRun.objects.count() == 1


def test_cancel_ends_the_run_and_its_moving_nodes(admin_api, broker):
    run = start(make_cluster(count=2))
    answer = admin_api.post(f"/api/clusters/runs/{run.pk}/cancel")
    assert answer.status_code == 200
    assert answer.json()["status"] == R.CANCELED
    assert {n["status"] for n in answer.json()["nodes"]} == {N.CANCELED}
    assert answer.json()["events"][-1]["by"] == "root-admin"
    again = admin_api.post(f"/api/clusters/runs/{run.pk}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "already_finished"


def test_retry_of_a_failed_node_reopens_the_run(admin_api, broker):
    run = start(make_cluster(count=1))
    node_run = node_runs(run)["pve-1"]
    node_run.move(N.ERROR, reason="reimage failed")
    run.refresh_from_db()
    assert run.status == R.RUNNING  # settled only by the actions; end it as they would
    run.move(R.ERROR, reason="pve-1 failed")
    answer = admin_api.post(
        f"/api/clusters/runs/{run.pk}/nodes/{node_run.cluster_node_id}/retry",
        {"timeout_minutes": 30},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == R.RUNNING and answer.json()["timeout_minutes"] == 30
    assert answer.json()["nodes"][0]["status"] == N.REQUESTED
    old_secret = node_run.secret
    node_run.refresh_from_db()
    assert node_run.secret != old_secret and node_run.token_hash == ""
    refused = admin_api.post(f"/api/clusters/runs/{run.pk}/nodes/{node_run.cluster_node_id}/retry")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_status"
    missing = admin_api.post(f"/api/clusters/runs/{run.pk}/nodes/424242/retry")
    assert missing.status_code == 404


def test_runs_are_filtered_by_cluster_and_status(admin_api, broker):
    first = start(make_cluster("one", count=1))
    start(make_cluster("two", count=1))
    listed = admin_api.get("/api/clusters/runs/", {"cluster": first.cluster_id})
    assert [r["id"] for r in listed.json()["results"]] == [first.pk]
    assert admin_api.get("/api/clusters/runs/", {"status": "clustered"}).json()["count"] == 0
    assert admin_api.get("/api/clusters/runs/", {"status": "nope"}).status_code == 400


@pytest.mark.parametrize(
    ("driver", "options", "bmc", "says"),
    [
        ("ipmi", {}, "", "has no BMC address"),
        ("redfish", {"colour": "red"}, "10.8.0.9", "unknown power option"),
        ("test-host", {}, "", "command"),
    ],
)
def test_a_node_whose_power_driver_cannot_be_called_is_refused_before_any_reimage(
    admin_api, broker, driver, options, bmc, says
):
    cluster = make_cluster(count=2)
    broken = cluster.nodes.get(node__name="pve-2")
    ClusterNode.objects.filter(pk=broken.pk).update(
        power_driver=driver, power_options=options, bmc_address=bmc
    )
    answer = admin_api.post("/api/clusters/runs/", {"cluster": cluster.pk}, format="json")
    assert answer.status_code == 400, answer.json()
    error = answer.json()["errors"][0]
    assert error["field"] == "nodes" and "pve-2" in error["message"] and says in error["message"]
    assert not ReprovisionRun.objects.exists() and not broker.published()
