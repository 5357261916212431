"""Workspaces: one code-server per workspace on a workspace node, and its history.

Every status change goes through :meth:`Workspace.move` (:class:`portal.core.status.StatusModel`):
a guarded ``UPDATE … WHERE status IN`` checked against ``Workspace.TRANSITIONS`` that also
records a :class:`WorkspaceEvent`, so two requests (or a request and a worker) can never both
win a transition and the history is complete.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from portal.core.fields import EncryptedTextField
from portal.core.models import TimeStampedModel
from portal.core.status import StatusModel
from portal.core.tenancy import CustomerOwnedQuerySet, MembershipRole, is_admin
from portal.jobs.choices import ACTIVE as JOB_ACTIVE
from portal.workspaces.choices import QuotaBackend, WorkspaceStatus

S = WorkspaceStatus

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?\Z",
    "Use 1-40 lower-case letters, digits or '-', not starting or ending with '-'.",
)
username_validator = RegexValidator(r"^[a-z_][a-z0-9_-]{0,31}\Z", "Not a valid Linux user name.")


class WorkspaceQuerySet(CustomerOwnedQuerySet):
    def live(self):
        return self.exclude(status=S.DELETED)

    def actionable_by(self, user):
        """Who may act: the workspace's owner, its customer's owners, admins."""
        if not (user and user.is_authenticated):
            return self.none()
        if is_admin(user):
            return self
        return self.filter(
            Q(owner=user)
            | Q(customer__memberships__user=user, customer__memberships__role=MembershipRole.OWNER)
        ).distinct()

    def routed(self):
        """What Traefik should route: workspaces whose code-server is (being) served."""
        return self.filter(route_wanted=True, port__isnull=False).exclude(
            status__in=[S.DELETING, S.DELETED, S.FAILED]
        )


class Workspace(StatusModel, TimeStampedModel):
    customer_path = "customer"

    TRANSITIONS = {  # from -> the statuses it may move to
        S.PENDING: {S.PROVISIONING, S.FAILED, S.DELETING, S.DELETED},
        S.PROVISIONING: {S.RUNNING, S.FAILED, S.DELETED},  # deleted: forced by an admin
        S.RUNNING: {S.STOPPED, S.DELETING, S.DELETED},
        S.STOPPED: {S.RUNNING, S.FAILED, S.DELETING, S.DELETED},
        S.FAILED: {S.DELETING, S.DELETED},
        S.DELETING: {S.DELETED, S.FAILED},
    }
    TERMINAL = frozenset({S.DELETED})
    STATUS_REASON_FIELD = "status_reason"
    STATUS_CHANGED_AT_FIELD = "status_changed_at"

    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.PROTECT, related_name="workspaces"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="workspaces"
    )
    name = models.CharField(max_length=100)
    slug = models.CharField(
        max_length=40,
        validators=[slug_validator],
        help_text="Subdomain: served at SLUG.WORKSPACES_DOMAIN.",
    )
    node = models.ForeignKey("nodes.Node", on_delete=models.PROTECT, related_name="workspaces")
    port = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1024), MaxValueValidator(65535)],
        help_text="Held from create until the workspace is gone from its node.",
    )
    linux_username = models.CharField(max_length=32, validators=[username_validator])
    password = EncryptedTextField(editable=False)

    disk_quota_gb = models.PositiveIntegerField()
    cpu_limit = models.DecimalField(max_digits=5, decimal_places=2)
    memory_limit_mb = models.PositiveIntegerField()
    quota_backend = models.CharField(
        max_length=10,
        choices=QuotaBackend.choices,
        blank=True,
        help_text="The backend that enforced the quota.",
    )
    quota_used_bytes = models.BigIntegerField(null=True, blank=True)

    status = models.CharField(max_length=20, choices=S.choices, default=S.PENDING, db_index=True)
    status_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    current_job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The job acting on the workspace now.",
    )
    on_node = models.BooleanField(default=False, help_text="Something of it may exist on the node.")
    route_wanted = models.BooleanField(
        default=False, help_text="Published to Traefik's HTTP provider."
    )
    route_wanted_since = models.DateTimeField(null=True, blank=True)
    health = models.JSONField(default=dict, blank=True)
    recent_logs = models.TextField(blank=True)
    logs_fetched_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = WorkspaceQuerySet.as_manager()

    class Meta(StatusModel.Meta):
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "port"],
                condition=Q(port__isnull=False),
                name="unique_workspace_port_per_node",
                violation_error_message="This port is taken on the node.",
            ),
            models.UniqueConstraint(
                fields=["slug"],
                condition=~Q(status="deleted"),
                name="unique_live_workspace_slug",
                violation_error_message="This subdomain is taken.",
            ),
            models.UniqueConstraint(
                fields=["node", "linux_username"],
                condition=~Q(status="deleted"),
                name="unique_live_workspace_user_per_node",
            ),
            models.UniqueConstraint(
                fields=["customer", "name"],
                condition=~Q(status="deleted"),
                name="unique_live_workspace_name_per_customer",
                violation_error_message="You already have a workspace with this name.",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.slug})"

    @property
    def unit_name(self) -> str:
        return f"code-server-{self.slug}.service"

    @property
    def busy(self) -> bool:
        return self.current_job is not None and self.current_job.status in JOB_ACTIVE

    @property
    def url(self) -> str:
        scheme = "https" if settings.TRAEFIK_TLS else "http"
        return f"{scheme}://{self.slug}.{settings.WORKSPACES_DOMAIN}/"

    def move(
        self, to: str, allowed_from=None, *, message: str = "", job=None, by=None, **fields
    ) -> bool:
        """Guarded status change (only from ``allowed_from``, within TRANSITIONS), recorded in
        the history with the job and the user behind it."""
        return super().move(
            to, allowed_from, reason=message, history={"job": job, "by": by}, **fields
        )

    def record_move(
        self, from_status: str, to: str, reason: str, *, job=None, by=None, **history
    ) -> None:
        WorkspaceEvent.objects.create(
            workspace_id=self.pk,
            from_status=from_status,
            to_status=to,
            message=reason[:2000],
            job=job,
            by=by if by and by.pk else None,
        )

    def note(self, message: str, *, job=None, by=None, **fields) -> None:
        """Record something that happened without a status change (it becomes the reason
        shown with the status)."""
        fields.setdefault("status_reason", message)
        Workspace.objects.filter(pk=self.pk).update(updated_at=timezone.now(), **fields)
        WorkspaceEvent.objects.create(
            workspace_id=self.pk,
            from_status=self.status,
            to_status=self.status,
            message=message[:2000],
            job=job,
            by=by if by and by.pk else None,
        )
        self.refresh_from_db()


class WorkspaceEventQuerySet(CustomerOwnedQuerySet):
    pass


class WorkspaceEvent(models.Model):
    """The workspace's history: every status change and every job that acted on it."""

    customer_path = "workspace__customer"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField(default=timezone.now, db_index=True)
    from_status = models.CharField(max_length=20, choices=S.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=S.choices)
    message = models.TextField(blank=True)
    job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="workspace_events",
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = WorkspaceEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.workspace_id}: {self.from_status} → {self.to_status}"


class CapacityRefusal(models.Model):
    """A workspace create refused for want of a node or a free port (admins are told:
    portal/workspaces/notify.py); the admin home counts the last 24 hours' rows."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    code = models.CharField(max_length=20, help_text="no_node or no_capacity.")
    scope = models.CharField(max_length=200, help_text="The node group(s) that had no room.")
    message = models.TextField()
    customer = models.ForeignKey(
        "accounts.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    admins_told = models.BooleanField(
        default=False, help_text="This refusal's email went out (one per scope and window)."
    )

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.code} ({self.scope})"


class CapacityNotice(models.Model):
    """When the admins were last emailed about a scope: claimed by a guarded update, so
    concurrent refusals send one email per window."""

    scope = models.CharField(max_length=200, unique=True)
    last_told_at = models.DateTimeField()

    def __str__(self):
        return f"{self.scope}: told {self.last_told_at:%Y-%m-%d %H:%M}"
