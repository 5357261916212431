"""Fuzz the clusters' operations of the OpenAPI schema (as tests/test_api_fuzz.py does for
all): hostile bodies, headers and parameters give a 4xx, never a server error; with data
in place (a cluster, its nodes, a run waiting for registrations)."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from portal.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
schema = schema.include(path_regex=r"^/api/clusters")


@pytest.fixture
def keep_test_connection():
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, keep_test_connection, broker):
    from rest_framework.authtoken.models import Token

    from tests.clusters.conftest import make_cluster, start
    from tests.factories import AdminFactory

    start(make_cluster(count=2))
    make_cluster("idle", count=1)
    return Token.objects.create(user=AdminFactory(username="fuzz-admin")).key


def test_the_clusters_operations_are_in_the_schema():
    paths = {result.ok().path for result in schema.get_all_operations()}
    assert {
        "/api/clusters/register",
        "/api/clusters/post-install",
        "/api/clusters/registered-nodes.json",
        "/api/clusters/legacy",
        "/api/clusters/legacy/register",
        "/api/clusters/runs/",
        "/api/clusters/runs/{id}/cancel/",
        "/api/clusters/runs/{id}/nodes/{node_id}/retry/",
    } <= paths


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case, token):
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=[not_a_server_error])
