import django_filters

from portal.core.api.filters import CustomerIdFilter, NodeIdFilter
from portal.workspaces.models import Workspace


class WorkspaceFilter(django_filters.FilterSet):
    customer = CustomerIdFilter()
    node = NodeIdFilter()

    class Meta:
        model = Workspace
        fields = ["status", "customer", "node"]
