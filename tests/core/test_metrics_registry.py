"""/metrics serves the collectors the apps register (portal.core.metrics): core imports none
of the apps built on it."""

import pytest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from portal.core import metrics
from portal.jobs.metrics import JobCollector

pytestmark = pytest.mark.django_db


class _Collector:
    def collect(self):
        family = GaugeMetricFamily("portal_test_figure", "A figure a test app registers")
        family.add_metric([], 7)
        yield family


@pytest.fixture
def test_collector():
    metrics.register(_Collector)
    yield _Collector
    metrics._FACTORIES.remove(_Collector)


def _names(client) -> set[str]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {family.name for family in text_string_to_metric_families(response.content.decode())}


def test_jobs_registers_its_collector_when_the_app_is_ready():
    assert JobCollector in metrics._FACTORIES


def test_a_registered_collector_is_served_once(client, settings, test_collector):
    settings.METRICS_OPEN = True
    settings.METRICS_TOKEN = ""
    metrics.register(test_collector)  # a second registration changes nothing
    assert metrics._FACTORIES.count(test_collector) == 1
    names = _names(client)
    assert "portal_test_figure" in names
    assert "portal_jobs" in names
