from datetime import timedelta

import pytest

from portal.labs.models import Lab
from portal.nodes.choices import Connection, NodePurpose
from tests.factories import NodeFactory


@pytest.fixture
def lab_server(db):
    return NodeFactory(
        name="lab-local",
        connection=Connection.LOCAL,
        credential=None,
        address="127.0.0.1",
        purpose=NodePurpose.LAB_SERVER,
    )


@pytest.fixture
def lab(lab_server):
    return Lab.objects.create(
        name="intro",
        description="Intro to Linux",
        server=lab_server,
        provision_script_path="/opt/labs/intro/provision.sh",
        cleanup_script_path="/opt/labs/intro/cleanup.sh",
        default_duration=timedelta(hours=2),
    )
