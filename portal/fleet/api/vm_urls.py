"""The source fleet API's VM and customer paths (see api/urls.py), as the source wrote them:
no trailing slash (one is accepted where no portal path has it). ``/api/customers/`` with a
slash stays the portal's own customers API (portal/api_router.py), so the source's
``customers`` and ``customers/{id}`` take none."""

from django.urls import URLPattern, re_path

from portal.fleet.api import vm_views as views
from portal.monitoring.heartbeat import heartbeat_view

# Any run of digits: one past the largest id is a 404 like any unknown id (selectors), and
# never falls through to the portal's /api/customers/{id}/ (a redirect to its slash).
VM = r"^vms/(?P<vm_id>[0-9]+)"
CUSTOMER = r"^customers/(?P<customer_id>[0-9]+)"

urlpatterns: list[URLPattern] = [
    re_path(r"^vms/?$", views.VMListView.as_view(), name="fleet-vms"),
    re_path(VM + r"/?$", views.VMDetailView.as_view(), name="fleet-vm"),
    re_path(VM + r"/status/?$", views.VMStatusView.as_view(), name="fleet-vm-status"),
    re_path(VM + r"/metrics/?$", views.VMMetricsView.as_view(), name="fleet-vm-metrics"),
    # The monitoring heartbeat itself (a VM's id is its node's; the WSGI fast path serves
    # this path too: portal/monitoring/heartbeat_wsgi.py).
    re_path(
        r"^vms/(?P<node_id>[0-9]{1,18})/heartbeat/?$", heartbeat_view, name="fleet-vm-heartbeat"
    ),
    re_path(r"^customers$", views.CustomerListView.as_view(), name="fleet-customers"),
    re_path(CUSTOMER + r"$", views.CustomerDetailView.as_view(), name="fleet-customer"),
    re_path(CUSTOMER + r"/vms/?$", views.CustomerVMsView.as_view(), name="fleet-customer-vms"),
    re_path(r"^seed-test-data/?$", views.SeedTestDataView.as_view(), name="fleet-seed"),
]
