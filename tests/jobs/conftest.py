from pathlib import Path

import pytest

from portal.jobs import registry
from portal.nodes.choices import Connection
from tests.factories import NodeFactory

PLAYBOOKS = Path(__file__).parent / "playbooks"
FINISHED: list = []  # (job id, status) seen by the test action's result handler


def record_finish(job):
    FINISHED.append((job.pk, job.status))


registry.register(
    registry.ActionSpec(
        name="tests.recorded",
        on_finish=record_finish,
        sensitive_vars=("api_password",),
    )
)
registry.register(
    registry.ActionSpec(
        name="tests.retried",
        on_finish=record_finish,
        retry=registry.RetryPolicy(max_attempts=3, base_delay=1, max_delay=2),
    )
)


@pytest.fixture(autouse=True)
def test_playbooks(settings, tmp_path):
    settings.PLAYBOOKS_DIR = PLAYBOOKS
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    FINISHED.clear()


@pytest.fixture
def local_node(db):
    return NodeFactory(
        name="local-1", connection=Connection.LOCAL, credential=None, address="127.0.0.1"
    )
