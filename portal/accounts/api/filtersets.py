import django_filters

from portal.accounts import selectors
from portal.accounts.choices import InvitationStatus
from portal.accounts.models import Invitation, Membership
from portal.core.api.filters import CustomerIdFilter


class MembershipFilter(django_filters.FilterSet):
    customer = CustomerIdFilter()

    class Meta:
        model = Membership
        fields = ["customer", "role"]


class InvitationFilter(django_filters.FilterSet):
    customer = CustomerIdFilter()
    status = django_filters.ChoiceFilter(
        choices=InvitationStatus.choices,
        method="filter_status",
        help_text="A pending invitation past its expiry is expired.",
    )
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")

    class Meta:
        model = Invitation
        fields = ["customer", "status", "email", "role"]

    def filter_status(self, queryset, name, value):
        return selectors.invitations_in_status(queryset, value)
