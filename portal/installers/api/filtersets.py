import django_filters

from portal.core.api.filters import NodeIdFilter
from portal.installers.choices import InstallationStatus
from portal.installers.models import Installation


class InstallationFilter(django_filters.FilterSet):
    # Ids only, never checked for existence: an id the caller cannot see and one that does
    # not exist both give an empty page (portal/core/api/filters.py).
    node = NodeIdFilter()
    installer = django_filters.CharFilter(
        field_name="installer_id", max_length=64, help_text="An installer's id."
    )
    status = django_filters.ChoiceFilter(choices=InstallationStatus.choices)

    class Meta:
        model = Installation
        fields = ["node", "installer", "status"]
