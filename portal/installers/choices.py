from django.db import models


class InputType(models.TextChoices):
    """A manifest input's ``type`` (the source's seven, then the portal's four more)."""

    STRING = "string", "String"
    INTEGER = "integer", "Integer"
    BOOLEAN = "boolean", "Boolean"
    PASSWORD = "password", "Password"
    SELECT = "select", "Select"
    EMAIL = "email", "Email"
    PORT = "port", "Port"
    TEXT = "text", "Text"
    URL = "url", "URL"
    NUMBER = "number", "Number"
    MULTISELECT = "multiselect", "Multiselect"


class InstallationStatus(models.TextChoices):
    """Where one installer stands on one node (see Installation.TRANSITIONS)."""

    PENDING = "pending", "Pending"
    INSTALLING = "installing", "Installing"
    INSTALLED = "installed", "Installed"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"  # exit 1 or preflight: never retried
    NEEDS_OPERATOR = "needs_operator", "Needs an operator"  # exit 3
    UNINSTALLING = "uninstalling", "Uninstalling"
    UNINSTALLED = "uninstalled", "Uninstalled"
