"""The fleet's API under /api/: the source fleet API's paths (no trailing slash) and the
portal's own additions. One module per part, each with its own ``urlpatterns``."""

from portal.fleet.api import action_urls, figure_urls, rollout_urls, vm_urls

urlpatterns = [
    *vm_urls.urlpatterns,  # /api/vms…, /api/customers…, /api/seed-test-data
    *action_urls.urlpatterns,  # /api/vms/{id}/restart, /api/vms/{id}/rebuild
    *rollout_urls.urlpatterns,  # /api/updates…, rollouts
    *figure_urls.urlpatterns,  # /api/metrics/fleet
]
