"""portal/fleet/selectors.py: a VM's derived status and version, in Python and in SQL."""

import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.core.tenancy import remember_operator
from portal.fleet import selectors
from portal.fleet.choices import VMStatus
from portal.fleet.models import VM
from portal.monitoring.choices import Liveness
from tests.fleet.api_helpers import customer, member_of, vm

pytestmark = pytest.mark.django_db

LIVENESS = [None, *Liveness.values]


@pytest.mark.parametrize(
    ("maintenance", "failed", "liveness"),
    list(itertools.product([False, True], [False, True], LIVENESS)),
)
def test_python_and_sql_agree_on_every_combination(maintenance, failed, liveness):
    row = vm(customer(), maintenance=maintenance, last_action_failed=failed, liveness=liveness)
    annotated = selectors.vms_with_status(VM.objects.filter(pk=row.pk)).get()
    fresh = VM.objects.get(pk=row.pk)  # not annotated: the Python rule
    assert annotated.status == selectors.vm_status(fresh) == selectors.vm_status(annotated)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"maintenance": True, "last_action_failed": True, "liveness": "up"}, "maintenance"),
        ({"last_action_failed": True, "liveness": "up"}, "error"),
        ({"liveness": "up"}, "online"),
        ({"liveness": "late"}, "online"),
        ({"liveness": "down"}, "offline"),
        ({"liveness": "unknown"}, "offline"),
        ({}, "offline"),  # no agent at all
    ],
)
def test_the_status_rule(fields, expected):
    row = vm(customer(), **fields)
    assert selectors.vm_status(VM.objects.get(pk=row.pk)) == VMStatus(expected)


def test_version_is_what_the_heartbeat_reported():
    reported = vm(customer(), liveness="up", version="2.4.1")
    silent = vm(customer())
    rows = {r.pk: r for r in selectors.vms_with_status(VM.objects.all())}
    assert rows[reported.pk].version == "2.4.1"
    assert rows[silent.pk].version == ""
    assert rows[silent.pk].last_heartbeat is None
    assert rows[reported.pk].last_heartbeat is not None
    assert selectors.vm_version(VM.objects.get(pk=reported.pk)) == "2.4.1"


def test_a_list_is_one_query_whatever_its_length():
    owner = customer()
    for n in range(30):
        vm(owner, liveness="up" if n % 2 else None, version=f"1.{n}")
    user = member_of(owner)
    remember_operator(user, False)  # as the token authentication does, in its own query
    with CaptureQueriesContext(connection) as queries:
        rows = list(selectors.vm_rows(user))
        shown = [(r.status, r.version, r.node.name, r.customer.name) for r in rows]
    assert len(shown) == 30
    assert len(queries) == 1


def test_rows_filter_by_status_and_stay_within_the_users_customers():
    mine, theirs = customer(), customer()
    up = vm(mine, liveness="up")
    vm(mine, maintenance=True)
    vm(theirs, liveness="up")
    user = member_of(mine, role="member")
    assert [r.pk for r in selectors.vm_rows(user, status="online")] == [up.pk]
    assert len(selectors.vm_rows(user)) == 2


def test_customer_tier_maps_team_to_pro():
    team = customer("team")
    row = selectors.customer_rows(member_of(team)).get()
    assert row.fleet_tier == "pro" == selectors.fleet_tier("team")
