"""What the schema fuzz tests share: the schema from the WSGI app, bounded settings and the
check (no input gives a server error); the fixture keep_test_connection is in tests/conftest.py.

Bounded: a fixed number of generated cases per operation, derandomized so CI is stable.
"""

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from portal.wsgi import application

fuzz_settings = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def api_schema():
    return schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


def call_without_server_error(case, token: str) -> None:
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=[not_a_server_error])
