"""The operator page (``/monitoring/``): the open alerts, worst first, and every node
sortable by liveness and usage; the alert list with filters (``/monitoring/alerts/``); a
node's page with its alerts and charts of the last 24 h and 30 days (Chart.js from the npm
registry, served as a static file: settings.STATICFILES_DIRS; the charts read
``GET /api/nodes/{id}/metrics?hours=``). Staff only."""

from django.contrib.admin.views.decorators import staff_member_required
from django.core.paginator import Paginator
from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from portal.monitoring import selectors
from portal.monitoring.choices import Liveness
from portal.monitoring.forms import AlertFilterForm
from portal.nodes.models import Node

CHART_RANGES = ((24, "Last 24 hours"), (24 * 30, "Last 30 days"))
# Worst first: a node nobody hears from matters more than one that is fine.
STATUS_RANK = {Liveness.DOWN: 0, Liveness.LATE: 1, Liveness.UNKNOWN: 2, Liveness.UP: 3}
USAGE = {
    "cpu": "liveness__cpu_percent",
    "memory": "liveness__memory_percent",
    "disk": "liveness__disk_percent",
}
SORTS = ("status", "name", *USAGE)
PAGE_SIZE = 100
ALERTS_ON_NODE_LIST = 10  # the worst open ones; the alert list has them all
ALERT_PAGE_SIZE = 50
RESOLVED_ON_NODE_PAGE = 10


def _order(queryset: QuerySet[Node], sort: str, descending: bool) -> QuerySet[Node]:
    if sort == "name":
        return queryset.order_by(F("name").desc() if descending else F("name").asc())
    if sort == "status":
        rank = Case(
            *(When(liveness__status=status, then=Value(n)) for status, n in STATUS_RANK.items()),
            default=Value(STATUS_RANK[Liveness.UNKNOWN]),
            output_field=IntegerField(),
        )
        queryset = queryset.annotate(status_rank=rank)
        key = F("status_rank").desc() if descending else F("status_rank").asc()
        return queryset.order_by(key, "name")
    # usage: highest first by default; nodes without values last either way
    column = F(USAGE[sort])
    key = column.asc(nulls_last=True) if descending else column.desc(nulls_last=True)
    return queryset.order_by(key, "name")


def node_rows(sort: str = "status", descending: bool = False) -> QuerySet[Node]:
    """Enabled and disabled nodes with their liveness (one query)."""
    queryset = Node.objects.select_related("liveness", "group").only(
        "name",
        "address",
        "purpose",
        "enabled",
        "group__name",
        "liveness__status",
        "liveness__last_seen_at",
        "liveness__cpu_percent",
        "liveness__memory_percent",
        "liveness__disk_percent",
        "liveness__last_seq",
    )
    return _order(queryset, sort, descending)


@staff_member_required
def node_list(request):
    raw = request.GET.get("sort", "status")
    descending = raw.startswith("-")
    sort = raw.removeprefix("-")
    if sort not in SORTS:
        sort, descending = "status", False
    page = Paginator(node_rows(sort, descending), PAGE_SIZE).get_page(request.GET.get("page"))
    nodes = list(page)
    for node in nodes:
        node.live = getattr(node, "liveness", None)
    columns = {
        name: (f"-{name}" if name == sort and not descending else name, name == sort)
        for name in SORTS
    }
    return render(
        request,
        "monitoring/nodes.html",
        {
            "nodes": nodes,
            "page": page,
            "sort": sort,
            "descending": descending,
            "current_sort": f"-{sort}" if descending else sort,
            "columns": columns,
            "alerts": list(selectors.alert_rows()[:ALERTS_ON_NODE_LIST]),
            "alert_counts": selectors.open_alert_counts(),
        },
    )


@staff_member_required
def alert_list(request):
    form = AlertFilterForm(request.GET)
    form.is_valid()  # bad parameters are ignored and named; the valid ones still apply
    problems = form.problems()
    page = Paginator(selectors.alert_rows(form.filters()), ALERT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "monitoring/alerts.html",
        {"form": form, "problems": problems, "page": page, "alerts": list(page)},
        status=400 if problems else 200,
    )


@staff_member_required
def node_detail(request, pk: int):
    node = get_object_or_404(Node.objects.select_related("liveness", "group"), pk=pk)
    api = reverse("api:node-metrics", kwargs={"node_id": node.pk})
    open_alerts, resolved_alerts = selectors.node_alerts(node, RESOLVED_ON_NODE_PAGE)
    charts = [
        {"id": f"chart-{hours}h", "hours": hours, "title": title, "url": f"{api}?hours={hours}"}
        for hours, title in CHART_RANGES
    ]
    return render(
        request,
        "monitoring/node.html",
        {
            "node": node,
            "live": getattr(node, "liveness", None),
            "charts": charts,
            "open_alerts": open_alerts,
            "resolved_alerts": resolved_alerts,
            "admin_url": reverse("admin:monitoring_monitorednode_change", args=[node.pk]),
        },
    )
