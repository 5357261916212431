"""Transitions are guarded updates: only one caller wins each move."""

from datetime import timedelta

import pytest
from django.utils import timezone

from portal.jobs.choices import TERMINAL, JobStatus
from portal.jobs.models import Job

pytestmark = pytest.mark.django_db


def _job(**fields):
    return Job.objects.create(
        playbook="ping.yml",
        action="jobs.adhoc",
        queue="default",
        timeout=60,
        idle_timeout=60,
        **fields,
    )


def test_claim_is_won_once():
    job = _job()
    other_copy = Job.objects.get(pk=job.pk)
    assert job.claim("worker-a") is True
    assert other_copy.claim("worker-b") is False
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.worker == "worker-a"
    assert job.started_at and job.heartbeat_at


def test_finish_only_from_running():
    job = _job()
    assert job.finish(JobStatus.SUCCESSFUL, rc=0) is False
    job.claim("w")
    assert job.finish(JobStatus.FAILED, rc=2, reason="x") is True
    assert job.finish(JobStatus.SUCCESSFUL, rc=0) is False
    job.refresh_from_db()
    assert (job.status, job.rc) == (JobStatus.FAILED, 2) and job.finished_at


def test_dispatch_only_from_pending_and_claim_from_dispatched():
    job = _job()
    assert job.mark_dispatched() and not job.mark_dispatched()
    assert job.claim("w")


def test_lost_needs_a_stale_heartbeat():
    job = _job()
    job.claim("w")
    assert job.mark_lost(timezone.now() - timedelta(seconds=60)) is False
    assert job.mark_lost(timezone.now() + timedelta(seconds=1)) is True
    assert job.status == JobStatus.LOST and "stopped reporting" in job.reason


def test_cancel_before_start_and_terminal_set():
    job = _job()
    assert job.cancel_before_start("by test")
    assert job.status == JobStatus.CANCELED and job.status in TERMINAL
    assert not job.claim("w")
