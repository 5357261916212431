from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import format_html

from portal.accounts.models import Customer
from portal.core.admin import DetailActionsMixin, ReadOnlyAdminMixin, status_badge
from portal.core.errors import PortalError
from portal.workspaces import actions, selectors
from portal.workspaces.choices import OPERATIONS
from portal.workspaces.choices import WorkspaceStatus as S
from portal.workspaces.models import CapacityRefusal, Workspace, WorkspaceEvent


def job_link(job_id) -> str:
    if not job_id:
        return "—"
    return format_html(
        '<a href="{}">job {}</a>', reverse("admin:jobs_job_change", args=[job_id]), job_id
    )


EVENT_FIELDS = ("at", "from_status", "to_status", "message", "job_shown", "by")


class WorkspaceEventInline(admin.TabularInline):
    model = WorkspaceEvent
    fields = readonly_fields = EVENT_FIELDS
    extra = 0
    can_delete = False
    ordering = ["-at", "-id"]
    verbose_name_plural = "History (status changes and jobs)"
    classes = ["history-inline"]  # portal/admin.css hides each row's repeated caption

    @admin.display(description="job")
    def job_shown(self, event):
        return job_link(event.job_id)

    def has_add_permission(self, request, obj=None):
        return False


class WorkspaceCreateForm(forms.ModelForm):
    """Admins create through the same action as customers: limits, ports, names."""

    customer = forms.ModelChoiceField(queryset=Customer.objects.all())
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.filter(is_active=True))
    slug = forms.CharField(required=False, help_text="Blank: derived from the name.")
    node = forms.ModelChoiceField(
        queryset=selectors.workspace_nodes(),
        required=False,
        help_text="Blank: the least loaded workspace node.",
    )

    requested_by = None  # set per request by WorkspaceAdmin.get_form

    class Meta:
        model = Workspace
        fields = ["customer", "owner", "name", "slug", "node"]

    def clean(self):
        # The action is the validation: it refuses with a message or creates (pending) at
        # once, so the admin shows the same errors a customer gets from the API.
        data = super().clean()
        if self.errors:
            return data
        try:
            self.created = actions.do_create(
                data["customer"],
                data["owner"],
                data["name"],
                slug=data.get("slug") or None,
                node=data.get("node"),
                by=self.requested_by,
            )
        except PortalError as error:
            raise forms.ValidationError(
                {error.field if error.field in self.fields else None: error.message}
            ) from None
        return data

    def _post_clean(self):
        pass  # the instance was made by the action, not from the form


@admin.register(Workspace)
class WorkspaceAdmin(DetailActionsMixin, admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "customer",
        "owner",
        "node",
        "port",
        "status_shown",
        "job_shown",
        "quota_backend",
        "created_at",
    ]
    list_filter = ["status", "node", "quota_backend", "customer__plan"]
    search_fields = ["name", "slug", "linux_username", "customer__name", "owner__username"]
    list_select_related = ["customer", "owner", "node"]
    inlines = [WorkspaceEventInline]
    actions = [
        "start_selected",
        "stop_selected",
        "restart_selected",
        "check_selected",
        "delete_selected_workspaces",
        "force_delete_selected",
    ]
    # The same actions as buttons on the workspace's page; every field there is read-only
    # (changes are jobs), so that page has no Save button.
    detail_actions = [
        ("start_selected", "Start"),
        ("stop_selected", "Stop"),
        ("restart_selected", "Restart"),
        ("check_selected", "Check status"),
        ("delete_selected_workspaces", "Delete"),
        ("force_delete_selected", "Force delete"),
    ]
    detail_operations = {
        "start_selected": "start",
        "stop_selected": "stop",
        "restart_selected": "restart",
        "check_selected": "status",
    }
    read_only_page = True
    readonly_fields = [
        "customer",
        "owner",
        "name",
        "slug",
        "node",
        "port",
        "linux_username",
        "status",
        "status_reason",
        "status_changed_at",
        "job_shown",
        "on_node",
        "route_wanted",
        "disk_quota_gb",
        "cpu_limit",
        "memory_limit_mb",
        "quota_backend",
        "quota_used_bytes",
        "health",
        "recent_logs",
        "logs_fetched_at",
        "created_at",
        "updated_at",
        "deleted_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "slug",
                    "customer",
                    "owner",
                    "status",
                    "status_reason",
                    "status_changed_at",
                    "job_shown",
                ]
            },
        ),
        (
            "Machine",
            {
                "fields": [
                    "node",
                    "port",
                    "linux_username",
                    "on_node",
                    "route_wanted",
                    "health",
                    "recent_logs",
                    "logs_fetched_at",
                ]
            },
        ),
        (
            "Limits (from the plan)",
            {
                "fields": [
                    "disk_quota_gb",
                    "cpu_limit",
                    "memory_limit_mb",
                    "quota_backend",
                    "quota_used_bytes",
                ]
            },
        ),
        ("Times", {"fields": ["created_at", "updated_at", "deleted_at"]}),
    ]

    def detail_action_applies(self, workspace, name):
        if name in self.detail_operations:
            return workspace.status in OPERATIONS[self.detail_operations[name]]
        if name == "force_delete_selected":
            return workspace.status in (S.FAILED, S.DELETING)
        return workspace.status != S.DELETED

    @admin.display(description="status", ordering="status")
    def status_shown(self, workspace):
        return status_badge(workspace.status, workspace.get_status_display())

    @admin.display(description="current job")
    def job_shown(self, workspace):
        return job_link(workspace.current_job_id)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["customer", "owner", "name", "slug", "node"]})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = type(
                "WorkspaceCreateForm", (WorkspaceCreateForm,), {"requested_by": request.user}
            )
        return super().get_form(request, obj, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.pk = form.created.pk
            obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def has_delete_permission(self, request, obj=None):
        return False  # deleting is a job: the "Delete selected workspaces" action

    @admin.action(description="Start selected workspaces")
    def start_selected(self, request, queryset):
        self._operate_batched(request, queryset, "start")

    @admin.action(description="Stop selected workspaces")
    def stop_selected(self, request, queryset):
        self._operate_batched(request, queryset, "stop")

    @admin.action(description="Restart selected workspaces")
    def restart_selected(self, request, queryset):
        self._operate_batched(request, queryset, "restart")

    @admin.action(description="Check status of selected workspaces")
    def check_selected(self, request, queryset):
        self._operate_batched(request, queryset, "status")

    @admin.action(description="Delete selected workspaces (from their nodes)")
    def delete_selected_workspaces(self, request, queryset):
        self._operate_batched(request, queryset, "delete")

    @admin.action(
        description="Force delete selected workspaces (no job: for unreachable "
        "nodes; the node may keep leftovers)"
    )
    def force_delete_selected(self, request, queryset):
        done = 0
        for workspace in queryset.select_related("node", "current_job"):
            try:
                actions.do_force_delete(workspace, by=request.user)
                done += 1
            except PortalError as error:
                self.message_user(request, f"{workspace.slug}: {error.message}", messages.WARNING)
        if done:
            self.message_user(
                request,
                f"{done} workspace(s) deleted by force; their history "
                "says what their nodes may still hold.",
                messages.SUCCESS,
            )

    def _operate_batched(self, request, queryset, operation):
        """One job per node and customer for all selected workspaces that can do it; the
        others are listed with the reason."""
        ready, refused = [], []
        for workspace in queryset.select_related("node", "customer", "current_job"):
            try:
                if operation == "delete":
                    actions.check_deletable(workspace)
                else:
                    actions.check_operation(workspace, operation)
                ready.append(workspace)
            except PortalError as error:
                refused.append(f"{workspace.slug}: {error.message}")
        if ready:
            try:
                if operation == "delete":
                    actions.do_delete_many(ready, by=request.user)
                    self.message_user(
                        request, f"delete: {len(ready)} workspace(s) under way.", messages.SUCCESS
                    )
                else:
                    launched = actions.do_operate(ready, operation, by=request.user)
                    self.message_user(
                        request,
                        f"{operation}: {len(ready)} workspace(s) in {len(launched)} job(s).",
                        messages.SUCCESS,
                    )
            except PortalError as error:
                self.message_user(request, error.message, messages.ERROR)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)


@admin.register(WorkspaceEvent)
class WorkspaceEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """History rows: written by the actions, never edited or deleted."""

    list_display = ["at", "workspace", "from_status", "to_status", "message", "job", "by"]
    list_filter = ["to_status"]
    search_fields = ["workspace__slug", "message"]
    list_select_related = ["workspace", "by"]
    readonly_fields = ["workspace", "at", "from_status", "to_status", "message", "job", "by"]


@admin.register(CapacityRefusal)
class CapacityRefusalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Creates refused for want of a node or port (portal/workspaces/notify.py): the admin
    home counts the last 24 hours'; "admins told" marks the ones that were emailed."""

    list_display = ["at", "code", "scope", "customer", "admins_told", "message"]
    list_filter = ["code", "admins_told", "scope"]
    date_hierarchy = "at"
    list_select_related = ["customer"]
    readonly_fields = ["at", "code", "scope", "customer", "admins_told", "message"]
