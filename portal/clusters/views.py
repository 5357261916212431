"""An operator's page for a reprovision run: every node's timeline, live (SSE), with who
triggered the run; cancel and retry are the API's and the admin's (portal.clusters.actions).
Staff only, like the clusters' API."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from portal.clusters.models import ReprovisionRun
from portal.clusters.stream import run_stream

MAX_EVENT_ID_DIGITS = 18


@staff_member_required
@require_http_methods(["GET", "HEAD"])
def run_page(request, pk: int):
    run = get_object_or_404(ReprovisionRun.objects.select_related("cluster", "requested_by"), pk=pk)
    node_runs = run.node_runs.select_related("cluster_node__node").order_by("pk")
    timelines = [
        (node_run, list(node_run.history.select_related("by").order_by("pk")))
        for node_run in node_runs
    ]
    last = run.events.order_by("-pk").values_list("pk", flat=True).first() or 0
    context = {"run": run, "timelines": timelines, "last_event": last}
    return render(request, "clusters/run.html", context)


@staff_member_required
@require_http_methods(["GET"])
def run_events(request, pk: int):
    run = get_object_or_404(ReprovisionRun, pk=pk)
    after = request.headers.get("Last-Event-ID") or request.GET.get("after", "0")
    if not (after.isascii() and after.isdigit() and len(after) <= MAX_EVENT_ID_DIGITS):
        after = "0"
    response = StreamingHttpResponse(
        run_stream(run.pk, int(after)), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"
    return response
