"""The admin home's figures: the jobs' own, and those the apps built on jobs register
(portal.jobs.dashboard.register), so jobs imports none of them."""

import pytest

from portal.jobs import dashboard
from portal.labs import dashboard as labs_dashboard
from portal.workspaces import dashboard as workspaces_dashboard

pytestmark = pytest.mark.django_db


def test_workspaces_and_labs_register_their_figures():
    assert workspaces_dashboard.admin_home_figures in dashboard._PROVIDERS
    assert labs_dashboard.admin_home_figures in dashboard._PROVIDERS
    figures = dashboard.admin_home()
    assert {
        "running",
        "failed_today",
        "queue_depth",
        "outcomes",
        "workspaces",
        "workspaces_total",
        "creates_refused",
        "labs_active",
    } <= set(figures)
    assert figures["workspaces_total"] == 0 and figures["labs_active"] == 0


def test_a_registered_provider_adds_its_figures_once():
    def provider():
        return {"test_figure": 3}

    dashboard.register(provider)
    dashboard.register(provider)
    try:
        assert dashboard._PROVIDERS.count(provider) == 1
        assert dashboard.admin_home()["test_figure"] == 3
    finally:
        dashboard._PROVIDERS.remove(provider)
    assert "test_figure" not in dashboard.admin_home()
