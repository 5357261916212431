"""figure_urls of the fleet API (see api/urls.py)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
