"""The agent reports the product version the node runs (roles/node_agent/files/portal-agent.py
reads the role's node_agent_version_file) and the portal stores it as the VM's version."""

import importlib.util
import json
import os
from pathlib import Path

import pytest
import yaml

from portal.fleet import selectors
from portal.fleet.models import VM
from portal.monitoring import heartbeat
from tests.fleet.api_helpers import customer, vm_with_token

ROLE = Path(__file__).resolve().parents[2] / "roles/node_agent"


@pytest.fixture(scope="module")
def agent():
    spec = importlib.util.spec_from_file_location(
        "portal_agent_fleet", ROLE / "files/portal-agent.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def body(agent, version_file):
    cpu = agent.cpu_times()
    config = {"interval": 30, "disk_path": "/", "version_file": str(version_file)}
    return agent.measure(config, cpu, cpu, 7)


def test_the_version_files_first_line_is_sent_as_version(agent, tmp_path):
    path = tmp_path / "version"
    path.write_text("2.5.0+build.3\nthe rest is ignored\n")
    sent = body(agent, path)
    assert sent["version"] == "2.5.0+build.3"
    assert heartbeat.validate(json.loads(json.dumps(sent)))["version"] == "2.5.0+build.3"


@pytest.mark.parametrize("content", [None, "", "two words\n", "x" * 65, "1.0;reboot"])
def test_no_file_or_no_version_in_it_sends_no_version_field(agent, tmp_path, content):
    path = tmp_path / "version"
    if content is not None:
        path.write_text(content)
    sent = body(agent, path)
    assert "version" not in sent
    heartbeat.validate(json.loads(json.dumps(sent)))  # still a good beat


def test_an_unreadable_file_sends_no_version_field(agent, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "version"
    path.write_text("1.0.0\n")
    path.chmod(0)
    assert "version" not in body(agent, path)


def test_an_agent_config_without_a_version_file_sends_none(agent):
    cpu = agent.cpu_times()
    assert "version" not in agent.measure({"interval": 30, "disk_path": "/"}, cpu, cpu, 1)


@pytest.mark.django_db(transaction=True)
def test_the_agent_sends_the_version_and_the_vm_shows_it(agent, live_server, tmp_path):
    vm, token = vm_with_token(customer())
    (tmp_path / "token").write_text(token)
    (tmp_path / "version").write_text("4.0.1\n")
    config = {
        "url": live_server.url,
        "node_id": vm.pk,
        "interval": 30,
        "token_file": str(tmp_path / "token"),
        "version_file": str(tmp_path / "version"),
        "timeout": 5,
    }
    cpu = agent.cpu_times()
    assert agent.send(config, agent.measure(config, cpu, cpu, 1)) is None
    shown = selectors.vms_with_status(VM.objects.filter(pk=vm.pk)).get()
    assert (shown.version, shown.status) == ("4.0.1", "online")


def test_the_role_documents_and_defaults_the_version_file():
    specs = yaml.safe_load((ROLE / "meta/argument_specs.yml").read_text())
    option = specs["argument_specs"]["main"]["options"]["node_agent_version_file"]
    defaults = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    assert option["default"] == defaults["node_agent_version_file"] == "/etc/portal-product/version"
    assert "version_file" in (ROLE / "templates/agent.json.j2").read_text()
