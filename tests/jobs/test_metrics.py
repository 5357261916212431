import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.jobs.test_runner import run_now

pytestmark = pytest.mark.django_db(transaction=True)


def _samples(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    families = text_string_to_metric_families(response.content.decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_metrics_after_a_run(client, local_node):
    job = run_now(playbook="echo.yml", nodes=[local_node])
    samples = _samples(client)
    assert samples[("portal_jobs", (("playbook", "echo.yml"), ("status", "successful")))] == 1
    assert samples[("portal_job_duration_seconds_count", ())] == 1
    assert samples[("portal_job_duration_seconds_bucket", (("le", "+Inf"),))] == 1
    assert job.event_lag_p95_ms is not None
    assert samples[("portal_job_event_lag_p95_seconds_max", ())] == pytest.approx(
        job.event_lag_p95_ms / 1000
    )


def test_metrics_token(client, settings):
    settings.METRICS_TOKEN = "t0ken-for-tests"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken-for-tests").status_code == 200
