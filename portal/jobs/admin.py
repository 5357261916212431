from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from portal.core.admin import ReadOnlyAdminMixin, duration_text, seconds, status_badge
from portal.core.errors import PortalError
from portal.jobs import actions, registry, retention, selectors
from portal.jobs.api.pagination import estimated_count
from portal.jobs.choices import ACTIVE, TERMINAL
from portal.jobs.models import Job

EVENTS_SHOWN = 500


# The list's filters offer known values (the actions' registry, the playbooks, the queues
# nodes route to) instead of a SELECT DISTINCT over every job ever run.


class KnownValuesFilter(admin.SimpleListFilter):
    def values(self) -> list[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, value) for value in self.values()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> QuerySet[Job]:
        value = self.value()
        return queryset.filter(**{str(self.parameter_name): value}) if value else queryset


class ActionFilter(KnownValuesFilter):
    title = "action"
    parameter_name = "action"

    def values(self) -> list[str]:
        return sorted(registry.all_actions())


class PlaybookFilter(KnownValuesFilter):
    title = "playbook"
    parameter_name = "playbook"

    def values(self) -> list[str]:
        from portal.jobs.playbooks import available_playbooks

        declared = {spec.playbook for spec in registry.all_actions().values() if spec.playbook}
        return sorted(declared | set(available_playbooks()))


class QueueFilter(KnownValuesFilter):
    title = "queue"
    parameter_name = "queue"

    def values(self) -> list[str]:
        from portal.nodes.models import Node, NodeGroup

        queues = {settings.CELERY_TASK_DEFAULT_QUEUE}
        for model in (Node, NodeGroup):  # the inventory: small, unlike the history
            queues |= set(model.objects.exclude(queue="").values_list("queue", flat=True))
        return sorted(queues)


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to a thousand jobs, then takes PostgreSQL's estimate: the page
    links stay, and the list never counts the whole history."""

    @cached_property
    def count(self) -> int:
        return estimated_count(cast(QuerySet[Job], self.object_list))


@admin.register(Job)
class JobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "playbook",
        "action",
        "status_badge",
        "rc",
        "queue",
        "requested_by",
        "created_at",
        "duration_shown",
        "event_count",
    ]
    list_filter = ["status", ActionFilter, PlaybookFilter, QueueFilter, "created_at"]
    search_fields = ["id", "playbook", "limit", "reason", "worker"]
    list_select_related = ["requested_by"]
    # No date_hierarchy (its year/month links are a DISTINCT over every row): the
    # created_at filter (today, past 7 days, this month, this year) costs no query.
    show_full_result_count = False  # no second COUNT(*) of the whole table
    paginator = EstimatedCountPaginator
    # Jobs are launched by actions, the API or manage.py runplaybook, and change only
    # through the actions below (list dropdown and buttons on the job's page).
    actions = ["cancel_jobs", "relaunch_jobs", "relaunch_failed_hosts"]
    detail_actions = [
        ("cancel_jobs", "Cancel"),
        ("relaunch_jobs", "Relaunch"),
        ("relaunch_failed_hosts", "Relaunch on failed hosts"),
    ]
    readonly_fields = [
        "playbook",
        "limit",
        "nodes",
        "extra_vars",
        "sensitive_names",
        "check_mode",
        "action",
        "target_shown",
        "customer",
        "requested_by",
        "queue",
        "status_badge",
        "rc",
        "reason",
        "timeout",
        "idle_timeout",
        "created_shown",
        "not_before_shown",
        "dispatched_shown",
        "started_shown",
        "finished_shown",
        "duration_shown",
        "host_summary",
        "worker",
        "heartbeat_shown",
        "cancel_requested",
        "event_count",
        "attempt",
        "retry_of",
        "stdout",
        "events_table",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "status_badge",
                    "rc",
                    "reason",
                    "playbook",
                    "limit",
                    "nodes",
                    "check_mode",
                    "action",
                    "target_shown",
                    "customer",
                    "requested_by",
                ]
            },
        ),
        (
            "Timing",
            {
                "fields": [
                    "duration_shown",
                    "created_shown",
                    "not_before_shown",
                    "dispatched_shown",
                    "started_shown",
                    "finished_shown",
                    "timeout",
                    "idle_timeout",
                ]
            },
        ),
        ("Output", {"fields": ["stdout"]}),
        ("Variables", {"fields": ["extra_vars", "sensitive_names"]}),
        (
            "Execution",
            {
                "fields": [
                    "queue",
                    "worker",
                    "heartbeat_shown",
                    "cancel_requested",
                    "host_summary",
                    "event_count",
                    "attempt",
                    "retry_of",
                ]
            },
        ),
        ("Events", {"fields": ["events_table"]}),
    ]

    class Media:
        js = ["jobs/job_output.js"]

    def detail_action_applies(self, job: Job, name: str) -> bool:
        if name == "cancel_jobs":
            return job.status in ACTIVE
        if name == "relaunch_failed_hosts":
            return job.status in TERMINAL and bool(actions.failed_hosts(job))
        return job.status in TERMINAL

    @admin.display(description="status", ordering="status")
    def status_badge(self, job: Job) -> str:
        return status_badge(job.status, job.get_status_display())

    @admin.display(description="duration")
    def duration_shown(self, job: Job) -> str:
        return duration_text(job.duration)

    @admin.display(description="created", ordering="created_at")
    def created_shown(self, job: Job) -> str:
        return seconds(job.created_at)

    @admin.display(description="not before")
    def not_before_shown(self, job: Job) -> str:
        return seconds(job.not_before)

    @admin.display(description="dispatched")
    def dispatched_shown(self, job: Job) -> str:
        return seconds(job.dispatched_at)

    @admin.display(description="started")
    def started_shown(self, job: Job) -> str:
        return seconds(job.started_at)

    @admin.display(description="finished")
    def finished_shown(self, job: Job) -> str:
        return seconds(job.finished_at)

    @admin.display(description="heartbeat")
    def heartbeat_shown(self, job: Job) -> str:
        return seconds(job.heartbeat_at)

    @admin.display(description="target")
    def target_shown(self, job: Job) -> str:
        if job.target_type is None or not job.target_id:
            return "—"
        model = job.target_type.model_class()
        label = f"{job.target_type.name} {job.target_id}"
        if model is None or model not in self.admin_site._registry:
            return label
        target = model._default_manager.filter(pk=job.target_id).first()
        try:
            url = reverse(
                f"admin:{model._meta.app_label}_{model._meta.model_name}_change",
                args=[job.target_id],
            )
        except NoReverseMatch:
            return label
        if target is None:
            return f"{label} (deleted)"
        return format_html('<a href="{}">{}: {}</a>', url, job.target_type.name, target)

    @admin.display(description="stdout")
    def stdout(self, job: Job) -> str:
        events = selectors.first_events(job, ("counter", "stdout"), EVENTS_SHOWN)
        text = "\n".join(line for _, line in events if line)
        last = events[-1][0] if events else 0
        live = job.status not in TERMINAL and len(events) < EVENTS_SHOWN
        if not events and retention.events_deleted(job):
            return retention.events_deleted_note(job)
        return format_html(
            '<pre class="job-output" id="job-output" data-stream="{}" data-after="{}"'
            ' data-live="{}">{}</pre><div class="job-output-state" id="job-output-state">'
            "{}</div>",
            reverse("api:job-stream", args=[job.pk]),
            last,
            "1" if live else "",
            text,
            "live: following the output…" if live else "",
        )

    @admin.display(description=f"events (first {EVENTS_SHOWN})")
    def events_table(self, job: Job) -> str:
        rows = selectors.first_events(
            job, ("counter", "event", "host", "task", "changed", "failed"), EVENTS_SHOWN
        )
        if not rows and retention.events_deleted(job):
            return retention.events_deleted_note(job)
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        return format_html(
            "<table><tr><th>#</th><th>event</th><th>host</th><th>task</th>"
            "<th>changed</th><th>failed</th></tr>{}</table>",
            body,
        )

    @admin.action(description="Cancel selected jobs", permissions=["operate"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._each(request, queryset, lambda job: actions.cancel(job, by=request.user))

    @admin.action(description="Relaunch selected jobs", permissions=["operate"])
    def relaunch_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._each(request, queryset, lambda job: actions.relaunch(job, requested_by=request.user))

    @admin.action(
        description="Relaunch selected jobs on failed hosts only", permissions=["operate"]
    )
    def relaunch_failed_hosts(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._each(
            request,
            queryset,
            lambda job: actions.relaunch(job, requested_by=request.user, failed_only=True),
        )

    def _each(
        self, request: HttpRequest, queryset: QuerySet[Job], operation: Callable[[Job], Any]
    ) -> None:
        for job in queryset:
            try:
                operation(job)
            except PortalError as exc:
                self.message_user(request, f"Job {job.pk}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"Job {job.pk}: done.", messages.SUCCESS)
