from django.db import models


class FleetTier(models.TextChoices):
    """The source fleet's tiers (of customers and of VMs). The portal's plans call the middle
    tier "team": a customer on the team plan is a "pro" customer in the fleet API."""

    STARTER = "starter", "Starter"
    PRO = "pro", "Pro"
    ENTERPRISE = "enterprise", "Enterprise"


class VMStatus(models.TextChoices):
    """A VM's status, derived (never stored): maintenance when flagged, error when its last
    action failed, else online/offline from its agent's heartbeats."""

    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"
    MAINTENANCE = "maintenance", "Maintenance"
    ERROR = "error", "Error"


class VMActionKind(models.TextChoices):
    RESTART = "restart", "Restart"
    REBUILD = "rebuild", "Rebuild"
    UPDATE = "update", "Update"


class RolloutStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    HALTED = "halted", "Halted"
    ABORTED = "aborted", "Aborted"


class TargetStatus(models.TextChoices):
    """One VM in a rollout."""

    PENDING = "pending", "Pending"  # not reached yet (stays so when the rollout halts)
    UPDATING = "updating", "Updating"  # its update job runs
    SOAKING = "soaking", "Soaking"  # updated; watched for the soak period
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"  # left out (removed, in maintenance, aborted before it)


class OperationStatus(models.TextChoices):
    """Where a restart or rebuild of a VM is (portal/fleet/actions/operate.py)."""

    REIMAGING = "reimaging", "Re-imaging"  # rebuild: the power driver re-images the VM
    BOOTING = "booting", "Booting"  # rebuild: waiting for SSH on the new image
    RUNNING = "running", "Running"  # its job runs (restart: the reboot; rebuild: checks)
    INSTALLING_AGENT = "installing_agent", "Installing the agent"  # rebuild
    AWAITING_HEARTBEAT = "awaiting_heartbeat", "Awaiting a heartbeat"  # from the new boot
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
