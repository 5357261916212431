"""The suite's one broker stub (tests/helpers.py stubbed_broker, the `broker` fixture)."""

import pytest

from portal.jobs.tasks import reap_lost, run_job
from tests.helpers import stubbed_broker


def test_records_every_task_published_and_sends_nothing(broker):
    run_job.apply_async(args=[7, "sig"], queue="default")
    reap_lost.delay()  # .delay goes through apply_async too
    assert broker.published() == [("jobs.run", [7, "sig"]), ("jobs.reap_lost", [])]
    assert broker.publish.call_args_list[0].kwargs["queue"] == "default"


def test_a_broker_that_is_down_raises_and_stubs_nest(broker):
    with (
        stubbed_broker(side_effect=ConnectionError("broker down")) as down,
        pytest.raises(ConnectionError),
    ):
        run_job.apply_async(args=[1, "sig"])
    assert down.published() == [("jobs.run", [1, "sig"])]
    run_job.apply_async(args=[2, "sig"])  # the outer stub is back
    assert broker.published() == [("jobs.run", [2, "sig"])]
