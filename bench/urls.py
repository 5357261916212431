"""The product's URLs plus the floors (bench-only, loaded by bench/settings.py)."""

from django.urls import path

from bench.floor import heartbeat_floor_view
from bench.floor_launch import LaunchFloorView
from bench.floor_views import AuthenticatedFloorView, web_process_view
from portal.urls import urlpatterns as portal_urlpatterns

urlpatterns = [
    path("bench/floor/heartbeat/<int:node_id>", heartbeat_floor_view, name="bench-floor"),
    path("bench/floor/authenticated", AuthenticatedFloorView.as_view(), name="bench-floor-auth"),
    path("bench/floor/launch", LaunchFloorView.as_view(), name="bench-floor-launch"),
    path("bench/process", web_process_view, name="bench-process"),
    *portal_urlpatterns,
]
