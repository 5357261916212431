"""Clusters in the admin: a cluster with its nodes inline, the nodes, and reprovision runs
with a per-node timeline and the operators' actions (start, cancel, retry failed nodes).
Every change of a run is an action's (portal.clusters.actions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from portal.clusters import actions, selectors
from portal.clusters.choices import RunStatus
from portal.clusters.models import NODE_FAILED, Cluster, ClusterNode, ReprovisionRun
from portal.core.admin import (
    ReadOnlyAdminMixin,
    WriteOnlySecretsForm,
    seconds,
    secret_field,
    status_badge,
)
from portal.core.errors import PortalError


class ClusterNodeForm(WriteOnlySecretsForm):
    SECRET_FIELDS = ("bmc_password",)
    bmc_password = secret_field("Stored encrypted; leave empty to keep the current one.")

    class Meta:
        model = ClusterNode
        fields = [
            "node",
            "cluster",
            "mac",
            "link0",
            "link1",
            "power_driver",
            "bmc_address",
            "bmc_username",
            "bmc_password",
            "power_options",
        ]


class ClusterNodeInline(admin.TabularInline):
    model = ClusterNode
    form = ClusterNodeForm
    extra = 0
    fields = ["node", "mac", "link0", "power_driver", "bmc_address", "bmc_username", "bmc_password"]
    show_change_link = True


@admin.register(Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ["name", "init_node", "node_count", "updated_at"]
    search_fields = ["name", "description"]
    inlines = [ClusterNodeInline]
    actions = ["reprovision_all"]

    @admin.display(description="nodes")
    def node_count(self, cluster: Cluster) -> int:
        return cluster.nodes.count()

    @admin.action(description="Reprovision every node of the selected clusters")
    def reprovision_all(self, request: HttpRequest, queryset: QuerySet[Cluster]) -> None:
        for cluster in queryset:
            try:
                run = actions.start_run(request.user, cluster, actions.ALL)
            except PortalError as error:
                self.message_user(request, f"{cluster}: {error.message}", messages.WARNING)
                continue
            link = reverse("admin:clusters_reprovisionrun_change", args=[run.pk])
            self.message_user(
                request, format_html('{}: <a href="{}">run {}</a> started', cluster, link, run.pk)
            )


@admin.register(ClusterNode)
class ClusterNodeAdmin(admin.ModelAdmin):
    form = ClusterNodeForm
    list_display = [
        "node",
        "cluster",
        "mac",
        "hostname",
        "ip",
        "link0",
        "power_driver",
        "is_member",
    ]
    list_filter = ["cluster", "power_driver", "is_member"]
    search_fields = ["node__name", "hostname", "mac"]
    list_select_related = ["node", "cluster"]
    readonly_fields = ["hostname", "ip", "is_member", "registered_at"]


@admin.register(ReprovisionRun)
class ReprovisionRunAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "cluster",
        "status_shown",
        "requested_by",
        "created_shown",
        "deadline_shown",
        "node_count",
    ]
    list_filter = ["status", "cluster"]
    search_fields = ["cluster__name", "reason", "requested_by__username"]
    list_select_related = ["cluster", "requested_by"]
    actions = ["cancel_selected", "retry_failed_selected"]
    detail_actions = [("cancel_selected", "Cancel"), ("retry_failed_selected", "Retry failed")]
    readonly_fields = [
        "cluster",
        "status_shown",
        "reason",
        "requested_by",
        "created_shown",
        "deadline_shown",
        "timeout_minutes",
        "finished_at",
        "form_job",
        "live_page",
        "timeline",
    ]
    fields = list(readonly_fields)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReprovisionRun]:
        return selectors.runs_with_timeline(super().get_queryset(request))

    def detail_action_applies(self, run: ReprovisionRun, name: str) -> bool:
        if name == "cancel_selected":
            return not run.is_terminal
        return run.status != RunStatus.CANCELED and any(
            nr.status in NODE_FAILED for nr in run.node_runs.all()
        )

    @admin.display(description="status", ordering="status")
    def status_shown(self, run: ReprovisionRun) -> str:
        return status_badge(run.status, run.get_status_display())

    @admin.display(description="started", ordering="created_at")
    def created_shown(self, run: ReprovisionRun) -> str:
        return seconds(run.created_at)

    @admin.display(description="deadline")
    def deadline_shown(self, run: ReprovisionRun) -> str:
        return seconds(run.deadline)

    @admin.display(description="nodes")
    def node_count(self, run: ReprovisionRun) -> int:
        return len(run.node_runs.all())

    @admin.display(description="live")
    def live_page(self, run: ReprovisionRun) -> str:
        url = reverse("clusters:run", args=[run.pk])
        return format_html('<a href="{}">Follow this run live (every node\'s timeline)</a>', url)

    @admin.display(description="timeline per node")
    def timeline(self, run: ReprovisionRun) -> str:
        sections = []
        for node_run in run.node_runs.all():
            rows = format_html_join(
                "",
                "<li>{} {} → {} {} {}</li>",
                (
                    (
                        seconds(event.at),
                        event.from_status or "·",
                        status_badge(event.status),
                        event.reason,
                        f"({event.by})" if event.by_id else "",
                    )
                    for event in node_run.history.all()
                ),
            )
            sections.append(
                format_html(
                    "<h3>{} {} <small>{}</small></h3><ul>{}</ul>",
                    node_run.cluster_node.node.name,
                    status_badge(node_run.status),
                    node_run.reason,
                    rows,
                )
            )
        return format_html_join("", "{}", ((section,) for section in sections)) or "—"

    @admin.action(description="Cancel selected runs", permissions=["operate"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[ReprovisionRun]) -> None:
        self._each(request, queryset, lambda run: actions.cancel_run(run, by=request.user))

    @admin.action(description="Retry the failed nodes of selected runs", permissions=["operate"])
    def retry_failed_selected(
        self, request: HttpRequest, queryset: QuerySet[ReprovisionRun]
    ) -> None:
        def retry(run: ReprovisionRun) -> Any:
            failed = [nr for nr in run.node_runs.all() if nr.status in NODE_FAILED]
            if not failed:
                raise PortalError(f"Run {run.pk} has no failed node.")
            for node_run in failed:
                actions.retry_node(node_run, by=request.user)

        self._each(request, queryset, retry)

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[ReprovisionRun],
        do: Callable[[ReprovisionRun], Any],
    ) -> None:
        for run in queryset:
            try:
                do(run)
            except PortalError as error:
                self.message_user(request, error.message, messages.WARNING)
            else:
                self.message_user(request, f"run {run.pk}: done", messages.SUCCESS)
