from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from portal.core.admin import ReadOnlyAdminMixin, seconds, status_badge
from portal.core.errors import PortalError
from portal.jobs.selectors import jobs_of
from portal.labs import actions, selectors
from portal.labs.choices import LIVE
from portal.labs.choices import SessionStatus as S
from portal.labs.models import Lab, LabSession
from portal.nodes.choices import NodePurpose
from portal.nodes.selectors import nodes_for

MAX_MINUTES = 60 * 24 * 366
JOBS_SHOWN = 50


def format_time_left(left: timedelta) -> str:
    minutes = int(left.total_seconds() // 60)
    if minutes <= 0:
        return "—"
    days, minutes = divmod(minutes, 60 * 24)
    hours, minutes = divmod(minutes, 60)
    return (
        " ".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
        or "<1m"
    )


# --- assign: the intermediate page of the "Assign to users…" action -----------------------


class AssignForm(forms.Form):
    users = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        widget=FilteredSelectMultiple("users", is_stacked=False),
    )
    group = forms.ModelChoiceField(
        queryset=Group.objects.order_by("name"),
        required=False,
        help_text="Every active member of this group (together with the users above).",
    )
    duration_minutes = forms.IntegerField(
        min_value=1,
        max_value=MAX_MINUTES,
        required=False,
        help_text="Blank: each lab's default duration.",
    )

    def clean(self):
        data = super().clean()
        if not data.get("users") and not data.get("group"):
            raise forms.ValidationError("Choose users, a group, or both.")
        return data

    def chosen_users(self) -> list:
        chosen = {user.pk: user for user in self.cleaned_data.get("users") or []}
        group = self.cleaned_data.get("group")
        if group is not None:
            for user in group.user_set.filter(is_active=True):
                chosen.setdefault(user.pk, user)
        return sorted(chosen.values(), key=lambda user: user.username)


ASSIGN_PAGE = engines["django"].from_string("""{% extends "admin/base_site.html" %}
{% load admin_urls %}
{% block extrahead %}{{ block.super }}
<script src="{% url 'admin:jsi18n' %}"></script>{{ media }}{% endblock %}
{% block breadcrumbs %}<div class="breadcrumbs">
<a href="{% url 'admin:index' %}">Home</a> &rsaquo;
<a href="{% url opts|admin_urlname:'changelist' %}">{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; {{ title }}</div>{% endblock %}
{% block content %}
{% if results %}
<p>Each token is shown only on this page; only its hash is stored.</p>
<table>
<thead><tr><th>lab</th><th>user</th><th>session</th><th>namespace</th><th>status</th>
<th>token</th><th>error</th></tr></thead>
<tbody>{% for row in results %}<tr>
<td>{{ row.lab }}</td><td>{{ row.user }}</td>
<td>{% if row.session_url %}<a href="{{ row.session_url }}">{{ row.session.pk }}</a>{% endif %}</td>
<td>{{ row.session.namespace|default:"" }}</td><td>{{ row.session.status|default:"" }}</td>
<td><code>{{ row.token|default:"" }}</code></td><td>{{ row.error|default:"" }}</td>
</tr>{% endfor %}</tbody></table>
<p><a href="{% url opts|admin_urlname:'changelist' %}">Back to the labs</a></p>
{% else %}
<p>Assign {% for lab in queryset %}<b>{{ lab.name }}</b>{% if not forloop.last %}, {% endif %}
{% endfor %} to users. Each user gets a session, provisioned now.</p>
<form method="post">{% csrf_token %}
{{ form.non_field_errors }}
<fieldset class="module aligned">{% for field in form %}
<div class="form-row">{{ field.errors }}{{ field.label_tag }} {{ field }}
{% if field.help_text %}<div class="help">{{ field.help_text }}</div>{% endif %}</div>
{% endfor %}</fieldset>
{% for lab in queryset %}
<input type="hidden" name="{{ action_checkbox_name }}" value="{{ lab.pk }}">{% endfor %}
<input type="hidden" name="action" value="assign_to_users">
<input type="hidden" name="apply" value="1">
<div class="submit-row"><input type="submit" class="default" value="Assign"></div>
</form>
{% endif %}
{% endblock %}""")


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "server",
        "enabled",
        "default_duration",
        "live_sessions",
        "allow_concurrent_sessions",
    ]
    list_filter = ["enabled", "allow_concurrent_sessions", "self_service", "server"]
    search_fields = ["name", "description", "server__name"]
    list_select_related = ["server"]
    actions = ["assign_to_users"]
    fieldsets = [
        (None, {"fields": ["name", "description", "server", "enabled"]}),
        ("Scripts", {"fields": ["provision_script_path", "cleanup_script_path"]}),
        (
            "Sessions",
            {
                "fields": [
                    "default_duration",
                    "allow_concurrent_sessions",
                    "user_extend_minutes",
                    "self_service",
                ]
            },
        ),
        ("Access", {"fields": ["access_instructions"]}),
    ]

    def get_queryset(self, request):
        return selectors.with_live_count(super().get_queryset(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "server":
            kwargs["queryset"] = nodes_for(NodePurpose.LAB_SERVER)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="live sessions", ordering="live_sessions")
    def live_sessions(self, lab):
        return lab.live_sessions

    @admin.action(description="Assign to users…", permissions=["change"])
    def assign_to_users(self, request, queryset):
        form = AssignForm(request.POST if "apply" in request.POST else None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Assign labs to users",
            "queryset": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "form": form,
            "media": self.media + form.media,
        }
        if form.is_bound and form.is_valid():
            context["results"] = self._assign(request, queryset, form)
        return TemplateResponse(request, ASSIGN_PAGE, context)

    def _assign(self, request, labs, form) -> list[dict]:
        minutes = form.cleaned_data.get("duration_minutes")
        users = form.chosen_users()
        rows, failed = [], 0
        for lab in labs:
            duration = timedelta(minutes=minutes) if minutes else None
            for user, session, token, error in actions.do_assign_many(
                lab, users, duration=duration, by=request.user
            ):
                failed += error is not None
                rows.append(
                    {
                        "lab": lab.name,
                        "user": user.username,
                        "session": session,
                        "token": token,
                        "error": error and error.message,
                        "session_url": session
                        and reverse("admin:labs_labsession_change", args=[session.pk]),
                    }
                )
        level = messages.WARNING if failed else messages.SUCCESS
        self.message_user(
            request, f"{len(rows) - failed} session(s) assigned, {failed} refused.", level
        )
        return rows


# --- sessions: read-only, operated through actions ----------------------------------------


@admin.register(LabSession)
class LabSessionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "user",
        "lab",
        "namespace",
        "status_shown",
        "time_left_shown",
        "attempts",
        "last_error_short",
        "access_expiry",
    ]
    list_filter = ["status", "lab", "waiting_for_server", "provisioned"]
    search_fields = ["user__username", "namespace"]
    list_select_related = ["user", "lab"]
    date_hierarchy = "created_at"
    # Read-only (ReadOnlyAdminMixin): sessions come from "Assign to users…", the API or
    # manage.py lab; statuses change only through these actions (also buttons on the page);
    # no delete: "End now" cleans the server up, deleting the row would not.
    actions = ["retry_sessions", "extend_sessions", "end_sessions"]
    detail_actions = [
        ("retry_sessions", "Retry"),
        ("extend_sessions", "Extend"),
        ("end_sessions", "End now"),
    ]
    fieldsets = [
        (
            None,
            {"fields": ["user", "lab", "namespace", "status_shown", "provisioned", "assigned_by"]},
        ),
        ("Access", {"fields": ["access_start", "access_expiry", "time_left_shown"]}),
        (
            "Provisioning",
            {
                "fields": [
                    "attempts",
                    "waiting_for_server",
                    "next_retry_at",
                    "last_error",
                    "last_rc",
                    "last_output_shown",
                    "jobs_shown",
                ]
            },
        ),
        ("Record", {"fields": ["created_at", "updated_at"]}),
    ]
    readonly_fields = [
        "user",
        "lab",
        "namespace",
        "status_shown",
        "provisioned",
        "assigned_by",
        "access_start",
        "access_expiry",
        "time_left_shown",
        "attempts",
        "waiting_for_server",
        "next_retry_at",
        "last_error",
        "last_rc",
        "last_output_shown",
        "jobs_shown",
        "created_at",
        "updated_at",
    ]

    def detail_action_applies(self, session, name):
        if name == "retry_sessions":
            return session.status == S.FAILED
        if name == "end_sessions":
            return session.status not in (S.EXPIRED, S.EXPIRING)
        return session.status in LIVE

    @admin.display(description="status", ordering="status")
    def status_shown(self, session):
        badge = status_badge(session.status, session.get_status_display())
        if session.waiting_for_server:
            return format_html("{} <i>(waiting for server)</i>", badge)
        return badge

    @admin.display(description="time left", ordering="access_expiry")
    def time_left_shown(self, session):
        return format_time_left(session.time_left)

    @admin.display(description="last error")
    def last_error_short(self, session):
        error = session.last_error
        return error if len(error) <= 80 else f"{error[:79]}…"

    @admin.display(description="last output")
    def last_output_shown(self, session):
        return format_html('<pre class="job-output">{}</pre>', session.last_output)

    @admin.display(description="jobs")
    def jobs_shown(self, session):
        jobs = jobs_of(session).order_by("-created_at")[:JOBS_SHOWN]
        rows = [
            (
                reverse("admin:jobs_job_change", args=[job.pk]),
                job.pk,
                job.action,
                status_badge(job.status, job.get_status_display()),
                seconds(job.created_at),
            )
            for job in jobs
        ]
        if not rows:
            return "—"
        return format_html(
            "<ul>{}</ul>", format_html_join("", '<li><a href="{}">job {}</a> {} {} {}</li>', rows)
        )

    @admin.action(description="Retry selected failed sessions", permissions=["operate"])
    def retry_sessions(self, request, queryset):
        self._each(request, queryset, lambda s: actions.do_retry(s, by=request.user))

    @admin.action(
        description="Extend selected sessions by their lab's default duration",
        permissions=["operate"],
    )
    def extend_sessions(self, request, queryset):
        self._each(request, queryset, lambda s: actions.do_extend(s, by=request.user))

    @admin.action(description="End selected sessions now", permissions=["operate"])
    def end_sessions(self, request, queryset):
        self._each(request, queryset, lambda s: actions.do_end(s, by=request.user))

    def _each(self, request, queryset, operation):
        for session in queryset.select_related("lab", "lab__server", "user"):
            try:
                operation(session)
            except PortalError as exc:
                self.message_user(request, f"Session {session.pk}: {exc.message}", messages.WARNING)
            else:
                self.message_user(
                    request,
                    f"Session {session.pk}: {session.get_status_display().lower()}, "
                    f"expires {session.access_expiry:%Y-%m-%d %H:%M %Z}.",
                    messages.SUCCESS,
                )
