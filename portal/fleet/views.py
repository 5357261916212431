"""The fleet pages: ``/fleet/`` for operators and admins (the figures, charts of revenue by
tier, VMs by status and version and usage over 30 days, open alerts, rollouts with their
waves followed live) and ``/fleet/mine/`` for customers (their VMs, each with its metrics
charts and the restart/rebuild buttons their role allows). Charts: Chart.js from the npm
registry (settings.STATICFILES_DIRS); data as JSON in the page (``json_script``) or from
the API; no inline script or style (the CSP)."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse

from portal.core.tenancy import is_operator
from portal.fleet import dashboard
from portal.fleet.figures import fleet_figures

CUSTOMERS_SHOWN = 100
CHART_HOURS = ((24, "Last 24 hours"), (24 * 30, "Last 30 days"))


def _operators_only(request) -> None:
    if not is_operator(request.user):
        raise PermissionDenied("Operators and admins only.")


@login_required
def fleet_page(request):
    _operators_only(request)
    figures = fleet_figures(request.user, hourly=True)
    customers = sorted(figures["per_customer"], key=lambda row: (-row["revenue"], row["name"]))
    alerts, open_count = dashboard.open_vm_alerts()
    return render(
        request,
        "fleet/fleet.html",
        {
            "figures": figures,
            "customers": customers[:CUSTOMERS_SHOWN],
            "customers_total": len(customers),
            "alerts": alerts,
            "open_alerts": open_count,
            "rollouts": dashboard.rollout_progress(),
            "progress_url": reverse("fleet:rollouts"),
        },
    )


@login_required
def rollout_progress(request):
    """The fleet page's live rollouts (polled by fleet.js)."""
    _operators_only(request)
    return JsonResponse({"rollouts": dashboard.rollout_progress()})


@login_required
def my_fleet_page(request):
    vms = dashboard.my_vms(request.user)
    for vm in vms:
        api = reverse("api:fleet-vm-metrics", kwargs={"vm_id": vm.pk})
        vm.charts = [
            {
                "id": f"vm-{vm.pk}-{hours}h",
                "title": title,
                "hours": hours,
                "url": f"{api}?hours={hours}",
            }
            for hours, title in CHART_HOURS
        ]
        vm.restart_url = reverse("api:fleet-vm-restart", kwargs={"vm_id": vm.pk})
        vm.rebuild_url = reverse("api:fleet-vm-rebuild", kwargs={"vm_id": vm.pk})
    return render(
        request,
        "fleet/mine.html",
        {"vms": vms, "figures": fleet_figures(request.user) if vms else None},
    )
