from typing import Any

from django.contrib.auth import get_user_model
from rest_framework import serializers

from portal.accounts import selectors
from portal.accounts.choices import InvitationStatus
from portal.accounts.models import Customer, Invitation, Membership, Plan
from portal.core.api.fields import LowercaseEmailField, StrictCharField, StrictStringsMixin
from portal.core.api.writable import RefuseUnwritableFieldsMixin
from portal.core.tenancy import MembershipRole

MAX_ID = 2**63 - 1


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = [
            "id",
            "tier",
            "name",
            "workspace_limit",
            "disk_quota_gb",
            "cpu_limit",
            "memory_limit_mb",
            "monthly_price",
        ]


class CustomerSerializer(
    RefuseUnwritableFieldsMixin, StrictStringsMixin, serializers.ModelSerializer
):
    """A customer as its members see it; owners may change `name` and `company` (sending
    another field is a 400 naming it)."""

    # Fields declared here are not covered by ``Meta.read_only_fields``: they say read_only
    # themselves, and sending one is a 400 naming it (RefuseUnwritableFieldsMixin).

    plan: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="tier", read_only=True
    )
    email = LowercaseEmailField(max_length=254, read_only=True)
    role = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "email",
            "company",
            "plan",
            "billing_status",
            "monthly_fee",
            "role",
            "created_at",
        ]
        read_only_fields = ["email", "plan", "billing_status", "monthly_fee", "created_at"]

    def get_role(self, customer) -> str | None:
        user = self.context["request"].user
        if user.is_staff:
            return "admin"
        roles = {m.user_id: m.role for m in customer.memberships.all()}
        return roles.get(user.pk)


class CustomerAdminSerializer(CustomerSerializer):
    """A customer as admins see and set it: every field (the email is unique)."""

    # The unique email is checked here and again by the action.

    plan = serializers.SlugRelatedField(slug_field="tier", queryset=Plan.objects.all())
    email = LowercaseEmailField(max_length=254)

    class Meta(CustomerSerializer.Meta):
        read_only_fields = ["created_at"]

    def validate_email(self, value):
        exclude_pk = self.instance.pk if self.instance is not None else None
        if selectors.customer_email_taken(value, exclude_pk=exclude_pk):
            raise serializers.ValidationError(
                "A customer with this email already exists.", code="unique"
            )
        return value


class MembershipSerializer(
    RefuseUnwritableFieldsMixin, StrictStringsMixin, serializers.ModelSerializer
):
    """Members are listed to everyone of the customer; only admins add one directly
    (owners invite: /api/invitations/)."""

    user = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.all()
    )
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())
    role = serializers.ChoiceField(choices=MembershipRole.choices)

    class Meta:
        model = Membership
        fields = ["id", "customer", "user", "role", "created_at"]
        read_only_fields = ["created_at"]
        validators: list[Any] = []  # uniqueness is the action's job (409, not 400)


class MeSerializer(serializers.ModelSerializer):
    memberships = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "first_name", "last_name", "is_staff", "memberships"]

    def get_memberships(self, user) -> list[dict]:
        return [
            {"customer": m.customer_id, "customer_name": m.customer.name, "role": m.role}
            for m in user.memberships.select_related("customer")
        ]


class InvitationSerializer(
    RefuseUnwritableFieldsMixin, StrictStringsMixin, serializers.ModelSerializer
):
    """An invitation as its customer's owners and admins see it (never its token)."""

    customer = serializers.IntegerField(
        source="customer_id", min_value=1, max_value=MAX_ID, help_text="Id of a customer you own."
    )
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    email = LowercaseEmailField(max_length=254, help_text="Where the invitation is sent.")
    role = serializers.ChoiceField(choices=MembershipRole.choices)
    status = serializers.ChoiceField(
        source="current_status",
        choices=InvitationStatus.choices,
        read_only=True,
        help_text="A pending invitation past expires_at is expired.",
    )
    invited_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    accepted_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = Invitation
        fields = [
            "id",
            "customer",
            "customer_name",
            "email",
            "role",
            "status",
            "invited_by",
            "expires_at",
            "accepted_by",
            "accepted_at",
            "revoked_at",
            "created_at",
        ]
        read_only_fields = ["expires_at", "accepted_at", "revoked_at", "created_at"]


class AcceptInvitationSerializer(serializers.Serializer):
    """Signed in: the token alone. Not signed in: also the new account's username and
    password (ignored when signed in)."""

    token = StrictCharField(max_length=200, trim_whitespace=True)
    username = StrictCharField(max_length=150, required=False, allow_blank=True)
    password = StrictCharField(
        max_length=4096,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        write_only=True,
        style={"input_type": "password"},
    )


class AcceptedSerializer(serializers.Serializer):
    customer = serializers.IntegerField()
    customer_name = serializers.CharField()
    role = serializers.ChoiceField(choices=MembershipRole.choices)
    username = serializers.CharField()

    @staticmethod
    def row(membership) -> dict:
        return {
            "customer": membership.customer_id,
            "customer_name": membership.customer.name,
            "role": membership.role,
            "username": membership.user.get_username(),
        }
