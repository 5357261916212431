"""A Proxmox cluster and its bare-metal nodes (profiles of inventory nodes)."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from portal.clusters.choices import LegacyStatus
from portal.clusters.naming import (
    CLUSTER_NAME_MAX,
    cluster_name_validator,
    normalise_mac,
    validate_mac,
)
from portal.clusters.power import DRIVER_CHOICES, PowerError, get_driver
from portal.core.fields import EncryptedTextField
from portal.core.models import TimeStampedModel


class Cluster(TimeStampedModel):
    name = models.CharField(
        max_length=CLUSTER_NAME_MAX,
        unique=True,
        validators=[cluster_name_validator],
        help_text="Proxmox cluster name: 1-15 letters, digits or '-'.",
    )
    description = models.TextField(blank=True)
    init_node = models.ForeignKey(
        "ClusterNode",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Where `pvecm create` runs (blank: the run's first node).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.init_node_id and self.init_node and self.init_node.cluster_id != self.pk:
            raise ValidationError({"init_node": "The init node must be a node of this cluster."})


class ClusterNode(TimeStampedModel):
    """A bare-metal Proxmox node: how to power it, what it registered."""

    node = models.OneToOneField(
        "nodes.Node",
        on_delete=models.PROTECT,
        related_name="cluster_profile",
        help_text="The inventory node (SSH address, credential, jobs, monitoring).",
    )
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.PROTECT, related_name="nodes"
    )
    mac = models.CharField(
        max_length=17,
        unique=True,
        validators=[validate_mac],
        help_text="The provisioning NIC's MAC, lower case with colons (52:54:00:12:34:56).",
    )
    hostname = models.CharField(max_length=253, blank=True, help_text="As the node registered.")
    ip = models.GenericIPAddressField(null=True, blank=True, help_text="As the node registered.")
    link0 = models.GenericIPAddressField(
        null=True, blank=True, help_text="Corosync link 0 address (`pvecm add -link0`)."
    )
    link1 = models.GenericIPAddressField(
        null=True, blank=True, help_text="Optional second corosync link."
    )
    power_driver = models.CharField(max_length=20, choices=DRIVER_CHOICES)
    bmc_address = models.CharField(
        max_length=255, blank=True, help_text="The BMC's address (IPMI, Redfish)."
    )
    bmc_username = models.CharField(max_length=64, blank=True)
    bmc_password = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown.")
    power_options = models.JSONField(
        default=dict, blank=True, help_text="Driver options (checked by the driver)."
    )
    is_member = models.BooleanField(
        default=False,
        editable=False,
        help_text="A member of its cluster since its last join (a reprovision removes it "
        "with `pvecm delnode` before it joins again).",
    )
    registered_at = models.DateTimeField(null=True, blank=True)
    # What the old registered-nodes.json said, for nodes imported from it and never run since.
    legacy_reprovision_status = models.CharField(
        max_length=20, choices=LegacyStatus.choices, blank=True
    )
    legacy_reprovision_started = models.DateTimeField(null=True, blank=True)
    legacy_last_update = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["node__name"]

    def __str__(self) -> str:
        return f"{self.node.name} ({self.mac})"

    def clean(self) -> None:
        try:
            self.mac = normalise_mac(self.mac)
        except ValueError as exc:
            raise ValidationError({"mac": str(exc)}) from None
        if not isinstance(self.power_options, dict):
            raise ValidationError({"power_options": "Options must be a JSON object."})
        if self.power_driver:
            try:
                self.power_options = get_driver(self.power_driver).check_options(self.power_options)
            except (ValueError, PowerError) as exc:
                raise ValidationError({"power_options": str(exc)}) from None

    def save(self, *args: Any, **kwargs: Any) -> None:
        with suppress(ValueError):  # else full_clean (or the unique index) refuses it
            self.mac = normalise_mac(self.mac)
        super().save(*args, **kwargs)

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def proxmox_name(self) -> str:
        """The name Proxmox knows the node by (`pvecm delnode NAME`): its short hostname."""
        return (self.hostname or self.node.name).split(".")[0]
