"""action_urls of the fleet API (see api/urls.py): restart and rebuild of a VM."""

from django.urls import URLPattern, re_path

from portal.fleet.api.operate import OperationListView, RebuildView, RestartView

VM = r"^vms/(?P<vm_id>[0-9]{1,18})"

urlpatterns: list[URLPattern] = [
    re_path(VM + r"/restart/?$", RestartView.as_view(), name="fleet-vm-restart"),
    re_path(VM + r"/rebuild/?$", RebuildView.as_view(), name="fleet-vm-rebuild"),
    re_path(VM + r"/operations/?$", OperationListView.as_view(), name="fleet-vm-operations"),
]
