from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from portal.core.admin import ReadOnlyAdminMixin, WriteOnlySecretsForm, secret_field, status_badge
from portal.core.errors import PortalError
from portal.monitoring import actions, scopes
from portal.monitoring.alerts import do_resolve_alert
from portal.monitoring.choices import Liveness
from portal.monitoring.models import (
    Alert,
    AlertRule,
    MonitoredNode,
    Notification,
    NotificationChannel,
)


@admin.register(MonitoredNode)
class MonitoredNodeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every node with its liveness and last values; installing the agent (again, which
    rotates its token) is an action here and a button on the node's page."""

    list_display = ["name", "liveness_status", "last_seen", "cpu", "memory", "disk", "agent"]
    list_filter = ["liveness__status", "purpose", "group"]
    search_fields = ["name", "address"]
    fields = (
        "name",
        "address",
        "purpose",
        "group",
        "liveness_status",
        "last_seen",
        "next_due",
        "cpu",
        "memory",
        "disk",
        "agent",
        "token_issued",
        "metrics",
    )
    readonly_fields = fields
    actions = ["install_agent"]
    detail_actions = [("install_agent", "Install agent / rotate its token")]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("liveness", "group")

    @staticmethod
    def _row(node):
        return getattr(node, "liveness", None)

    @admin.display(description="liveness", ordering="liveness__status")
    def liveness_status(self, node):
        row = self._row(node)
        return status_badge(row.status if row else Liveness.UNKNOWN)

    @admin.display(description="last heartbeat", ordering="liveness__last_seen_at")
    def last_seen(self, node):
        row = self._row(node)
        return row.last_seen_at if row and row.last_seen_at else "-"

    @admin.display(description="down at")
    def next_due(self, node):
        row = self._row(node)
        return row.next_due_at if row and row.next_due_at else "-"

    def _percent(self, node, name):
        row = self._row(node)
        value = getattr(row, name, None) if row else None
        return "-" if value is None else f"{value:.1f} %"

    @admin.display(description="cpu", ordering="liveness__cpu_percent")
    def cpu(self, node):
        return self._percent(node, "cpu_percent")

    @admin.display(description="memory", ordering="liveness__memory_percent")
    def memory(self, node):
        return self._percent(node, "memory_percent")

    @admin.display(description="disk", ordering="liveness__disk_percent")
    def disk(self, node):
        return self._percent(node, "disk_percent")

    @admin.display(description="agent")
    def agent(self, node):
        row = self._row(node)
        return row.agent_version if row and row.agent_version else "-"

    @admin.display(description="token issued")
    def token_issued(self, node):
        row = self._row(node)
        return row.token_issued_at if row and row.token_issued_at else "never"

    @admin.display(description="history")
    def metrics(self, node):
        url = reverse("api:node-metrics", kwargs={"node_id": node.pk})
        page = reverse("monitoring:node", args=[node.pk])
        return format_html(
            '<a href="{}" data-testid="monitoring-charts">charts (24 h, 30 days)</a> · '
            '<a href="{}?hours=24">last 24 h (JSON)</a>',
            page,
            url,
        )

    @admin.action(
        description="Install the monitoring agent (rotates its token)", permissions=["operate"]
    )
    def install_agent(self, request, queryset):
        for node in queryset.select_related("group", "credential").defer("credential__secret"):
            try:
                job = actions.do_install_agent(node, by=request.user)
            except PortalError as error:
                self.message_user(request, f"{node.name}: {error.message}", messages.ERROR)
                continue
            link = reverse("admin:jobs_job_change", args=[job.pk])
            self.message_user(
                request,
                format_html(
                    '{}: agent install launched as <a href="{}">job {}</a>.',
                    node.name,
                    link,
                    job.pk,
                ),
                messages.SUCCESS,
            )


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    """The rules the evaluator (portal.monitoring.alerts) applies every pass; model
    validation (AlertRule.clean) names a clear threshold on the wrong side of the fire one."""

    list_display = [
        "name",
        "kind",
        "metric",
        "comparison",
        "threshold",
        "clear_threshold",
        "for_seconds",
        "keep_firing_for_seconds",
        "severity",
        "scope",
        "enabled",
    ]
    list_filter = ["enabled", "kind", "severity", "alert_type"]
    list_editable = ["enabled"]
    search_fields = ["name", "metric"]

    @admin.display(description="scope")
    def scope(self, rule):
        labels = dict(scopes.choices())
        named = labels.get(rule.scope, rule.scope)  # a scope of an app above monitoring
        parts = [str(part) for part in (rule.group, rule.get_purpose_display(), named) if part]
        return " / ".join(parts) or "all nodes"

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "scope":  # the scopes registered by the apps above monitoring
            return forms.ChoiceField(
                choices=[("", "any node"), *scopes.choices()],
                required=False,
                help_text=db_field.help_text,
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Alerts raised by the rules or by hand (POST /api/alerts); resolving is an action."""

    list_display = [
        "id",
        "alert_status",
        "severity",
        "type",
        "node",
        "group",
        "message",
        "created_at",
    ]
    list_filter = ["resolved", "severity", "type"]
    search_fields = ["message", "node__name", "group__name"]
    list_select_related = ["node", "rule", "group"]
    actions = ["resolve"]

    @admin.display(description="status", ordering="resolved")
    def alert_status(self, alert):
        return status_badge("resolved" if alert.resolved else "open")

    @admin.action(description="Resolve the selected alerts", permissions=["operate"])
    def resolve(self, request, queryset):
        done = 0
        for pk in queryset.filter(resolved=False).values_list("pk", flat=True):
            try:
                do_resolve_alert(pk)
            except PortalError:
                continue  # resolved meanwhile
            done += 1
        self.message_user(request, f"{done} alert(s) resolved.", messages.SUCCESS)


class NotificationChannelForm(WriteOnlySecretsForm):
    SECRET_FIELDS = ("secret",)  # the webhook's key: written, never shown again
    url = forms.URLField(
        required=False, max_length=500, assume_scheme="https", help_text="Webhook: the URL."
    )
    secret = secret_field(
        "Webhook: the HMAC-SHA256 key (stored encrypted; empty keeps the current one)."
    )

    class Meta:
        model = NotificationChannel
        fields = [
            "name",
            "kind",
            "emails",
            "url",
            "secret",
            "group",
            "customer",
            "repeat_minutes",
            "max_per_alert",
            "enabled",
        ]


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelForm
    list_display = [
        "name",
        "kind",
        "group",
        "customer",
        "repeat_minutes",
        "max_per_alert",
        "enabled",
    ]
    list_filter = ["kind", "enabled"]
    search_fields = ["name"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The outbox: pending, sent (with the time and the response status) and failed rows."""

    list_display = [
        "id",
        "channel",
        "alert",
        "event",
        "status",
        "attempts",
        "created_at",
        "sent_at",
        "response_status",
        "last_error",
    ]
    list_filter = ["status", "event", "channel"]
    list_select_related = ["channel", "alert"]
    readonly_fields = [field.name for field in Notification._meta.fields]
