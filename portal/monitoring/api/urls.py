"""Monitoring's API paths under /api/ (the source fleet API's paths, no trailing slash)."""

from django.urls import re_path

from portal.monitoring.api.alerts import AlertListView, AlertResolveView
from portal.monitoring.api.views import InstallAgentView, NodeMetricsView
from portal.monitoring.heartbeat import heartbeat_view

NODE = r"^nodes/(?P<node_id>[0-9]{1,18})"

urlpatterns = [
    re_path(NODE + r"/heartbeat/?$", heartbeat_view, name="node-heartbeat"),
    re_path(NODE + r"/metrics/?$", NodeMetricsView.as_view(), name="node-metrics"),
    re_path(NODE + r"/agent/?$", InstallAgentView.as_view(), name="node-agent"),
    re_path(r"^alerts/?$", AlertListView.as_view(), name="alerts"),
    re_path(
        r"^alerts/(?P<alert_id>[0-9]{1,18})/resolve/?$",
        AlertResolveView.as_view(),
        name="alert-resolve",
    ),
]
