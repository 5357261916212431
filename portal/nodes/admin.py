from django import forms
from django.contrib import admin

from portal.nodes.models import Credential, Node, NodeGroup


@admin.register(NodeGroup)
class NodeGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "queue", "description"]
    search_fields = ["name", "queue"]


class CredentialForm(forms.ModelForm):
    """The secret is write-only: the form never renders the stored value."""

    secret = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "autocomplete": "off"}),
        required=False, strip=False,
        help_text="Paste a private key or password. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = Credential
        fields = ["name", "kind", "username", "secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["secret"] = ""
        if self.instance.pk is None:
            self.fields["secret"].required = True
            self.fields["secret"].help_text = "Paste a private key or password."

    def clean_secret(self):
        value = self.cleaned_data.get("secret")
        if not value and self.instance.pk is not None:
            return Credential.objects.get(pk=self.instance.pk).secret
        return value


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = ["name", "kind", "username", "hint", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "username", "hint"]
    readonly_fields = ["hint"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("secret")


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ["name", "address", "ssh_port", "purpose", "enabled", "group",
                    "queue_shown", "credential"]
    list_filter = ["purpose", "enabled", "group", "become"]
    search_fields = ["name", "address", "queue"]
    list_select_related = ["group", "credential"]
    list_editable = ["enabled"]
    autocomplete_fields = ["group", "credential"]
    fieldsets = [
        (None, {"fields": ["name", "address", "purpose", "enabled", "labels"]}),
        ("Connection", {"fields": ["connection", "ssh_port", "ssh_user", "become",
                                   "credential"]}),
        ("Routing", {"fields": ["group", "queue"]}),
        ("Workspace hosting", {"fields": ["workspace_root", "workspace_quota_backend",
                                          "workspace_port_start", "workspace_port_end"]}),
    ]

    @admin.display(description="queue")
    def queue_shown(self, node):
        return node.routing_queue
