"""Write-only secrets in the admin's forms (portal/core/admin.py, WriteOnlySecretsForm): the
stored secret is never rendered; left empty on an existing row it is kept; a new one
replaces it. One rule for every form that has one."""

import json

import pytest
from django.forms import model_to_dict

from portal.clusters.admin import ClusterNodeForm
from portal.fleet.admin import VMForm
from portal.monitoring.admin import NotificationChannelForm
from portal.monitoring.models import NotificationChannel
from portal.nodes.admin import CredentialForm
from tests.clusters.conftest import make_cluster
from tests.factories import CredentialFactory

pytestmark = pytest.mark.django_db


def cluster_node():
    node = make_cluster(count=1).nodes.get()
    node.bmc_password = "old-bmc-secret"
    node.save()
    return node


def channel():
    return NotificationChannel.objects.create(
        name="hook", kind="webhook", url="https://hooks.example/x", secret="old-hook-secret"
    )


def credential():
    return CredentialFactory(kind="password", secret="old-credential-secret")


def fleet_vm():
    from tests.fleet.api_helpers import customer, vm

    return vm(customer(), power_driver="test-host", power_password="old-power-secret")


CASES = [
    (VMForm, fleet_vm, "power_password"),
    (ClusterNodeForm, cluster_node, "bmc_password"),
    (NotificationChannelForm, channel, "secret"),
    (CredentialForm, credential, "secret"),
]


def form_for(form_class, row, **changes):
    data = {k: v for k, v in model_to_dict(row).items() if v is not None}
    for name, value in data.items():
        if isinstance(value, dict | list):  # a JSON field: the form takes its JSON text
            data[name] = json.dumps(value)
    data.update(changes)
    return form_class(data=data, instance=row)


@pytest.mark.parametrize(("form_class", "make", "field"), CASES)
def test_the_stored_secret_is_never_rendered(form_class, make, field):
    row = make()
    stored = getattr(row, field)
    assert stored not in str(form_class(instance=row))


@pytest.mark.parametrize(("form_class", "make", "field"), CASES)
def test_left_empty_it_keeps_the_stored_secret(form_class, make, field):
    row = make()
    stored = getattr(row, field)
    form = form_for(form_class, row, **{field: ""})
    assert form.is_valid(), form.errors
    form.save()
    row.refresh_from_db()
    assert getattr(row, field) == stored


@pytest.mark.parametrize(("form_class", "make", "field"), CASES)
def test_a_new_secret_replaces_it(form_class, make, field):
    row = make()
    form = form_for(form_class, row, **{field: "brand-new-secret"})
    assert form.is_valid(), form.errors
    form.save()
    row.refresh_from_db()
    assert getattr(row, field) == "brand-new-secret"
