from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response

from portal.accounts import actions, selectors
from portal.accounts.api import serializers
from portal.accounts.api.filtersets import InvitationFilter, MembershipFilter
from portal.accounts.models import Invitation, Membership, Plan
from portal.core.tenancy import (
    CustomerObjectPermission,
    CustomerScopedQuerysetMixin,
    IsAdmin,
    ReadOnlyOrAdmin,
    is_admin,
)


class PlanViewSet(viewsets.ReadOnlyModelViewSet):
    """Plans: what each tier includes (workspaces, disk, CPU, memory) and costs. Everyone
    signed in reads them; admins change them in the admin."""

    queryset = Plan.objects.all()
    serializer_class = serializers.PlanSerializer
    permission_classes = [ReadOnlyOrAdmin]


class CustomerViewSet(CustomerScopedQuerysetMixin, viewsets.ModelViewSet):
    """Customers: members see their own customers; owners change `name` and `company`;
    admins see all, create, change everything and delete. Others' customers are 404."""

    queryset = selectors.customers_with_roles()
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


class MembershipViewSet(
    CustomerScopedQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Memberships: who belongs to a customer, as owner or member. Everyone of the customer
    sees them; owners remove members (not the last owner); adding an existing account
    directly is for admins (owners invite: /api/invitations/)."""

    queryset = Membership.objects.select_related("user", "customer")
    serializer_class = serializers.MembershipSerializer
    permission_classes = [CustomerObjectPermission]
    filterset_class = MembershipFilter

    def get_permissions(self):
        # Owners invite (/api/invitations/): adding an existing account directly would add
        # someone without their consent. Admins still may.
        if self.action == "create":
            return [IsAdmin()]
        return super().get_permissions()

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = actions.do_add_member(data["customer"], data["user"], data["role"])

    def perform_destroy(self, instance):
        actions.do_remove_member(instance)


class InvitationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Invitations to a customer: its owners and admins invite, list and revoke; the
    invited person accepts with the emailed token. Members see none."""

    queryset = Invitation.objects.select_related("customer", "invited_by", "accepted_by")
    serializer_class = serializers.InvitationSerializer
    filterset_class = InvitationFilter
    search_fields = ["email"]
    ordering_fields = ["created_at", "expires_at", "email"]

    def get_queryset(self):
        return super().get_queryset().changeable_by(self.request.user)

    def get_permissions(self):
        if self.action == "accept":
            return [permissions.AllowAny()]
        return super().get_permissions()

    def get_serializer_class(self):
        if self.action == "accept":
            return serializers.AcceptInvitationSerializer
        return serializers.InvitationSerializer

    @extend_schema(
        request=serializers.InvitationSerializer, responses={201: serializers.InvitationSerializer}
    )
    def create(self, request, *args, **kwargs):
        """Invite an email address (the answer is the same whether it has an account)."""
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        customer = actions.check_can_invite(request.user, data["customer_id"])
        invitation = actions.do_invite(
            customer,
            data["email"],
            data["role"],
            by=request.user,
            base_url=request.build_absolute_uri("/"),
        )
        return Response(self.get_serializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: serializers.InvitationSerializer})
    @action(detail=True, methods=["post"], filter_backends=[])
    def revoke(self, request, pk=None):
        """Revoke a pending invitation (409 if it is not pending)."""
        invitation = actions.do_revoke_invitation(self.get_object(), by=request.user)
        return Response(serializers.InvitationSerializer(invitation).data)

    @extend_schema(
        request=serializers.AcceptInvitationSerializer,
        responses={200: serializers.AcceptedSerializer},
    )
    @action(detail=False, methods=["post"], filter_backends=[], pagination_class=None)
    def accept(self, request):
        """Accept with the emailed token: signed in, as yourself; otherwise give a username
        and password to create your account."""
        form = serializers.AcceptInvitationSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        user = request.user if request.user.is_authenticated else None
        membership = actions.do_accept_invitation(
            data["token"],
            user,
            username=data.get("username", "").strip(),
            password=data.get("password", ""),
        )
        return Response(serializers.AcceptedSerializer.row(membership))


@extend_schema(responses=serializers.MeSerializer)
@api_view(["GET"])
def me_view(request):
    """The signed-in user and the customers they belong to."""
    return Response(serializers.MeSerializer(request.user).data)
