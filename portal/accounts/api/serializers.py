from django.contrib.auth import get_user_model
from rest_framework import serializers

from portal.accounts.models import Customer, Membership, Plan
from portal.core.api.fields import LowercaseEmailField


class PlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["id", "tier", "name", "workspace_limit", "disk_quota_gb", "cpu_limit",
                  "memory_limit_mb", "monthly_price"]


class CustomerSerializer(serializers.ModelSerializer):
    """What members see and owners may change (name, company)."""

    plan = serializers.SlugRelatedField(slug_field="tier", queryset=Plan.objects.all())
    email = LowercaseEmailField(max_length=254)
    role = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = ["id", "name", "email", "company", "plan", "billing_status", "monthly_fee",
                  "role", "created_at"]
        read_only_fields = ["email", "plan", "billing_status", "monthly_fee", "created_at"]

    def get_role(self, customer) -> str | None:
        user = self.context["request"].user
        if user.is_staff:
            return "admin"
        roles = {m.user_id: m.role for m in customer.memberships.all()}
        return roles.get(user.pk)


class CustomerAdminSerializer(CustomerSerializer):
    """Admins set everything; the unique email is checked here and again by the action."""

    class Meta(CustomerSerializer.Meta):
        read_only_fields = ["created_at"]

    def validate_email(self, value):
        clash = Customer.objects.filter(email=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                "A customer with this email already exists.", code="unique"
            )
        return value


class MembershipSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=get_user_model().objects.all()
    )
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.all())

    class Meta:
        model = Membership
        fields = ["id", "customer", "user", "role", "created_at"]
        read_only_fields = ["created_at"]
        validators = []  # uniqueness is the action's job (409, not 400)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            # Only customers the user may change can receive new members.
            self.fields["customer"].queryset = Customer.objects.changeable_by(request.user)


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
