"""Installations in the admin: the list, each one's page with its history and jobs, the
operators' actions (reinstall, upgrade, retry, uninstall) and an install page that renders
the installer's generated form. Every change is an action's, and a job.

A generated password is shown once, on the page the request answers with (never a message:
messages may wait in the session); it is stored nowhere in clear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from portal.core.admin import ReadOnlyAdminMixin, seconds, status_badge
from portal.core.errors import PortalError
from portal.installers import actions, catalogue
from portal.installers.actions import Launched
from portal.installers.forms import submit_install
from portal.installers.inputs import InputsInvalid
from portal.installers.models import Installation, InstallationEvent

LAUNCHED_PAGE = "admin/installers/installation/launched.html"
INSTALL_PAGE = "admin/installers/installation/install.html"


def job_link(job_id: int | None) -> str:
    if not job_id:
        return "—"
    return format_html(
        '<a href="{}">job {}</a>', reverse("admin:jobs_job_change", args=[job_id]), job_id
    )


class InstallationEventInline(admin.TabularInline):
    model = InstallationEvent
    fields = readonly_fields = (
        "at",
        "from_status",
        "status",
        "reason",
        "exit_code",
        "job_shown",
        "by",
    )
    extra = 0
    can_delete = False
    ordering = ["-at", "-id"]
    verbose_name_plural = "History (status changes, who asked, which job)"
    classes = ["history-inline"]

    @admin.display(description="job")
    def job_shown(self, event: InstallationEvent) -> str:
        return job_link(event.job_id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChooseInstallerForm(forms.Form):
    installer = forms.ChoiceField(choices=())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["installer"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [
            (m.id, f"{m.name} {m.version} ({m.id})") for m in catalogue.all_manifests()
        ]


@admin.register(Installation)
class InstallationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "installer_id",
        "version",
        "node",
        "status_shown",
        "exit_code",
        "job_shown",
        "requested_by",
        "updated_at",
    ]
    list_filter = ["status", "installer_id", "node", "keep_on_failure", "updated_at"]
    search_fields = ["installer_id", "node__name", "reason", "requested_by__username"]
    list_select_related = ["node", "requested_by"]
    date_hierarchy = "created_at"
    inlines = [InstallationEventInline]
    actions = ["reinstall_selected", "upgrade_selected", "retry_selected", "uninstall_selected"]
    detail_actions = [
        ("reinstall_selected", "Reinstall"),
        ("upgrade_selected", "Upgrade"),
        ("retry_selected", "Retry"),
        ("uninstall_selected", "Uninstall"),
    ]
    readonly_fields = [
        "node",
        "installer_id",
        "version",
        "manifest_sha256",
        "status_shown",
        "reason",
        "exit_code",
        "attempts",
        "failing_line",
        "log_tail",
        "inputs",
        "keep_on_failure",
        "customer",
        "requested_by",
        "job_shown",
        "jobs_shown",
        "created_shown",
        "updated_shown",
    ]
    fieldsets = [
        (None, {"fields": ["installer_id", "version", "node", "status_shown", "reason"]}),
        (
            "Last run",
            {"fields": ["job_shown", "exit_code", "attempts", "failing_line", "log_tail"]},
        ),
        ("Jobs", {"fields": ["jobs_shown"]}),
        (
            "Request",
            {
                "fields": [
                    "requested_by",
                    "customer",
                    "inputs",
                    "keep_on_failure",
                    "manifest_sha256",
                    "created_shown",
                    "updated_shown",
                ]
            },
        ),
    ]

    def get_urls(self) -> list[URLPattern]:
        install = path(
            "install/",
            self.admin_site.admin_view(self.install_view),
            name="installers_installation_install",
        )
        return [install, *super().get_urls()]

    def detail_action_applies(self, installation: Installation, name: str) -> bool:
        return name.removesuffix("_selected") in actions.follow_ups(installation)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {**(extra_context or {}), "may_install": self.has_operate_permission(request)}
        return super().changelist_view(request, context)

    # --- columns --------------------------------------------------------------------------

    @admin.display(description="status", ordering="status")
    def status_shown(self, installation: Installation) -> str:
        return status_badge(installation.status, installation.get_status_display())

    @admin.display(description="current job")
    def job_shown(self, installation: Installation) -> str:
        return job_link(installation.current_job_id)

    @admin.display(description="jobs (newest first)")
    def jobs_shown(self, installation: Installation) -> str:
        jobs = installation.jobs.order_by("-created_at", "-id")
        rows = format_html_join(
            "",
            '<li><a href="{}">job {}</a> {} · attempt {} · {}</li>',
            (
                (
                    reverse("admin:jobs_job_change", args=[job.pk]),
                    job.pk,
                    status_badge(job.status),
                    job.attempt,
                    seconds(job.created_at),
                )
                for job in jobs
            ),
        )
        return format_html("<ul>{}</ul>", rows) if rows else "—"

    @admin.display(description="created")
    def created_shown(self, installation: Installation) -> str:
        return seconds(installation.created_at)

    @admin.display(description="updated")
    def updated_shown(self, installation: Installation) -> str:
        return seconds(installation.updated_at)

    # --- actions --------------------------------------------------------------------------

    @admin.action(description="Reinstall selected installations", permissions=["operate"])
    def reinstall_selected(self, request: HttpRequest, queryset: QuerySet[Installation]) -> Any:
        return self._each(request, queryset, "reinstall", actions.do_reinstall)

    @admin.action(description="Upgrade selected installations", permissions=["operate"])
    def upgrade_selected(self, request: HttpRequest, queryset: QuerySet[Installation]) -> Any:
        return self._each(request, queryset, "upgrade", actions.do_upgrade)

    @admin.action(description="Retry selected failed installations", permissions=["operate"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Installation]) -> Any:
        return self._each(request, queryset, "retry", actions.do_retry)

    @admin.action(description="Uninstall selected installations", permissions=["operate"])
    def uninstall_selected(self, request: HttpRequest, queryset: QuerySet[Installation]) -> Any:
        return self._each(
            request, queryset, "uninstall", lambda i, by: actions.do_uninstall(i, by=by)
        )

    def _each(
        self,
        request: HttpRequest,
        queryset: QuerySet[Installation],
        doing: str,
        do: Callable[..., Launched],
    ) -> HttpResponse | None:
        """Run ``do`` on each installation; a refusal is a message with its reason. When a
        run generated passwords, the answer is a page showing them (once)."""
        launched: list[Launched] = []
        for installation in queryset.select_related("node"):
            try:
                launched.append(do(installation, by=request.user))
            except InputsInvalid as exc:
                reasons = "; ".join(f"{k}: {v}" for k, v in exc.messages.items())
                self.message_user(request, f"{installation}: {reasons}", messages.ERROR)
            except PortalError as error:
                self.message_user(request, error.message, messages.WARNING)
        for run in launched:
            self.message_user(
                request,
                format_html(
                    "{} {}: {}", doing, run.installations[0].installer_id, job_link(run.job.pk)
                ),
                messages.SUCCESS,
            )
        if any(run.generated for run in launched):
            return self._launched_page(request, launched, f"{doing.capitalize()} launched")
        return None

    def _launched_page(
        self, request: HttpRequest, launched: list[Launched], title: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "launched": launched,
        }
        response = TemplateResponse(request, LAUNCHED_PAGE, context)
        response["Cache-Control"] = "no-store"
        return response

    # --- install --------------------------------------------------------------------------

    def install_view(self, request: HttpRequest) -> HttpResponse:
        """Choose an installer (GET ?installer=…), then its nodes and inputs; installing
        answers with the launched page (generated passwords shown there, once)."""
        if not self.has_operate_permission(request):
            raise PermissionDenied
        choose = ChooseInstallerForm(request.GET or None)
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Install an installer on nodes",
            "choose": choose,
        }
        if not choose.is_valid():
            return TemplateResponse(request, INSTALL_PAGE, context)
        manifest = catalogue.get(choose.cleaned_data["installer"])
        data = request.POST if request.method == "POST" else None
        submission = submit_install(manifest, data, request.user)
        if submission.launched is not None:
            return self._launched_page(
                request, [submission.launched], f"{manifest.name} install launched"
            )
        context.update(
            title=f"Install {manifest.name} {manifest.version}",
            manifest=manifest,
            targets=submission.targets,
            form=submission.inputs,
            visibility_url=reverse("api:installer-visibility", args=[manifest.id]),
        )
        status = 400 if submission.targets.errors or submission.inputs.errors else 200
        return TemplateResponse(request, INSTALL_PAGE, context, status=status)


@admin.register(InstallationEvent)
class InstallationEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """History rows: written by the actions, never edited or deleted."""

    list_display = ["at", "installation", "from_status", "status", "reason", "job", "by"]
    list_filter = ["status"]
    search_fields = ["installation__installer_id", "installation__node__name", "reason"]
    list_select_related = ["installation", "by", "job"]
    readonly_fields = ["installation", "at", "from_status", "status", "reason", "job", "by"]
