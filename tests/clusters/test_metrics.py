"""/metrics: runs by status, the nodes of active runs by phase, time to clustered."""

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.clusters.choices import NodeStatus as N
from portal.clusters.choices import RunStatus as R
from portal.clusters.models import ReprovisionRun
from tests.clusters.conftest import make_cluster, node_runs, start

pytestmark = pytest.mark.django_db


def scrape(client):
    text = client.get("/metrics").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("portal_cluster")
    }


def test_the_clusters_figures(admin_client, broker, settings):
    settings.METRICS_TOKEN, settings.METRICS_OPEN = "", True  # open for the test
    start(make_cluster("one", count=2))
    done = start(make_cluster("two", count=1))
    for node_run in node_runs(done).values():
        for to in (N.INSTALLING, N.REGISTERED, N.READY, N.JOINING, N.CLUSTERED):
            node_run.move(to)
    ReprovisionRun.objects.get(pk=done.pk).move(R.CLUSTERED, reason="1 node(s) clustered")
    ReprovisionRun.objects.filter(pk=done.pk).update(
        finished_at=done.created_at + timedelta(minutes=20)
    )
    figures = scrape(admin_client)
    assert figures[("portal_cluster_runs", (("status", "running"),))] == 1
    assert figures[("portal_cluster_runs", (("status", "clustered"),))] == 1
    assert figures[("portal_cluster_nodes_reprovisioning", (("status", "rebooting"),))] == 2
    assert figures[("portal_cluster_nodes_reprovisioning", (("status", "clustered"),))] == 0
    assert figures[("portal_cluster_run_seconds_count", ())] == 1
    assert figures[("portal_cluster_run_seconds_sum", ())] == pytest.approx(1200, abs=1)
