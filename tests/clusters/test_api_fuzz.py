"""Fuzz the clusters' operations of the OpenAPI schema (as tests/test_api_fuzz.py does for
all): hostile bodies, headers and parameters give a 4xx, never a server error; with data
in place (a cluster, its nodes, a run waiting for registrations)."""

import pytest

from tests.fuzz import api_schema, call_without_server_error, fuzz_settings

schema = api_schema().include(path_regex=r"^/api/clusters")


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
@fuzz_settings
def test_no_server_errors(case, token):
    call_without_server_error(case, token)
