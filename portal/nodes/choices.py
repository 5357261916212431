from django.db import models


class NodePurpose(models.TextChoices):
    WORKSPACE_HOST = "workspace_host", "Workspace host"
    LAB_SERVER = "lab_server", "Lab server"
    FLEET_HOST = "fleet_host", "Fleet VM host"
    PROXMOX_NODE = "proxmox_node", "Proxmox node"


class CredentialKind(models.TextChoices):
    SSH_KEY = "ssh_key", "SSH private key"
    PASSWORD = "password", "Password"


class Connection(models.TextChoices):
    SSH = "ssh", "SSH"
    LOCAL = "local", "Local (on the worker itself)"


class QuotaBackend(models.TextChoices):
    BTRFS = "btrfs", "btrfs subvolume + qgroup"
    PROJECT = "project", "XFS/ext4 project quota"
    NONE = "none", "No quota (explicit)"
