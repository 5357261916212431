from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html_join

from portal.core.admin import WriteOnlySecretsForm
from portal.core.errors import PortalError
from portal.nodes import actions, hostkeys
from portal.nodes.models import Credential, Node, NodeGroup


def changes_of(form, obj) -> dict:
    """What the admin changed on ``obj`` (already applied to it by the form), for an update
    action applied to the stored row."""
    return {name: getattr(obj, name) for name in form.changed_data}


@admin.register(NodeGroup)
class NodeGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "queue", "description"]
    search_fields = ["name", "queue"]


class CredentialForm(WriteOnlySecretsForm):
    """The secret is write-only: the form never renders the stored value."""

    SECRET_FIELDS = ("secret",)

    secret = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "autocomplete": "off"}),
        required=False,
        strip=False,
        help_text="Paste a private key or password. Leave empty to keep the stored secret.",
    )

    class Meta:
        model = Credential
        fields = ["name", "kind", "username", "secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.fields["secret"].required = True
            self.fields["secret"].help_text = "Paste a private key or password."


@admin.register(Credential)
class CredentialAdmin(admin.ModelAdmin):
    form = CredentialForm
    list_display = ["name", "kind", "username", "hint", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name", "username", "hint"]
    readonly_fields = ["hint"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("secret")

    def save_model(self, request, obj, form, change):
        if change:  # through the action: the nodes' shared SSH masters are closed
            actions.do_update_credential(Credential.objects.get(pk=obj.pk), **changes_of(form, obj))
        else:
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        actions.do_delete_credential(obj)

    def delete_queryset(self, request, queryset):
        for credential in queryset:
            actions.do_delete_credential(credential)


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "address",
        "ssh_port",
        "purpose",
        "enabled",
        "group",
        "queue_shown",
        "credential",
        "jump_host",
        "host_key_shown",
    ]
    list_filter = ["purpose", "enabled", "group", "become"]
    search_fields = ["name", "address", "queue"]
    list_select_related = ["group", "credential", "jump_host"]
    list_editable = ["enabled"]
    autocomplete_fields = ["group", "credential", "jump_host"]
    readonly_fields = [
        "host_key_fingerprints",
        "host_keys_pinned_at",
        "host_keys_pinned_by",
        "host_keys_pinned_how",
    ]
    fieldsets = [
        (None, {"fields": ["name", "address", "purpose", "enabled", "labels"]}),
        (
            "Connection",
            {"fields": ["connection", "ssh_port", "ssh_user", "become", "credential", "jump_host"]},
        ),
        (
            "Host keys",
            {
                "fields": [
                    "host_key_fingerprints",
                    "host_keys",
                    "host_keys_pinned_at",
                    "host_keys_pinned_by",
                    "host_keys_pinned_how",
                ],
                "description": "Jobs check the node's SSH host key against these "
                "pinned keys and refuse a changed one. Empty: read "
                "and pinned when the first job connects. After a "
                "reinstall or key rotation, use “Accept new host "
                "key”.",
            },
        ),
        ("Routing", {"fields": ["group", "queue"]}),
        (
            "Workspace hosting",
            {
                "fields": [
                    "workspace_root",
                    "workspace_quota_backend",
                    "workspace_port_start",
                    "workspace_port_end",
                ]
            },
        ),
    ]
    actions = ["accept_new_host_key"]
    change_form_template = "admin/nodes/node/change_form.html"

    @admin.display(description="queue")
    def queue_shown(self, node):
        return node.routing_queue

    @admin.display(description="host key")
    def host_key_shown(self, node):
        if not node.host_keys:
            return "not pinned"
        return hostkeys.fingerprints(node.host_keys)[0]

    @admin.display(description="pinned fingerprints")
    def host_key_fingerprints(self, node):
        shown = hostkeys.fingerprints(node.host_keys) if node.host_keys else []
        if not shown:
            return "not pinned: read and pinned when the first job connects"
        return format_html_join("", "<div><code>{}</code></div>", ((f,) for f in shown))

    # --- writes go through the actions (masters closed, who pinned recorded) --------------

    def save_model(self, request, obj, form, change):
        if change:
            actions.do_update_node(
                Node.objects.get(pk=obj.pk), by=request.user, **changes_of(form, obj)
            )
        else:
            actions.do_add_node(obj, by=request.user)

    def delete_model(self, request, obj):
        actions.do_delete_node(obj)

    def delete_queryset(self, request, queryset):
        for node in queryset:
            actions.do_delete_node(node)

    # --- accept a new host key: list action and a button on the node's page ---------------

    @admin.action(
        description="Accept new host key (read it now and pin it)", permissions=["change"]
    )
    def accept_new_host_key(self, request, queryset):
        for node in queryset.select_related("credential", "jump_host__credential"):
            self._accept(request, node)

    def _accept(self, request, node) -> None:
        try:
            actions.do_accept_host_key(node, by=request.user)
        except PortalError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        self.message_user(
            request,
            f"{node.name}: host key accepted and pinned: "
            + ", ".join(hostkeys.fingerprints(node.host_keys)),
            messages.SUCCESS,
        )

    def get_urls(self):
        extra = [
            path(
                "<path:object_id>/accept-host-key/",
                self.admin_site.admin_view(self.accept_host_key_view),
                name="nodes_node_accept_host_key",
            )
        ]
        return extra + super().get_urls()

    def accept_host_key_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        node = get_object_or_404(
            Node.objects.select_related("credential", "jump_host"), pk=object_id
        )
        if not self.has_change_permission(request, node):
            raise PermissionDenied
        self._accept(request, node)
        return HttpResponseRedirect(reverse("admin:nodes_node_change", args=[node.pk]))
