"""The agent's own code (roles/node_agent/files/portal-agent.py) against the portal."""

import importlib.util
import json
import os
import secrets
from pathlib import Path

import pytest

from portal.accounts.actions import hash_token
from portal.monitoring import heartbeat
from portal.monitoring.models import NodeLiveness, Sample
from tests.factories import NodeFactory

AGENT = Path(__file__).resolve().parents[2] / "roles/node_agent/files/portal-agent.py"


@pytest.fixture(scope="module")
def agent_module():
    spec = importlib.util.spec_from_file_location("portal_agent", AGENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_what_the_agent_measures_here_is_a_valid_heartbeat(agent_module):
    before = agent_module.cpu_times()
    sum(range(200000))
    after = agent_module.cpu_times()
    body = agent_module.measure({"interval": 30, "disk_path": "/"}, before, after, 5)
    values = heartbeat.validate(json.loads(json.dumps(body)))
    assert 0 <= values["cpu_percent"] <= 100 and 0 < values["memory_percent"] < 100
    assert values["disk_used_gb"] > 0 and len(values["load"]) == 3
    assert values["uptime_seconds"] > 0 and values["agent_version"] == agent_module.VERSION


@pytest.mark.django_db(transaction=True)
def test_the_agent_beats_and_follows_the_portals_seq(agent_module, live_server, tmp_path):
    node = NodeFactory()
    token = secrets.token_urlsafe(32)
    NodeLiveness.objects.create(node=node, token_hash=hash_token(token), last_seq=10**15)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    os.chmod(token_file, 0o600)
    config = {
        "url": live_server.url,
        "node_id": node.pk,
        "interval": 30,
        "token_file": str(token_file),
        "timeout": 5,
    }
    cpu = agent_module.cpu_times()
    stale = agent_module.send(config, agent_module.measure(config, cpu, cpu, 5))
    assert stale == 10**15  # 409: the agent learns where to continue
    assert agent_module.send(config, agent_module.measure(config, cpu, cpu, stale + 1)) is None
    assert NodeLiveness.objects.get(node=node).last_seq == stale + 1
    assert Sample.objects.filter(node=node).count() == 1
