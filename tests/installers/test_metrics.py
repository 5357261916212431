"""/metrics and the admin home: install runs by outcome, success rate and failures by type
per installer, run time from the jobs, the queue."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from portal.installers import actions
from portal.installers.actions import results
from portal.installers.choices import InstallationStatus as S
from portal.jobs.models import Job
from tests.factories import NodeFactory
from tests.helpers import stubbed_broker

pytestmark = pytest.mark.django_db
ENDINGS = [
    (S.INSTALLED, "exit 0"),
    (S.INSTALLED, "exit 0 (unchanged)"),
    (S.REJECTED, "exit 1 (validation error): x"),
    (S.NEEDS_OPERATOR, "exit 3 (configuration error): x"),
    (S.FAILED, "exit 124 (timed out): sleep 999"),
    (S.FAILED, "exit 2 (installation error, after 3 attempt(s)): apt-get"),
    (S.FAILED, "node unreachable after 3 attempt(s)"),
]


@pytest.fixture
def runs():
    """Seven web-server runs ended as ENDINGS (one job, 40 s), a minimal one installing."""
    with stubbed_broker():
        launched = actions.do_install(
            [NodeFactory() for _ in ENDINGS], "web-server", {"server_name": "a.b"}
        )
        actions.do_install([NodeFactory()], "minimal", {})
    # The timeout's reason as the results handler writes it (the metric reads its prefix).
    timed_out = results.outcome("install", launched.job, {"rc": 124, "failing_line": "x"}, False)
    assert timed_out[0] == S.FAILED
    endings = [timed_out if reason.startswith("exit 124") else (s, reason) for s, reason in ENDINGS]
    for installation, (status, reason) in zip(launched.installations, endings, strict=True):
        installation.move(status, reason=reason, job=launched.job)
    now = timezone.now()
    Job.objects.filter(pk=launched.job.pk).update(
        started_at=now - timedelta(seconds=40), finished_at=now
    )
    return launched


def samples(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    families = text_string_to_metric_families(response.content.decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_metrics(client, runs):
    got = samples(client)
    web = (("installer", "web-server"),)
    assert got[("portal_installer_runs_ended", web)] == 7
    assert got[("portal_installer_success_ratio", web)] == pytest.approx(2 / 7)
    for kind, count in [
        ("rejected", 1),
        ("needs_operator", 1),
        ("failed_timeout", 1),
        ("failed", 2),
    ]:
        assert got[("portal_installer_failures", (*web, ("type", kind)))] == count, kind
    assert got[("portal_installer_run_seconds_count", web)] == 1
    assert got[("portal_installer_run_seconds_sum", web)] == pytest.approx(40)
    assert got[("portal_installations_queued", (("status", "installing"),))] == 1
    assert got[("portal_installations_queued", (("status", "pending"),))] == 0
    assert ("portal_installer_runs_ended", (("installer", "minimal"),)) not in got


def test_the_admin_home_shows_the_installers_figures(admin_client, runs):
    page = admin_client.get("/admin/").content.decode()
    assert 'title="installations pending, installing or uninstalling"><b>1</b>' in page
    assert "<b>29&nbsp;%</b>" in page  # 2 of 7
    failures = page.split('id="installer-failures"')[1].split("</p>")[0]
    for text in ("1 rejected", "1 need an operator", "1 timed out", "2 failed", "40.0&nbsp;s"):
        assert text in failures, text
