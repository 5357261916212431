import django_filters

from portal.core.api.filters import IdFilter
from portal.labs import selectors
from portal.labs.models import Lab, LabSession


class LabFilter(django_filters.FilterSet):
    server = IdFilter(field_name="server_id", help_text="Node id.")

    class Meta:
        model = Lab
        fields = ["enabled", "allow_concurrent_sessions", "server"]


class LabSessionFilter(django_filters.FilterSet):
    lab = IdFilter(field_name="lab_id")
    user = django_filters.CharFilter(field_name="user__username", help_text="Username.")
    live = django_filters.BooleanFilter(
        method="filter_live", help_text="Requested, provisioning or active."
    )

    class Meta:
        model = LabSession
        fields = ["status", "lab", "user", "waiting_for_server", "live"]

    def filter_live(self, queryset, name, value):
        return selectors.live_or_not(queryset, live=value)
