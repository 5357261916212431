from rest_framework import viewsets

from portal.core.tenancy import IsAdmin, IsOperator
from portal.nodes import actions
from portal.nodes.api import serializers
from portal.nodes.models import Credential, Node, NodeGroup


class NodeViewSet(viewsets.ModelViewSet):
    """Nodes: the machines jobs run on (workspace hosts, lab servers, fleet hosts, Proxmox
    nodes), how to reach them and their pinned host keys. Operators and admins only."""

    queryset = Node.objects.select_related("group", "credential", "jump_host")
    serializer_class = serializers.NodeSerializer
    permission_classes = [IsOperator]
    filterset_fields = ["purpose", "enabled", "group__name"]
    search_fields = ["name", "address"]
    ordering_fields = ["name", "created_at"]

    def perform_create(self, serializer):
        serializer.instance = actions.do_create_node(
            by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = actions.do_update_node(
            serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        actions.do_delete_node(instance)


class NodeGroupViewSet(viewsets.ModelViewSet):
    """Node groups: nodes that share a job queue (a site). Operators and admins only."""

    queryset = NodeGroup.objects.all()
    serializer_class = serializers.NodeGroupSerializer
    permission_classes = [IsOperator]
    search_fields = ["name"]

    def perform_create(self, serializer):
        serializer.instance = actions.do_create_group(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = actions.do_update_group(
            serializer.instance, **serializer.validated_data
        )


class CredentialViewSet(viewsets.ModelViewSet):
    """Only admins handle credentials; secrets go in and never come back out."""

    queryset = Credential.objects.defer("secret")  # lists never decrypt
    serializer_class = serializers.CredentialSerializer
    permission_classes = [IsAdmin]
    search_fields = ["name"]

    def perform_create(self, serializer):
        serializer.instance = actions.do_create_credential(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = actions.do_update_credential(
            serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        actions.do_delete_credential(instance)
