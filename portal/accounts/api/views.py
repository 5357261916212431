import django_filters
from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from portal.accounts import actions
from portal.accounts.api import serializers
from portal.accounts.models import Customer, Membership, Plan
from portal.core.api.filters import CustomerIdFilter
from portal.core.tenancy import (
    CustomerObjectPermission,
    CustomerScopedQuerysetMixin,
    IsAdmin,
    ReadOnlyOrAdmin,
    is_admin,
)


class PlanViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Plan.objects.all()
    serializer_class = serializers.PlanSerializer
    permission_classes = [ReadOnlyOrAdmin]
    pagination_class = None


class CustomerViewSet(CustomerScopedQuerysetMixin, viewsets.ModelViewSet):
    queryset = Customer.objects.select_related("plan").prefetch_related(
        Prefetch("memberships", queryset=Membership.objects.only("id", "user_id", "role",
                                                                 "customer_id"))
    )
    filterset_fields = ["billing_status", "plan__tier"]
    search_fields = ["name", "email", "company"]
    ordering_fields = ["name", "created_at", "monthly_fee"]

    def get_permissions(self):
        if self.action in ("create", "destroy"):
            return [IsAdmin()]
        return [CustomerObjectPermission()]

    def get_serializer_class(self):
        if is_admin(self.request.user):
            return serializers.CustomerAdminSerializer
        return serializers.CustomerSerializer

    def perform_create(self, serializer):
        serializer.instance = actions.do_create_customer(**serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = actions.do_update_customer(
            serializer.instance, **serializer.validated_data
        )


class MembershipFilter(django_filters.FilterSet):
    customer = CustomerIdFilter()

    class Meta:
        model = Membership
        fields = ["customer", "role"]


class MembershipViewSet(
    CustomerScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Membership.objects.select_related("user", "customer")
    serializer_class = serializers.MembershipSerializer
    permission_classes = [CustomerObjectPermission]
    filterset_class = MembershipFilter

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = actions.do_add_member(data["customer"], data["user"], data["role"])

    def perform_destroy(self, instance):
        actions.do_remove_member(instance)


@extend_schema(responses=serializers.MeSerializer)
@api_view(["GET"])
def me_view(request):
    """The signed-in user and the customers they belong to."""
    return Response(serializers.MeSerializer(request.user).data)
