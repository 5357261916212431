import secrets

import pytest

from portal.accounts.actions import hash_token
from portal.monitoring.models import NodeLiveness
from tests.factories import NodeFactory

GOOD = {"cpu_percent": 25.5, "memory_percent": 45.2, "disk_percent": 65.0, "disk_used_gb": 32.5}


@pytest.fixture
def agent(db):
    """A node with an agent token: (node, token)."""

    def make(node=None, **fields):
        node = node or NodeFactory()
        token = secrets.token_urlsafe(32)
        NodeLiveness.objects.create(node=node, token_hash=hash_token(token), **fields)
        return node, token

    return make


@pytest.fixture
def beat(api):
    """beat(node, token, seq, **body) -> response of PUT /api/nodes/{id}/heartbeat."""

    def send(node_id, token, seq=1, raw=None, **body):
        payload = raw if raw is not None else {**GOOD, "seq": seq, **body}
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        return api.put(f"/api/nodes/{node_id}/heartbeat", payload, format="json", **headers)

    return send
