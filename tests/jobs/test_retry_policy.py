"""The engine's retry policy hooks: which hosts a policy retries, and secrets forgotten once
no retry may need them (ActionSpec.forget_secrets)."""

import pytest

from portal.jobs import actions, registry
from portal.jobs.choices import JobStatus
from portal.jobs.models import Job
from tests.factories import NodeFactory
from tests.helpers import stubbed_broker

pytestmark = pytest.mark.django_db
RETRIED_HOSTS: list[list[str]] = []
SECRET = "s3cret"


def hosts_marked_retryable(job):
    """The hosts the (pretend) playbook said to retry: those named in its extra vars."""
    return sorted(job.extra_vars.get("retry_hosts", []))


registry.register(
    registry.ActionSpec(
        name="tests.own_retry_hosts",
        sensitive_vars=("api_password",),
        retry=registry.RetryPolicy(max_attempts=2, base_delay=3, hosts=hosts_marked_retryable),
        on_retry=lambda job, retry: RETRIED_HOSTS.append(retry.limit.split(",")),
        forget_secrets=True,
    )
)
registry.register(
    registry.ActionSpec(
        name="tests.default_retry_hosts",
        retry=registry.RetryPolicy(max_attempts=2, base_delay=3),
    )
)


def failed_job(action, nodes, summary, extra_vars=None, attempt=1, secret=SECRET):
    with stubbed_broker():
        job = actions.launch(
            playbook="ping.yml",
            action=action,
            nodes=nodes,
            extra_vars={**(extra_vars or {}), **({"api_password": secret} if secret else {})},
        )
    Job.objects.filter(pk=job.pk).update(
        status=JobStatus.FAILED, host_summary=summary, attempt=attempt
    )
    job.refresh_from_db()
    return job


def test_a_policy_names_its_own_hosts_and_the_retry_runs_on_those_only():
    RETRIED_HOSTS.clear()
    nodes = [NodeFactory(name=name) for name in ("a-1", "a-2", "a-3")]
    summary = {"a-1": {"failures": 1}, "a-2": {"failures": 1}, "a-3": {"ok": 3}}
    job = failed_job("tests.own_retry_hosts", nodes, summary, {"retry_hosts": ["a-2"]})
    with stubbed_broker():
        retry = actions.finalize(job)
    assert retry is not None and retry.limit == "a-2" and retry.attempt == 2
    assert retry.retry_of_id == job.pk
    assert (retry.not_before - retry.created_at).total_seconds() == pytest.approx(3, abs=1)
    assert RETRIED_HOSTS == [["a-2"]]
    assert retry.secrets() == {"api_password": "s3cret"}  # the retry carries its own copy
    assert (retry.timeout, retry.idle_timeout) == (job.timeout, job.idle_timeout)


def test_nothing_named_means_no_retry():
    node = NodeFactory(name="b-1")
    job = failed_job("tests.own_retry_hosts", [node], {"b-1": {"unreachable": 1}})
    with stubbed_broker():
        assert actions.finalize(job) is None


def test_the_default_still_retries_only_unreachable_hosts_when_nothing_failed():
    nodes = [NodeFactory(name="c-1"), NodeFactory(name="c-2")]
    job = failed_job(
        "tests.default_retry_hosts", nodes, {"c-1": {"unreachable": 1}, "c-2": {"ok": 1}}
    )
    with stubbed_broker():
        assert actions.finalize(job).limit == "c-1"
    failing = failed_job(
        "tests.default_retry_hosts", nodes, {"c-1": {"unreachable": 1}, "c-2": {"failures": 1}}
    )
    with stubbed_broker():
        assert actions.finalize(failing) is None


def test_secrets_are_forgotten_when_the_run_is_over_retried_or_not():
    node = NodeFactory(name="d-1")
    job = failed_job(
        "tests.own_retry_hosts", [node], {"d-1": {"failures": 1}}, {"retry_hosts": ["d-1"]}
    )
    with stubbed_broker():
        retry = actions.finalize(job)
    job.refresh_from_db()
    assert job.secret_vars == "" and retry.secrets() == {"api_password": "s3cret"}
    Job.objects.filter(pk=retry.pk).update(
        status=JobStatus.FAILED, host_summary={"d-1": {"failures": 1}}
    )
    retry.refresh_from_db()
    with stubbed_broker():
        assert actions.finalize(retry) is None  # attempt 2 of 2: the last one
    retry.refresh_from_db()
    assert retry.secret_vars == "" and retry.secrets() == {}


def test_without_forget_secrets_they_stay():
    node = NodeFactory(name="e-1")
    job = failed_job("tests.default_retry_hosts", [node], {"e-1": {"failures": 1}}, secret="")
    with stubbed_broker():
        actions.finalize(job)
    recorded = failed_job("tests.recorded", [node], {"e-1": {"ok": 1}})
    with stubbed_broker():
        actions.finalize(recorded)
    recorded.refresh_from_db()
    assert recorded.secrets() == {"api_password": "s3cret"}
