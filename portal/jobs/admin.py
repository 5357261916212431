from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from portal.core.errors import PortalError
from portal.jobs import actions
from portal.jobs.models import Job

EVENTS_SHOWN = 500


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "playbook", "action", "status_badge", "rc", "queue", "requested_by",
                    "created_at", "duration", "event_count"]
    list_filter = ["status", "action", "playbook", "queue", "created_at"]
    search_fields = ["id", "playbook", "limit", "reason", "worker"]
    list_select_related = ["requested_by"]
    date_hierarchy = "created_at"
    actions = ["cancel_jobs", "relaunch_jobs", "relaunch_failed_hosts"]
    readonly_fields = ["playbook", "limit", "nodes", "extra_vars", "sensitive_names",
                       "check_mode", "action", "target_type", "target_id", "customer",
                       "requested_by", "queue", "status", "rc", "reason", "timeout",
                       "idle_timeout", "created_at", "not_before", "dispatched_at", "started_at",
                       "finished_at", "host_summary", "worker", "heartbeat_at",
                       "cancel_requested", "event_count", "attempt", "retry_of", "stdout",
                       "events_table"]
    fieldsets = [
        (None, {"fields": ["status", "rc", "reason", "playbook", "limit", "nodes", "check_mode",
                           "action", "target_type", "target_id", "customer", "requested_by"]}),
        ("Variables", {"fields": ["extra_vars", "sensitive_names"]}),
        ("Timing", {"fields": ["created_at", "not_before", "dispatched_at", "started_at",
                               "finished_at", "timeout", "idle_timeout"]}),
        ("Execution", {"fields": ["queue", "worker", "heartbeat_at", "cancel_requested",
                                  "host_summary", "event_count", "attempt", "retry_of"]}),
        ("Output", {"fields": ["stdout", "events_table"]}),
    ]

    def has_add_permission(self, request):
        return False  # jobs are launched by actions, the API or manage.py runplaybook

    def has_change_permission(self, request, obj=None):
        return request.method in ("GET", "HEAD") and super().has_view_permission(request, obj)

    @admin.display(description="status", ordering="status")
    def status_badge(self, job):
        colours = {"successful": "#2e7d32", "failed": "#c62828", "error": "#c62828",
                   "running": "#1565c0", "lost": "#6a1b9a", "timeout": "#ef6c00"}
        return format_html('<b style="color:{}">{}</b>', colours.get(job.status, "#555"),
                           job.status)

    @admin.display(description="stdout")
    def stdout(self, job):
        lines = job.events.order_by("counter").values_list("stdout", flat=True)[:EVENTS_SHOWN]
        text = "\n".join(line for line in lines if line)
        return format_html('<pre style="max-height:40em;overflow:auto">{}</pre>', text)

    @admin.display(description=f"events (first {EVENTS_SHOWN})")
    def events_table(self, job):
        rows = job.events.order_by("counter").values_list(
            "counter", "event", "host", "task", "changed", "failed")[:EVENTS_SHOWN]
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                "<td>{}</td><td>{}</td></tr>", rows)
        return format_html("<table><tr><th>#</th><th>event</th><th>host</th><th>task</th>"
                           "<th>changed</th><th>failed</th></tr>{}</table>", body)

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        self._each(request, queryset, lambda job: actions.cancel(job, by=request.user))

    @admin.action(description="Relaunch selected jobs")
    def relaunch_jobs(self, request, queryset):
        self._each(request, queryset,
                   lambda job: actions.relaunch(job, requested_by=request.user))

    @admin.action(description="Relaunch selected jobs on failed hosts only")
    def relaunch_failed_hosts(self, request, queryset):
        self._each(request, queryset, lambda job: actions.relaunch(
            job, requested_by=request.user, failed_only=True))

    def _each(self, request, queryset, operation):
        for job in queryset:
            try:
                operation(job)
            except PortalError as exc:
                self.message_user(request, f"Job {job.pk}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"Job {job.pk}: done.", messages.SUCCESS)
