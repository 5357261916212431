"""The fleet in the admin: VMs (restart and rebuild as actions, their operations inline).
Every change is an action's (portal.fleet.actions)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from portal.core.admin import WriteOnlySecretsForm, secret_field
from portal.core.errors import PortalError
from portal.fleet.actions import operate, rollouts
from portal.fleet.actions.tiers import do_save_tier_cost, offline_rule_name
from portal.fleet.choices import RolloutStatus
from portal.fleet.models import VM, Rollout, RolloutTarget, TierCost, Update, VMOperation
from portal.fleet.selectors import vm_status
from portal.monitoring.models import AlertRule


class VMForm(WriteOnlySecretsForm):
    SECRET_FIELDS = ("power_password",)
    power_password = secret_field("Stored encrypted; leave empty to keep the current one.")

    class Meta:
        model = VM
        fields = [
            "node",
            "customer",
            "tier",
            "cpu_cores",
            "memory_gb",
            "disk_gb",
            "maintenance",
            "maintenance_reason",
            "power_driver",
            "power_address",
            "power_username",
            "power_password",
            "power_options",
        ]


class VMOperationInline(admin.TabularInline):
    model = VMOperation
    extra = 0
    can_delete = False
    fields = ("kind", "status", "reason", "job_link", "agent_job", "booted_at", "created_at")
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="job")
    def job_link(self, operation: VMOperation) -> str:
        if not operation.job_id:
            return "-"
        url = reverse("admin:jobs_job_change", args=[operation.job_id])
        return format_html('<a href="{}">job {}</a>', url, operation.job_id)


@admin.register(VM)
class VMAdmin(admin.ModelAdmin):
    form = VMForm
    list_display = ["node", "customer", "tier", "status", "last_action_kind", "power_driver"]
    list_filter = ["tier", "maintenance", "last_action_failed", "power_driver"]
    search_fields = ["node__name", "node__address", "customer__name"]
    list_select_related = ["node", "customer", "node__liveness"]
    raw_id_fields = ["node", "customer"]
    readonly_fields = ["last_action", "last_action_kind", "last_action_failed"]
    inlines = [VMOperationInline]
    actions = ["restart", "rebuild"]

    @admin.display(description="status")
    def status(self, vm: VM) -> str:
        return vm_status(vm)

    @admin.action(description="Restart the selected VMs")
    def restart(self, request: HttpRequest, queryset: QuerySet[VM]) -> None:
        self._launch(request, queryset, operate.restart_vm, "restart")

    @admin.action(description="Rebuild (re-image) the selected VMs")
    def rebuild(self, request: HttpRequest, queryset: QuerySet[VM]) -> None:
        self._launch(request, queryset, operate.rebuild_vm, "rebuild")

    def _launch(
        self, request: HttpRequest, queryset: QuerySet[VM], action: Callable, what: str
    ) -> None:
        for vm in queryset.select_related("node", "customer"):
            try:
                job = action(vm, by=request.user)
            except PortalError as error:
                self.message_user(request, f"{vm}: {error.message}", messages.WARNING)
                continue
            link = reverse("admin:jobs_job_change", args=[job.pk])
            self.message_user(
                request,
                format_html('{}: {} started (<a href="{}">job {}</a>)', vm, what, link, job.pk),
            )


# --- updates and rollouts (portal.fleet.actions.rollouts) -----------------------------------


class RolloutTargetInline(admin.TabularInline):
    model = RolloutTarget
    extra = 0
    can_delete = False
    fields = ("vm", "wave", "status", "previous_version", "job", "reason", "soak_until")
    readonly_fields = fields
    ordering = ["wave", "pk"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RolloutInline(admin.TabularInline):
    model = Rollout
    extra = 0
    can_delete = False
    fields = ("id", "status", "current_wave", "reason", "started_at", "finished_at")
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Update)
class UpdateAdmin(admin.ModelAdmin):
    """Updates are created here (version, playbook, variables); "Start a rollout" rolls the
    selected ones out with the default options (API: POST /api/updates/{id}/rollouts)."""

    list_display = ["version", "description", "playbook", "created_at"]
    search_fields = ["version", "description"]
    fields = ["version", "description", "playbook", "extra_vars"]
    inlines = [RolloutInline]
    actions = ["start_rollout"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["version"] if obj is not None else []  # a rolled-out version stays what it was

    def save_model(self, request: HttpRequest, obj: Update, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    @admin.action(description="Start a rollout (default waves, soak, limits)")
    def start_rollout(self, request: HttpRequest, queryset: QuerySet[Update]) -> None:
        for update in queryset:
            try:
                rollout = rollouts.plan_rollout(request.user, update)
            except PortalError as error:
                self.message_user(request, f"{update}: {error.message}", messages.WARNING)
                continue
            link = reverse("admin:fleet_rollout_change", args=[rollout.pk])
            self.message_user(
                request,
                format_html(
                    '{}: <a href="{}">rollout {}</a> {}', update, link, rollout.pk, rollout.status
                ),
            )


@admin.register(Rollout)
class RolloutAdmin(admin.ModelAdmin):
    """Rollouts with their VMs' results; start, pause, resume and abort as actions (a move
    the status does not allow is reported, nothing else changes)."""

    list_display = [
        "id",
        "update",
        "status",
        "current_wave",
        "failure_limit",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status"]
    search_fields = ["update__version"]
    list_select_related = ["update"]
    readonly_fields = [
        "update",
        "status",
        "reason",
        "waves",
        "soak_seconds",
        "failure_limit",
        "max_unavailable",
        "current_wave",
        "selection",
        "created_by",
        "started_at",
        "finished_at",
    ]
    inlines = [RolloutTargetInline]
    actions = ["start", "pause", "resume", "abort"]
    change_form_template = "admin/fleet/rollout/change_form.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started from an update (its action, or the API) with checked options

    # The change page's buttons: the moves its status allows (move, label, title).
    BUTTONS: ClassVar[dict[str, tuple[tuple[str, str, str], ...]]] = {
        RolloutStatus.PENDING: (
            ("start", "Start", "Start the first wave now"),
            ("abort", "Abort", "End it: no VM is updated"),
        ),
        RolloutStatus.IN_PROGRESS: (
            ("pause", "Pause", "No VM starts; running jobs finish"),
            ("abort", "Abort", "No VM starts any more; running jobs finish"),
        ),
        RolloutStatus.PAUSED: (
            ("resume", "Resume", "Go on from where it stopped"),
            ("abort", "Abort", "No VM starts any more; running jobs finish"),
        ),
    }

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        rollout = Rollout.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        moves = self.BUTTONS.get(rollout.status, ()) if rollout else ()
        extra_context = {**(extra_context or {}), "rollout_moves": moves}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[URLPattern]:
        move = path(
            "<int:object_id>/move/<str:move>/",
            self.admin_site.admin_view(self.move_view),
            name="fleet_rollout_move",
        )
        return [move, *super().get_urls()]

    def move_view(self, request: HttpRequest, object_id: int, move: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        rollout = get_object_or_404(Rollout, pk=object_id)
        if not self.has_change_permission(request, rollout) or move not in self.moves():
            raise PermissionDenied
        self._move(request, Rollout.objects.filter(pk=rollout.pk), self.moves()[move](request))
        return HttpResponseRedirect(reverse("admin:fleet_rollout_change", args=[rollout.pk]))

    @staticmethod
    def moves() -> dict[str, Callable[[HttpRequest], Callable[[Rollout], Any]]]:
        return {
            "start": lambda request: rollouts.start_rollout,
            "pause": lambda request: lambda r: rollouts.pause_rollout(r, by=request.user),
            "resume": lambda request: rollouts.resume_rollout,
            "abort": lambda request: lambda r: rollouts.abort_rollout(r, by=request.user),
        }

    @admin.action(description="Start the selected pending rollouts")
    def start(self, request: HttpRequest, queryset: QuerySet[Rollout]) -> None:
        self._move(request, queryset, self.moves()["start"](request))

    @admin.action(description="Pause the selected rollouts")
    def pause(self, request: HttpRequest, queryset: QuerySet[Rollout]) -> None:
        self._move(request, queryset, self.moves()["pause"](request))

    @admin.action(description="Resume the selected paused rollouts")
    def resume(self, request: HttpRequest, queryset: QuerySet[Rollout]) -> None:
        self._move(request, queryset, self.moves()["resume"](request))

    @admin.action(description="Abort the selected rollouts (running jobs finish)")
    def abort(self, request: HttpRequest, queryset: QuerySet[Rollout]) -> None:
        self._move(request, queryset, self.moves()["abort"](request))

    def _move(
        self, request: HttpRequest, queryset: QuerySet[Rollout], move: Callable[[Rollout], Any]
    ) -> None:
        for rollout in queryset.select_related("update"):
            try:
                move(rollout)
            except PortalError as error:
                self.message_user(request, f"{rollout}: {error.message}", messages.WARNING)
                continue
            rollout.refresh_from_db()
            self.message_user(request, f"{rollout}: {rollout.status}")


@admin.register(TierCost)
class TierCostAdmin(admin.ModelAdmin):
    """Each tier's monthly cost per VM (the fleet figures' cost side) and after how many
    hours offline its VMs raise a ``vm_offline`` alert; saving one updates that tier's alert
    rule (actions/tiers.py)."""

    list_display = ["tier", "monthly_cost", "offline_alert_hours", "offline_rule", "updated_at"]
    fields = ["tier", "monthly_cost", "offline_alert_hours", "offline_rule"]
    readonly_fields = ["offline_rule"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A tier is what the row is: changed, it would leave its rule behind.
        return ["tier", "offline_rule"] if obj is not None else ["offline_rule"]

    @admin.display(description="offline alert rule")
    def offline_rule(self, tier_cost: TierCost) -> str:
        rule = AlertRule.objects.filter(name=offline_rule_name(tier_cost.tier)).first()
        if rule is None:
            return "-"
        url = reverse("admin:monitoring_alertrule_change", args=[rule.pk])
        state = "" if rule.enabled else " (disabled)"
        return format_html('<a href="{}">{}</a>{}', url, rule.name, state)

    def save_model(self, request: HttpRequest, obj: TierCost, form: Any, change: bool) -> None:
        do_save_tier_cost(obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # every tier has a cost (0 until set) and an offline rule
