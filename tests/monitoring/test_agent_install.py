"""Installing the agent (and rotating its token) through the job engine."""

import json

import pytest
from django.db import connection  # noqa: F401 - read by the skipif conditions

from portal.accounts.actions import hash_token
from portal.core.errors import Conflict, PortalError
from portal.jobs.choices import JobStatus
from portal.monitoring import actions
from portal.monitoring.choices import Liveness
from portal.monitoring.models import NodeLiveness
from tests.factories import NodeFactory
from tests.helpers import stubbed_broker

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def portal_url(settings):
    settings.MONITORING_PORTAL_URL = "http://10.213.1.1:8000/"
    with stubbed_broker():
        yield


def test_install_issues_a_token_kept_only_as_a_hash_and_passed_as_a_secret():
    node = NodeFactory()
    job = actions.do_install_agent(node, interval=10)
    assert (job.playbook, job.action, job.target_id) == (
        "node_agent.yml",
        actions.INSTALL_AGENT,
        str(node.pk),
    )
    assert job.extra_vars == {
        "node_agent_portal_url": "http://10.213.1.1:8000",
        "node_agent_node_id": node.pk,
        "node_agent_interval": 10,
    }
    token = job.secrets()["node_agent_token"]
    assert "node_agent_token" in job.sensitive_names
    assert token not in json.dumps(job.extra_vars)
    row = NodeLiveness.objects.get(node=node)
    assert row.next_token_hash == hash_token(token) and row.token_hash == ""
    assert token not in (row.token_hash, row.next_token_hash)


def test_a_successful_install_makes_the_new_token_the_only_one_and_sets_a_due_time():
    node = NodeFactory()
    job = actions.do_install_agent(node)
    token = job.secrets()["node_agent_token"]
    job.status = JobStatus.SUCCESSFUL
    actions.apply_install_result(job)
    row = NodeLiveness.objects.get(node=node)
    assert (row.token_hash, row.next_token_hash) == (hash_token(token), "")
    assert row.status == Liveness.UNKNOWN and row.next_due_at is not None


def test_rerunning_rotates_and_a_failed_rotation_keeps_both_tokens():
    node = NodeFactory()
    first = actions.do_install_agent(node)
    first.status = JobStatus.SUCCESSFUL
    actions.apply_install_result(first)
    first.__class__.objects.filter(pk=first.pk).update(status=JobStatus.SUCCESSFUL)
    second = actions.do_install_agent(node)
    second.status = JobStatus.FAILED
    actions.apply_install_result(second)
    row = NodeLiveness.objects.get(node=node)
    assert row.token_hash == hash_token(first.secrets()["node_agent_token"])
    assert row.next_token_hash == hash_token(second.secrets()["node_agent_token"])


def test_a_second_install_while_one_runs_is_refused():
    node = NodeFactory()
    actions.do_install_agent(node)
    with pytest.raises(Conflict):
        actions.do_install_agent(node)


@pytest.mark.parametrize("interval", [0, 4, 3601, True, "30"])
def test_a_bad_interval_is_refused(interval):
    with pytest.raises(PortalError) as raised:
        actions.do_install_agent(NodeFactory(), interval=interval)
    assert raised.value.field == "interval_seconds"


def test_a_disk_path_goes_to_the_role_and_a_bad_one_is_refused():
    job = actions.do_install_agent(NodeFactory(), disk_path="/srv/data")
    assert job.extra_vars["node_agent_disk_path"] == "/srv/data"
    for bad in ["srv", "/srv/{{ lookup('pipe', 'id') }}", "/a b", "", 5]:
        with pytest.raises(PortalError) as raised:
            actions.do_install_agent(NodeFactory(), disk_path=bad)
        assert raised.value.field == "disk_path"


def test_without_a_portal_url_the_install_is_refused(settings):
    settings.MONITORING_PORTAL_URL = settings.PORTAL_URL = ""
    with pytest.raises(PortalError) as raised:
        actions.do_install_agent(NodeFactory())
    assert raised.value.field == "portal_url"
    assert not NodeLiveness.objects.exists()


def test_the_api_launches_the_install_for_operators_only(admin_api, user_api):
    node = NodeFactory()
    answer = admin_api.post(f"/api/nodes/{node.pk}/agent", {"interval_seconds": 15}, format="json")
    assert answer.status_code == 202, answer.content
    assert answer.json()["node"] == node.pk
    bad = admin_api.post(
        f"/api/nodes/{NodeFactory().pk}/agent", {"interval_seconds": 1}, format="json"
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "interval_seconds"
    assert user_api().post(f"/api/nodes/{node.pk}/agent").status_code == 403
    assert admin_api.post("/api/nodes/999999/agent").status_code == 404


def test_the_admin_action_launches_the_install(admin_client):
    node = NodeFactory()
    page = admin_client.post(
        "/admin/monitoring/monitorednode/",
        {"action": "install_agent", "_selected_action": [node.pk]},
        follow=True,
    )
    assert page.status_code == 200
    assert "agent install launched" in page.content.decode()
    assert NodeLiveness.objects.get(node=node).next_token_hash
    listing = admin_client.get("/admin/monitoring/monitorednode/")
    assert listing.status_code == 200 and node.name in listing.content.decode()
    detail = admin_client.get(f"/admin/monitoring/monitorednode/{node.pk}/change/")
    assert detail.status_code == 200 and "rotate its token" in detail.content.decode()


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="row locks under concurrency: PostgreSQL only"
)
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_installs_of_one_node_launch_one_job():
    import threading

    from django.db import connections

    from portal.jobs.models import Job

    node = NodeFactory()
    start = threading.Barrier(2)
    outcomes = []

    def install():
        try:
            start.wait()
            outcomes.append(actions.do_install_agent(node).pk)
        except Conflict:
            outcomes.append("conflict")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=install) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes, key=str).count("conflict") == 1
    assert Job.objects.filter(action=actions.INSTALL_AGENT).count() == 1


def test_the_admin_list_shows_each_nodes_liveness(admin_client):
    up, silent = NodeFactory(), NodeFactory()
    NodeLiveness.objects.create(node=up, status=Liveness.UP, cpu_percent=12.5)
    html = admin_client.get("/admin/monitoring/monitorednode/").content.decode()
    assert 'class="status-badge status-up"' in html and "12.5 %" in html
    assert 'class="status-badge status-unknown"' in html  # silent: no agent yet
    assert silent.name in html
    down = admin_client.get("/admin/monitoring/monitorednode/?liveness__status__exact=up")
    assert silent.name not in down.content.decode()
