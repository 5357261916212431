"""The product's URLs plus the heartbeat floor (bench-only, loaded by bench/settings.py)."""

from django.urls import path

from bench.floor import heartbeat_floor_view
from portal.urls import urlpatterns as portal_urlpatterns

urlpatterns = [
    path("bench/floor/heartbeat/<int:node_id>", heartbeat_floor_view, name="bench-floor"),
    *portal_urlpatterns,
]
