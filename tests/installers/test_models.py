"""Installation's status machine and its one-live-installation-per-node rule."""

import itertools

import pytest
from django.db import IntegrityError, transaction

from portal.core.status import TransitionNotAllowed
from portal.installers.choices import InstallationStatus as S
from portal.installers.models import ENDED, Installation, InstallationEvent
from tests.factories import NodeFactory

pytestmark = pytest.mark.django_db

ALL = list(S)
ALLOWED = {(source, to) for source, targets in Installation.TRANSITIONS.items() for to in targets}


def installation(status=S.PENDING, node=None, installer_id="nginx"):
    return Installation.objects.create(
        node=node or NodeFactory(),
        installer_id=installer_id,
        version="1.0.0",
        manifest_sha256="0" * 64,
        status=status,
    )


@pytest.mark.parametrize(("source", "to"), sorted(ALLOWED))
def test_every_declared_move_succeeds_and_is_recorded(source, to):
    row = installation(source)
    assert row.move(to, reason=f"to {to}")
    row.refresh_from_db()
    assert (row.status, row.reason) == (to, f"to {to}")
    event = InstallationEvent.objects.get(installation=row)
    assert (event.from_status, event.status, event.reason) == (source, to, f"to {to}")


@pytest.mark.parametrize(
    ("source", "to"),
    [(a, b) for a, b in itertools.product(ALL, ALL) if (a, b) not in ALLOWED],
)
def test_every_other_move_is_refused(source, to):
    row = installation(source)
    with pytest.raises(TransitionNotAllowed):
        row.move(to)
    row.refresh_from_db()
    assert row.status == source
    assert not InstallationEvent.objects.exists()


def test_the_contract_paths_exist():
    assert {S.INSTALLED, S.FAILED, S.REJECTED, S.NEEDS_OPERATOR} <= set(
        Installation.TRANSITIONS[S.INSTALLING]
    )
    for retried in (S.FAILED, S.NEEDS_OPERATOR, S.INSTALLED):
        assert S.INSTALLING in Installation.TRANSITIONS[retried]
    assert Installation.TERMINAL == ENDED == {S.UNINSTALLED, S.REJECTED}


def test_one_live_installation_per_node_and_installer():
    node = NodeFactory()
    installation(S.INSTALLED, node)
    with pytest.raises(IntegrityError), transaction.atomic():
        installation(S.PENDING, node)
    installation(S.PENDING, node, installer_id="redis")  # another installer: fine
    installation(S.PENDING, NodeFactory())  # another node: fine


@pytest.mark.parametrize("ended", sorted(ENDED))
def test_an_ended_installation_leaves_room_for_a_new_one(ended):
    node = NodeFactory()
    installation(ended, node)
    installation(ended, node)
    assert installation(S.PENDING, node).status == S.PENDING
    assert Installation.objects.live().count() == 1
