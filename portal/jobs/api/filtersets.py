import django_filters

from portal.core.api.filters import CustomerIdFilter
from portal.jobs.models import Job


class JobFilter(django_filters.FilterSet):
    customer = CustomerIdFilter()

    class Meta:
        model = Job
        fields = ["status", "playbook", "action", "customer", "queue"]
