"""figure_urls of the fleet API (see api/urls.py)."""

from django.urls import URLPattern, re_path

from portal.fleet.api.figures import FleetFiguresView

urlpatterns: list[URLPattern] = [
    re_path(r"^metrics/fleet/?$", FleetFiguresView.as_view(), name="fleet-figures"),
]
