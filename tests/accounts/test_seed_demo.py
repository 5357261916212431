"""`manage.py seed_demo` (what `make run` prints, issue #19 item 4): URLs from WEB_ADDRESS, a
customer login that works, and the same logins again on a second run."""

import re
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from portal.accounts.models import Customer, Membership
from portal.demo.management.commands.seed_demo import CUSTOMER_EMAIL, base_url
from portal.jobs.models import Job
from portal.labs.models import Lab
from portal.nodes.choices import Connection, NodePurpose
from portal.nodes.models import Node
from portal.workspaces.models import Workspace
from tests.helpers import stubbed_broker

LOGIN = re.compile(r"customer login (\S+) / (\S+) at (\S+)")
ADMIN_LOGIN = re.compile(r"admin login (\S+) / (\S+) at (\S+)")


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def seed(monkeypatch, address="0.0.0.0:8765", *args) -> str:
    if address is None:
        monkeypatch.delenv("WEB_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("WEB_ADDRESS", address)
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def logs_in(username, password) -> Client | None:
    client = Client()
    response = client.post("/accounts/login/", {"username": username, "password": password})
    return client if response.status_code == 302 else None


@pytest.mark.parametrize(
    ("address", "url"),
    [
        (None, "http://127.0.0.1:8000"),
        ("", "http://127.0.0.1:8000"),
        ("127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("8001", "http://127.0.0.1:8001"),
        ("portal.test:8080", "http://portal.test:8080"),
        ("[::]:8000", "http://[::1]:8000"),
        ("[::1]:8002", "http://[::1]:8002"),
    ],
)
def test_base_url_follows_the_runserver_address(address, url):
    assert base_url(address) == url


@pytest.mark.django_db
def test_printed_urls_follow_web_address(monkeypatch, var_dir):
    output = seed(monkeypatch, "0.0.0.0:8765")

    assert "8000" not in output
    assert ADMIN_LOGIN.search(output).group(3) == "http://127.0.0.1:8765/admin/"
    assert LOGIN.search(output).group(3) == "http://127.0.0.1:8765/"
    assert "http://127.0.0.1:8765/api/docs/" in output
    job = Job.objects.get()
    assert f"http://127.0.0.1:8765/admin/jobs/job/{job.pk}/change/" in output
    assert "python -m tests.hosts up 1" in output


@pytest.mark.django_db
def test_printed_logins_work(monkeypatch, var_dir):
    output = seed(monkeypatch, "127.0.0.1:8765", "--no-job")

    username, password, _ = LOGIN.search(output).groups()
    member = get_user_model().objects.get(username=username)
    customer = Customer.objects.get(memberships__user=member)
    assert not member.is_staff
    client = logs_in(username, password)
    assert client is not None, "the printed customer login does not work"
    assert client.get("/").url == "/workspaces/"
    assert client.get("/workspaces/").status_code == 200
    assert client.get("/api/customers/").json()["results"][0]["id"] == customer.pk

    admin_name, admin_password, _ = ADMIN_LOGIN.search(output).groups()
    assert logs_in(admin_name, admin_password) is not None


@pytest.mark.django_db
def test_second_run_keeps_the_rows_and_prints_the_same_working_logins(monkeypatch, var_dir):
    first = seed(monkeypatch, "127.0.0.1:8765", "--no-job")
    counts = (
        get_user_model().objects.count(),
        Customer.objects.count(),
        Membership.objects.count(),
        Node.objects.count(),
        Lab.objects.count(),
    )

    second = seed(monkeypatch, "127.0.0.1:8765", "--no-job")

    assert LOGIN.search(second).groups() == LOGIN.search(first).groups()
    assert ADMIN_LOGIN.search(second).groups() == ADMIN_LOGIN.search(first).groups()
    assert counts == (
        get_user_model().objects.count(),
        Customer.objects.count(),
        Membership.objects.count(),
        Node.objects.count(),
        Lab.objects.count(),
    )
    username, password, _ = LOGIN.search(second).groups()
    assert logs_in(username, password) is not None


@pytest.mark.django_db
def test_a_new_var_dir_gives_new_logins_that_work(monkeypatch, settings, tmp_path):
    """var/ removed but the database kept (e.g. PostgreSQL): the rows are reused and the
    newly printed passwords are the ones that work."""
    settings.VAR_DIR = tmp_path / "one"
    seed(monkeypatch, "127.0.0.1:8765", "--no-job")
    settings.VAR_DIR = tmp_path / "two"
    output = seed(monkeypatch, "127.0.0.1:8765", "--no-job")

    username, password, _ = LOGIN.search(output).groups()
    assert logs_in(username, password) is not None
    assert Customer.objects.filter(email=CUSTOMER_EMAIL).count() == 1


@pytest.mark.django_db
def test_the_demo_customer_has_fleet_vms_among_the_sample_fleet(monkeypatch, var_dir):
    from portal.fleet.models import VM

    output = seed(monkeypatch, "127.0.0.1:8765", "--no-job")
    seed(monkeypatch, "127.0.0.1:8765", "--no-job")  # again: nothing more

    demo = Customer.objects.get(email=CUSTOMER_EMAIL)
    assert VM.objects.filter(customer=demo).count() == 2
    assert VM.objects.exclude(customer=demo).count() == 12  # 3 tiers x 2 customers x 2
    assert "/fleet/mine/" in output and "/fleet/" in output


@pytest.mark.django_db
def test_seeds_this_machine_as_a_lab_server_with_a_safe_self_service_lab(monkeypatch, var_dir):
    output = seed(monkeypatch, "127.0.0.1:8765", "--no-job")

    lab = Lab.objects.get()
    server = lab.server
    assert (server.purpose, server.connection, server.enabled) == (
        NodePurpose.LAB_SERVER,
        Connection.LOCAL,
        True,
    )
    assert lab.enabled and lab.self_service and lab.user_extend_minutes > 0
    scripts = var_dir.resolve() / "demo-lab"
    assert lab.provision_script_path == str(scripts / "provision.sh")
    assert lab.cleanup_script_path == str(scripts / "cleanup.sh")
    for path in (lab.provision_script_path, lab.cleanup_script_path):
        commands = [
            line
            for line in Path(path).read_text().splitlines()
            if not line.lstrip().startswith("#")
        ]
        assert not [
            line
            for line in commands
            if any(word in line for word in ("useradd", "sudo", "systemctl", "/srv"))
        ]
    assert "{namespace}" in lab.access_instructions
    assert f"lab 'Demo lab' on lab server '{server.name}'" in output
    assert "http://127.0.0.1:8765/labs/" in output
    # The fleet node is still not a workspace host, and no workspace is made without one.
    assert not Node.objects.filter(purpose=NodePurpose.WORKSPACE_HOST).exists()
    assert not Workspace.objects.exists()
    assert "sudo .venv/bin/python -m tests.hosts up 1" in output
    assert "CODE_SERVER_PACKAGE=$(sudo .venv/bin/python -m tests.hosts code-server)" in output


@pytest.mark.django_db
def test_a_registered_workspace_host_gets_the_demo_workspace_once(
    monkeypatch, var_dir, django_capture_on_commit_callbacks
):
    from tests.factories import NodeFactory

    node = NodeFactory(
        name="t1-host1",
        purpose=NodePurpose.WORKSPACE_HOST,
        workspace_port_start=8001,
        workspace_port_end=8010,
    )
    with stubbed_broker(), django_capture_on_commit_callbacks(execute=True):
        first = seed(monkeypatch, "127.0.0.1:8765", "--no-job")
        second = seed(monkeypatch, "127.0.0.1:8765", "--no-job")

    workspace = Workspace.objects.get()
    assert workspace.node == node and workspace.owner.username == "demo"
    assert workspace.name == "Demo IDE"
    assert workspace.current_job.playbook == "workspace_create.yml"
    for output in (first, second):
        assert re.search(
            r"workspace 'Demo IDE' on node 't1-host1': (pending|provisioning) "
            r"\(follow it at http://127.0.0.1:8765/workspaces/",
            output,
        )
        assert "tests.hosts up 1" not in output
