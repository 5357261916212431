"""The workspaces page in a real browser: Playwright driving Debian's chromium against a live
server. Login → create in the dialog → pending/provisioning → running → logs, password,
history → stop → stopped → delete → deleting → gone.

The machine side is simulated at the job boundary only: a thread acts as the worker and runs
due jobs through the real job engine (ansible-runner, events stored, result handlers), with
small local playbooks (tests/workspaces/playbooks) that report ``workspace_results`` like the
real ones, on a ``connection=local`` workspace node. The real-machine run (code-server behind
Traefik on test hosts) is in tests/e2e.
"""

import os
import re
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connections
from playwright.sync_api import expect

from portal.accounts.choices import DEFAULT_PLANS, PlanTier
from portal.accounts.models import Plan
from portal.jobs.models import Job
from portal.nodes.choices import Connection, NodePurpose
from portal.workspaces.choices import S
from portal.workspaces.models import Workspace
from tests.browser import PASSWORD, needs_chromium
from tests.factories import MembershipFactory, NodeFactory, UserFactory
from tests.helpers import run_due_jobs

PLAYBOOKS = Path(__file__).parent / "playbooks"
SLOW = 60_000  # ms: a job is a real ansible-playbook run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("broker"),
    needs_chromium,
]


class Worker(threading.Thread):
    """Stands in for the Celery worker: runs the due jobs while the test allows it."""

    def __init__(self):
        super().__init__(name="browser-test-worker", daemon=True)
        self.allowed = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self):
        try:
            while not self.stopping.is_set():
                if self.allowed.is_set():
                    run_due_jobs(worker="browser-test-worker")
                self.stopping.wait(0.1)
        except BaseException as error:  # reported by the test, not lost in the thread
            self.error = error
        finally:
            connections.close_all()

    def stop(self):
        self.stopping.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the worker thread did not stop"
        if self.error:
            raise self.error


@pytest.fixture
def worker(settings, tmp_path):
    settings.PLAYBOOKS_DIR = PLAYBOOKS
    settings.JOBS_WORK_DIR = tmp_path / "jobs"
    settings.TRAEFIK_API_URL = ""  # no Traefik here: a route counts as live at once
    cache.clear()
    thread = Worker()
    thread.start()
    yield thread
    thread.stop()


@pytest.fixture
def alice(transactional_db):
    node = NodeFactory(
        name="local-ws",
        connection=Connection.LOCAL,
        credential=None,
        address="127.0.0.1",
        purpose=NodePurpose.WORKSPACE_HOST,
        workspace_port_start=8001,
        workspace_port_end=8010,
    )
    # An earlier transactional test may have flushed the plans the data migration made.
    team, _ = Plan.objects.get_or_create(
        tier=PlanTier.TEAM, defaults={"name": "Team", **DEFAULT_PLANS[PlanTier.TEAM]}
    )
    user = UserFactory(username="alice")
    MembershipFactory(user=user, customer__plan=team)
    return user, node


@pytest.fixture
def page(browser_page):
    page, problems = browser_page
    yield page
    assert not problems, f"JavaScript errors or CSP violations on the page: {problems}"


def test_create_run_stop_and_delete_a_workspace_in_the_browser(page, alice, worker):
    user, node = alice

    # Log in: the workspaces are where a customer lands.
    page.goto("/workspaces/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/workspaces/$"))
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/workspaces/$"))
    expect(page.get_by_test_id("ws-empty")).to_be_visible()
    expect(page.get_by_test_id("nav-labs")).to_have_attribute("href", "/labs/")

    creates = []
    page.on(
        "request",
        lambda request: (
            creates.append(request.url)
            if (request.method == "POST" and request.url.endswith("/api/workspaces/"))
            else None
        ),
    )

    # The dialog shows the API's message next to the field it is about.
    page.get_by_test_id("ws-new").click()
    dialog = page.get_by_test_id("ws-create-dialog")
    expect(dialog).to_be_visible()
    page.get_by_test_id("ws-create-name").fill("My IDE")
    page.get_by_test_id("ws-create-slug").fill("Not A Slug!")
    page.get_by_test_id("ws-create-submit").click()
    expect(page.get_by_test_id("ws-create-error-slug")).to_contain_text("lower-case letters")
    expect(page.get_by_test_id("ws-create-slug")).to_have_attribute("aria-invalid", "true")
    expect(dialog).to_be_visible()
    assert not Workspace.objects.exists()

    # A double click creates one workspace, not two.
    page.get_by_test_id("ws-create-slug").fill("my-ide")
    page.get_by_test_id("ws-create-submit").dblclick()
    expect(dialog).to_be_hidden()
    card = page.locator('[data-testid="ws-card"][data-slug="my-ide"]')
    expect(card).to_be_visible()
    badge = card.get_by_test_id("ws-status")
    expect(badge).to_have_attribute("data-status", re.compile(r"^(pending|provisioning)$"))
    assert len(creates) == 2 and Workspace.objects.count() == 1  # the refused one, then one
    workspace = Workspace.objects.get()
    assert workspace.owner == user and workspace.node == node
    expect(card.get_by_test_id("ws-url")).to_have_text(workspace.url)
    expect(card.get_by_test_id("ws-address")).to_have_text(f"local-ws:{workspace.port}")
    expect(card.get_by_test_id("ws-limits")).to_contain_text(f"{workspace.disk_quota_gb} GB disk")
    expect(card.get_by_test_id("ws-open")).to_be_hidden()
    expect(card.get_by_test_id("ws-delete")).to_be_hidden()  # provisioning: not yet
    progress = card.get_by_test_id("ws-progress")
    expect(progress).to_be_visible()  # following the create job, waiting for a worker
    expect(card.get_by_test_id("ws-progress-bar")).to_have_attribute("aria-valuenow", "0")

    # The worker runs the create job: the bar fills from the job's event stream.
    worker.allowed.set()
    expect(badge).to_have_attribute("data-status", "running", timeout=SLOW)
    expect(badge).to_have_text("Running")
    expect(progress).to_have_attribute("data-job-status", "successful")
    expect(card.get_by_test_id("ws-progress-bar")).to_have_attribute("aria-valuenow", "100")
    create_job = Job.objects.get(playbook="workspace_create.yml")
    assert progress.get_attribute("data-job") == str(create_job.pk)
    tasks = create_job.events.filter(event="playbook_on_task_start").count()
    assert tasks >= 6
    expect(progress).to_have_attribute("data-tasks-started", str(tasks))  # every one counted
    expect(card.get_by_test_id("ws-progress-tasks")).to_contain_text(
        "local-ws · Report workspace results"
    )
    expect(card.get_by_test_id("ws-open")).to_be_visible()
    expect(card.get_by_test_id("ws-open")).to_have_attribute("href", workspace.url)
    expect(card.get_by_test_id("ws-reason")).to_contain_text("running at")
    expect(card.get_by_test_id("ws-usage")).to_contain_text(
        f"16.0 KB used (quota: {node.workspace_quota_backend})"
    )
    expect(card.get_by_test_id("ws-start")).to_be_hidden()

    # The password is fetched on click, never part of the page.
    workspace.refresh_from_db()
    assert workspace.password not in page.content()
    card.get_by_test_id("ws-password-reveal").click()
    expect(card.get_by_test_id("ws-password")).to_have_text(workspace.password)
    card.get_by_test_id("ws-password-hide").click()
    expect(card.get_by_test_id("ws-password-box")).to_be_hidden()
    assert workspace.password not in page.content()

    # Recent logs: a job, then its result.
    card.get_by_test_id("ws-logs-button").click()
    expect(card.get_by_test_id("ws-logs")).to_contain_text(
        "test journal of code-server-my-ide.service", timeout=SLOW
    )
    expect(card.get_by_test_id("ws-logs-status")).to_contain_text("Fetched")

    # History, newest first.
    card.get_by_test_id("ws-history").locator("summary").click()
    history = card.get_by_test_id("ws-history-list")
    expect(history).to_contain_text("created on local-ws")
    expect(history).to_contain_text("recent logs fetched")

    # Stop.
    card.get_by_test_id("ws-stop").click()
    expect(badge).to_have_attribute("data-status", "stopped", timeout=SLOW)
    expect(card.get_by_test_id("ws-start")).to_be_visible()
    expect(card.get_by_test_id("ws-stop")).to_be_hidden()
    expect(card.get_by_test_id("ws-open")).to_be_hidden()
    expect(progress).to_have_attribute("data-job-status", "successful")
    expect(card.get_by_test_id("ws-progress-label")).to_contain_text("stop")
    expect(history).to_contain_text("running → stopped")

    # Delete: confirm, see it go.
    worker.allowed.clear()
    card.get_by_test_id("ws-delete").click()
    expect(card.get_by_test_id("ws-delete-confirm-box")).to_be_visible()
    card.get_by_test_id("ws-delete-confirm").click()
    expect(badge).to_have_attribute("data-status", "deleting")
    worker.allowed.set()
    expect(card).to_have_count(0, timeout=SLOW)
    expect(page.get_by_test_id("ws-empty")).to_be_visible()
    workspace.refresh_from_db()
    assert workspace.status == S.DELETED and workspace.port is None
    assert list(Job.objects.order_by("id").values_list("playbook", "status")) == [
        ("workspace_create.yml", "successful"),
        ("workspace_control.yml", "successful"),
        ("workspace_control.yml", "successful"),
        ("workspace_delete.yml", "successful"),
    ]


@pytest.fixture
def unreachable(transactional_db):
    """A customer whose only workspace node cannot be reached (127.0.0.1 port 1: nothing
    listens), as in tests/workspaces/test_unreachable.py."""
    node = NodeFactory(
        name="ws-down",
        address="127.0.0.1",
        ssh_port=1,
        purpose=NodePurpose.WORKSPACE_HOST,
        workspace_port_start=8001,
        workspace_port_end=8010,
    )
    team, _ = Plan.objects.get_or_create(
        tier=PlanTier.TEAM, defaults={"name": "Team", **DEFAULT_PLANS[PlanTier.TEAM]}
    )
    user = UserFactory(username="uma")
    MembershipFactory(user=user, customer__plan=team)
    return user, node


def test_a_failed_workspace_is_explained_and_deleted_in_the_browser(
    page, unreachable, worker, settings
):
    """Created for real on a node that cannot be reached: the create job (the product
    playbook, retried once) fails, the card says so in words with a Delete button, and
    deleting it needs no job (nothing reached the node): the card goes."""
    user, node = unreachable
    settings.PLAYBOOKS_DIR = Path(django_settings.BASE_DIR) / "playbooks"
    settings.WORKSPACE_RETRY_MAX_ATTEMPTS = 2
    settings.WORKSPACE_RETRY_BASE_SECONDS = 0.1
    settings.WORKSPACE_RETRY_MAX_SECONDS = 0.2

    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/workspaces/$"))
    page.get_by_test_id("ws-new").click()
    page.get_by_test_id("ws-create-name").fill("Broken IDE")
    page.get_by_test_id("ws-create-submit").click()
    card = page.locator('[data-testid="ws-card"][data-slug="broken-ide"]')
    expect(card).to_be_visible()

    worker.allowed.set()
    badge = card.get_by_test_id("ws-status")
    expect(badge).to_have_attribute("data-status", "failed", timeout=SLOW)
    workspace = Workspace.objects.get()
    assert workspace.node == node and not workspace.on_node
    assert list(Job.objects.values_list("action", "status")) == [
        ("workspaces.create", "failed"),
        ("workspaces.create", "failed"),
    ]  # retried once
    help_text = card.get_by_test_id("ws-help")
    expect(help_text).to_contain_text("could not be reached, so nothing was set up on it")
    expect(help_text).to_contain_text("Delete the workspace and create it again later")
    expect(card.get_by_test_id("ws-reason")).to_be_hidden()  # the raw reason: behind Details
    card.get_by_test_id("ws-reason-details").locator("summary").click()
    expect(card.get_by_test_id("ws-reason")).to_contain_text("node ws-down unreachable")
    expect(card.get_by_test_id("ws-open")).to_be_hidden()
    expect(card.get_by_test_id("ws-start")).to_be_hidden()
    delete = card.get_by_test_id("ws-delete")
    expect(delete).to_be_visible()
    shots = os.environ.get("PORTAL_SCREENSHOTS")
    if shots:
        page.screenshot(path=os.path.join(shots, "workspace-failed.png"), full_page=True)

    delete.click()
    expect(card.get_by_test_id("ws-delete-confirm-box")).to_be_visible()
    card.get_by_test_id("ws-delete-confirm").click()
    expect(card).to_have_count(0, timeout=SLOW)
    expect(page.get_by_test_id("ws-empty")).to_be_visible()
    workspace.refresh_from_db()
    assert workspace.status == S.DELETED and workspace.port is None
    assert not Job.objects.filter(action="workspaces.delete").exists()  # no job was needed
    assert Job.objects.count() == 2
