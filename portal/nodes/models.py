from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from portal.core.fields import EncryptedTextField
from portal.core.models import TimeStampedModel
from portal.nodes import hostkeys, keys
from portal.nodes.choices import Connection, CredentialKind, NodePurpose, QuotaBackend

name_validator = RegexValidator(
    r"^[a-z0-9]([a-z0-9._-]{0,62})$",
    "Use 1-63 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit.",
)
workspace_root_validator = RegexValidator(
    r"^/[A-Za-z0-9._/-]+$", "An absolute path (letters, digits, '.', '_', '-', '/')."
)
queue_validator = RegexValidator(r"^[A-Za-z0-9._-]*$", "Use letters, digits, '.', '_' or '-' only.")


class NodeGroup(TimeStampedModel):
    """A site or group of nodes; its queue routes their jobs to the workers that serve it."""

    name = models.CharField(max_length=63, unique=True, validators=[name_validator])
    description = models.TextField(blank=True)
    queue = models.CharField(
        max_length=100,
        blank=True,
        validators=[queue_validator],
        help_text="Celery queue for jobs on these nodes (blank: the default queue).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Credential(TimeStampedModel):
    """How the portal logs in to nodes. The secret is encrypted and never shown back."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(
        max_length=20, choices=CredentialKind.choices, default=CredentialKind.SSH_KEY
    )
    username = models.CharField(
        max_length=64, blank=True, help_text="Overrides the node's SSH user when set."
    )
    secret = EncryptedTextField(help_text="SSH private key or password; stored encrypted.")
    hint = models.CharField(
        max_length=120,
        blank=True,
        editable=False,
        help_text="Key fingerprint, safe to show; the secret itself is never shown.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        if not self.secret:
            raise ValidationError({"secret": "A key or password is required."})
        if self.kind == CredentialKind.SSH_KEY:
            try:
                keys.load_private_key(self.secret)
            except keys.InvalidKey as exc:
                raise ValidationError({"secret": str(exc)}) from None

    def save(self, *args, **kwargs):
        self.hint = self._describe()
        super().save(*args, **kwargs)

    def _describe(self) -> str:
        if self.kind == CredentialKind.SSH_KEY:
            try:
                return keys.fingerprint(self.secret)
            except keys.InvalidKey:
                return "invalid key"
        return "password (hidden)"


class Node(TimeStampedModel):
    name = models.CharField(max_length=63, unique=True, validators=[name_validator])
    address = models.CharField(max_length=255, help_text="IP address or DNS name for SSH.")
    connection = models.CharField(
        max_length=10,
        choices=Connection.choices,
        default=Connection.SSH,
        help_text="'local' runs on the worker machine itself (demo, benchmarks).",
    )
    ssh_port = models.PositiveIntegerField(
        default=22, validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    ssh_user = models.CharField(max_length=64, default="root")
    become = models.BooleanField(default=False, help_text="Use sudo for privileged tasks.")
    purpose = models.CharField(max_length=20, choices=NodePurpose.choices, db_index=True)
    enabled = models.BooleanField(default=True, db_index=True)
    labels = models.JSONField(default=dict, blank=True)
    group = models.ForeignKey(
        NodeGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="nodes"
    )
    queue = models.CharField(
        max_length=100,
        blank=True,
        validators=[queue_validator],
        help_text="Celery queue for this node's jobs (blank: its group's, else the default).",
    )
    credential = models.ForeignKey(
        Credential, null=True, blank=True, on_delete=models.PROTECT, related_name="nodes"
    )
    # Workspace hosting (purpose workspace_host): where homes live, how quotas are kept, and
    # the ports code-server instances may bind.
    workspace_port_start = models.PositiveIntegerField(
        default=8001, validators=[MinValueValidator(1024), MaxValueValidator(65535)]
    )
    workspace_port_end = models.PositiveIntegerField(
        default=8100, validators=[MinValueValidator(1024), MaxValueValidator(65535)]
    )
    workspace_root = models.CharField(
        max_length=200,
        default="/srv/workspaces",
        validators=[workspace_root_validator],
        help_text="Directory holding the workspaces' homes (btrfs: a btrfs filesystem).",
    )
    workspace_quota_backend = models.CharField(
        max_length=10,
        choices=QuotaBackend.choices,
        default=QuotaBackend.BTRFS,
        help_text="How the plan's disk quota is enforced on this node.",
    )
    # SSH host keys (portal.nodes.hostkeys): pinned on first contact or by an admin; jobs
    # check them strictly and refuse a changed key until an admin accepts it.
    host_keys = models.TextField(
        blank=True,
        help_text="Pinned SSH host keys, one per line as ssh-keyscan prints them "
        "('ssh-ed25519 AAAA…'). Empty: read and pinned on the first job's contact.",
    )
    host_keys_pinned_at = models.DateTimeField(null=True, blank=True, editable=False)
    host_keys_pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who pinned or accepted the keys (empty: first contact).",
    )
    host_keys_pinned_how = models.CharField(max_length=20, blank=True, editable=False)
    jump_host = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="jumped_nodes",
        help_text="Reach this node through that one (SSH ProxyJump-style; one hop, with the "
        "jump host's own pinned key and credential).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        if not isinstance(self.labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool)
            for k, v in self.labels.items()
        ):
            raise ValidationError({"labels": "Labels must be a mapping of names to plain values."})
        if self.connection == Connection.SSH and self.credential_id is None:
            raise ValidationError({"credential": "An SSH node needs a credential to log in with."})
        if (self.workspace_port_start or 0) > (self.workspace_port_end or 0):
            raise ValidationError({"workspace_port_end": "The port range ends before it starts."})
        try:
            self.host_keys = hostkeys.normalize(self.host_keys)
        except hostkeys.HostKeyError as exc:
            raise ValidationError({"host_keys": str(exc)}) from None
        self._clean_jump_host()

    def _clean_jump_host(self):
        jump = self.jump_host if self.jump_host_id else None
        if jump is None:
            return
        if self.connection != Connection.SSH:
            raise ValidationError({"jump_host": "Only an SSH node can use a jump host."})
        if self.pk is not None and jump.pk == self.pk:
            raise ValidationError({"jump_host": "A node cannot be its own jump host."})
        if jump.connection != Connection.SSH:
            raise ValidationError({"jump_host": "The jump host must be an SSH node."})
        if jump.jump_host_id:
            raise ValidationError(
                {"jump_host": f"{jump.name} itself uses a jump host; only one hop is supported."}
            )
        if self.pk is not None and self.jumped_nodes.exists():
            raise ValidationError(
                {
                    "jump_host": "Other nodes use this node as their jump "
                    "host; only one hop is supported."
                }
            )
        if jump.credential_id is None or jump.credential.kind != CredentialKind.SSH_KEY:
            raise ValidationError(
                {"jump_host": "The jump host must log in with an SSH key credential."}
            )

    @property
    def routing_queue(self) -> str:
        if self.queue:
            return self.queue
        if self.group is not None and self.group.queue:
            return self.group.queue
        return settings.CELERY_TASK_DEFAULT_QUEUE

    @property
    def login_user(self) -> str:
        if self.credential is not None and self.credential.username:
            return self.credential.username
        return self.ssh_user
