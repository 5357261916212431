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
