"""Statuses of the clusters app (see ReprovisionRun.TRANSITIONS, NodeReprovision.TRANSITIONS)."""

from django.db import models


class RunStatus(models.TextChoices):
    """One reprovision run: a set of a cluster's nodes re-imaged, then the cluster formed."""

    REQUESTED = "requested", "Requested"
    RUNNING = "running", "Running"
    CLUSTERED = "clustered", "Clustered"
    TIMEOUT = "timeout", "Timed out"
    ERROR = "error", "Error"
    CANCELED = "canceled", "Canceled"


class NodeStatus(models.TextChoices):
    """One node in one run: its reprovision phases, then its join."""

    REQUESTED = "requested", "Requested"  # waiting for the power driver's reimage
    REBOOTING = "rebooting", "Rebooting"  # reimage sent; network boot, installer starting
    INSTALLING = "installing", "Installing"  # the post-install script was fetched
    REGISTERED = "registered", "Registered"  # the node registered itself; readiness checks
    READY = "ready", "Ready"  # reachable over SSH, corosync/pvecm present, services up
    JOINING = "joining", "Joining"  # cluster_form.yml is creating/joining the cluster
    CLUSTERED = "clustered", "Clustered"  # a member of the cluster
    TIMEOUT = "timeout", "Timed out"
    ERROR = "error", "Error"
    CANCELED = "canceled", "Canceled"


class LegacyStatus(models.TextChoices):
    """The old system's ``reprovision_status`` (registered-nodes.json), derived from a node's
    latest NodeReprovision (models.legacy_status)."""

    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CLUSTERED = "clustered", "Clustered"
    TIMEOUT = "timeout", "Timeout"
    ERROR = "error", "Error"
