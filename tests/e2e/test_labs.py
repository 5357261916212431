"""Labs on a real lab server over SSH: provision, failure, server down and back, expiry."""

import subprocess
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from portal.jobs import actions as jobs
from portal.labs import actions
from portal.labs.choices import SessionStatus as S
from portal.labs.models import Lab, LabSession
from tests.factories import UserFactory
from tests.helpers import run_due_jobs, stubbed_broker
from tests.waiting import wait_for

EXAMPLE = "/opt/portal-labs/example"


@pytest.fixture
def lab_server(test_hosts, portal_nodes, transactional_db, settings, tmp_path):
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.JOB_CONNECT_TIMEOUT = 3
    settings.LAB_RETRY_BASE_SECONDS = 0.5
    settings.LAB_RETRY_MAX_SECONDS = 1
    node = portal_nodes[1]
    node.purpose = "lab_server"
    node.save()
    host = test_hosts[node.name]
    with stubbed_broker():
        install = jobs.launch(playbook="lab_example_install.yml", nodes=[node])
    jobs.execute(install.pk, install.signature, worker="e2e")
    install.refresh_from_db()
    assert install.status == "successful", "\n".join(
        install.events.values_list("stdout", flat=True)
    )
    return node, host


def make_lab(node, script="provision.sh") -> Lab:
    return Lab.objects.create(
        name=f"example-{script}",
        server=node,
        provision_script_path=f"{EXAMPLE}/{script}",
        cleanup_script_path=f"{EXAMPLE}/cleanup.sh",
    )


def assign(lab, user):
    with stubbed_broker():
        session, _ = actions.do_assign(lab, user)
    return session


@contextmanager
def server_offline(host):
    """Take the host's link on the test bridge down: SSH to it times out."""
    link = f"vb-{host.name}"[:15]
    subprocess.run(["ip", "link", "set", link, "down"], check=True)
    try:
        yield
    finally:
        subprocess.run(["ip", "link", "set", link, "up"], check=True)


def test_assign_provisions_the_session_on_the_server(lab_server):
    node, host = lab_server
    session = assign(make_lab(node), UserFactory(username="alice"))
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.ACTIVE, session.last_error
    assert host.run(f"id -u {session.namespace}").returncode == 0
    readme = host.run(f"cat /srv/labs/{session.namespace}/README").stdout
    assert f"Lab session {session.namespace} for alice" in readme


def test_failing_script_leaves_the_session_failed_with_its_output(lab_server):
    node, _ = lab_server
    session = assign(make_lab(node, "fail.sh"), UserFactory())
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.FAILED and session.last_rc == 3
    assert "out of licences" in session.last_output


def test_server_down_waits_then_provisions_when_it_is_back(lab_server):
    node, host = lab_server
    lab = make_lab(node)
    with server_offline(host):
        session = assign(lab, UserFactory())
        run_due_jobs(max_rounds=1)
        session.refresh_from_db()
        assert session.status == S.REQUESTED and session.waiting_for_server
    host_ready = host.run("true", timeout=30)
    assert host_ready.returncode == 0

    def provisioned() -> bool:
        run_due_jobs()  # the retry waits for its backoff (not_before) to pass
        session.refresh_from_db()
        return session.status == S.ACTIVE

    wait_for(
        provisioned,
        60,
        interval=0.5,
        message=lambda: f"the session to be provisioned: {session.last_error}",
    )
    assert host.run(f"id -u {session.namespace}").returncode == 0


def test_expiry_runs_cleanup_on_the_server(lab_server):
    node, host = lab_server
    session = assign(make_lab(node), UserFactory())
    run_due_jobs()
    LabSession.objects.filter(pk=session.pk).update(
        access_start=timezone.now() - timedelta(hours=1),
        access_expiry=timezone.now() - timedelta(seconds=1),
    )
    assert actions.tick()["expired"] == 1
    run_due_jobs()
    session.refresh_from_db()
    assert session.status == S.EXPIRED
    assert host.run(f"id -u {session.namespace}").returncode != 0
    assert host.run(f"test -e /srv/labs/{session.namespace}").returncode != 0
