"""The clusters' admin: pages load with data, a run's page shows each node's timeline, and
its Cancel / Retry failed buttons go through the actions."""

import pytest
from django.urls import reverse

from portal.clusters.choices import NodeStatus as N
from portal.clusters.choices import RunStatus as R
from portal.clusters.models import ReprovisionRun
from tests.clusters.conftest import make_cluster, node_runs, start

pytestmark = pytest.mark.django_db


def test_the_pages_load(admin_client, broker):
    run = start(make_cluster(count=2))
    node = run.cluster.nodes.first()
    for url in (
        reverse("admin:clusters_cluster_changelist"),
        reverse("admin:clusters_cluster_change", args=[run.cluster_id]),
        reverse("admin:clusters_cluster_add"),
        reverse("admin:clusters_clusternode_changelist"),
        reverse("admin:clusters_clusternode_change", args=[node.pk]),
        reverse("admin:clusters_reprovisionrun_changelist") + "?q=pve",
    ):
        answer = admin_client.get(url)
        assert answer.status_code == 200, url
        assert "bmc-secret-pw" not in answer.content.decode()


def test_a_runs_page_shows_the_timeline_and_cancels(admin_client, broker):
    run = start(make_cluster(count=2))
    page = admin_client.get(reverse("admin:clusters_reprovisionrun_change", args=[run.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "pve-1" in text and "reimage sent" in text and "Cancel" in text
    cancel = reverse(
        "admin:clusters_reprovisionrun_detail_action", args=[run.pk, "cancel_selected"]
    )
    assert admin_client.post(cancel).status_code == 302
    run.refresh_from_db()
    assert run.status == R.CANCELED
    assert {nr.status for nr in node_runs(run).values()} == {N.CANCELED}


def test_retry_failed_from_the_admin(admin_client, broker):
    run = start(make_cluster(count=1))
    node_run = node_runs(run)["pve-1"]
    node_run.move(N.ERROR, reason="reimage failed")
    ReprovisionRun.objects.get(pk=run.pk).move(R.ERROR, reason="pve-1 failed")
    retry = reverse(
        "admin:clusters_reprovisionrun_detail_action", args=[run.pk, "retry_failed_selected"]
    )
    assert admin_client.post(retry).status_code == 302
    node_run.refresh_from_db()
    run.refresh_from_db()
    assert (node_run.status, run.status) == (N.REQUESTED, R.RUNNING)


def test_the_cluster_action_starts_a_run(admin_client, broker):
    cluster = make_cluster(count=2)
    answer = admin_client.post(
        reverse("admin:clusters_cluster_changelist"),
        {"action": "reprovision_all", "_selected_action": [cluster.pk]},
    )
    assert answer.status_code == 302
    assert ReprovisionRun.objects.get().node_runs.count() == 2
