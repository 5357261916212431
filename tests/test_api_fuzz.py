"""Fuzz every operation of the OpenAPI schema: no input gives a server error (5xx).

Bounded: a fixed number of generated cases per operation, derandomized so CI is stable.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from portal.wsgi import application

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# Streams and metrics are not JSON request/response operations.
schema = schema.exclude(path_regex=r".*/stream/$")


@pytest.fixture
def keep_test_connection():
    """Like Django's test client: requests must not close the test's database connection."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(db, keep_test_connection):
    from rest_framework.authtoken.models import Token

    from tests.factories import AdminFactory, MembershipFactory, NodeFactory

    admin = AdminFactory(username="fuzz-admin")
    MembershipFactory()
    NodeFactory()
    return Token.objects.create(user=admin).key


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
