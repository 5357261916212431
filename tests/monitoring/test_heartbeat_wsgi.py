"""The heartbeat's WSGI fast path (portal/monitoring/heartbeat_wsgi.py), called as gunicorn
calls portal.wsgi.application: it answers the usual heartbeat as Django would, and hands
everything else to Django."""

import io
import json
import logging

import pytest
from django.core import signals
from django.db import DatabaseError, close_old_connections, connection, connections

from portal.monitoring import heartbeat
from portal.monitoring.heartbeat_wsgi import HeartbeatFastPath
from portal.monitoring.models import NodeLiveness, Sample
from portal.wsgi import application, django_application
from tests.monitoring.conftest import GOOD

pytestmark = pytest.mark.django_db


def environ(method, path, body=b"", query="", **headers):
    """What gunicorn passes to the application for this request."""
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if body or method in ("PUT", "POST"):
        env["CONTENT_LENGTH"] = str(len(body))
        env["CONTENT_TYPE"] = "application/json"
    for name, value in headers.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class Answer:
    def __init__(self, status, headers, content):
        self.status_code = int(status.split(" ", 1)[0])
        self.status_line = status
        self.headers = dict(headers)
        self.header_list = headers
        self.content = content

    def json(self):
        return json.loads(self.content)


def call(app, env) -> Answer:
    """One request through ``app``; the connection handling signals are held back as
    Django's test client does (the test's transaction must not be closed under it)."""
    started = []

    def start_response(status, headers):
        started.append((status, headers))

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        chunks = app(env, start_response)
        try:
            content = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return Answer(*started[0], content)


class Spy:
    """Django's application, noting the requests it was handed."""

    def __init__(self):
        self.paths = []

    def __call__(self, env, start_response):
        self.paths.append(env["PATH_INFO"])
        return django_application(env, start_response)


@pytest.fixture
def fast():
    """(application with a spy for Django, spy)."""
    spy = Spy()
    return HeartbeatFastPath(spy), spy


def beat_env(node_id, token, body=None, path=None, **headers):
    raw = json.dumps(body if body is not None else {**GOOD, "seq": 1}).encode()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return environ("PUT", path or f"/api/nodes/{node_id}/heartbeat", raw, **auth, **headers)


def test_the_production_application_is_the_fast_path_in_front_of_django():
    assert isinstance(application, HeartbeatFastPath)
    assert application.app is django_application


def test_a_good_heartbeat_is_answered_without_django_and_stored(agent, fast):
    app, spy = fast
    node, token = agent()
    answer = call(app, beat_env(node.pk, token, {**GOOD, "seq": 3, "gauges": {"queue": 4}}))
    assert answer.status_code == 200, answer.content
    assert answer.status_line == "200 OK"
    assert answer.json()["seq"] == 3 and answer.json()["status"] == "up"
    assert spy.paths == []
    assert NodeLiveness.objects.get(node=node).last_seq == 3
    assert Sample.objects.get(node=node).gauges == {"queue": 4}


def test_the_answers_headers(agent, fast):
    app, _ = fast
    node, token = agent()
    answer = call(app, beat_env(node.pk, token))
    headers = answer.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(answer.content))
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "default-src" in headers["Content-Security-Policy"]
    assert len(answer.header_list) == len(headers)  # no header twice


def _comparable(answer, node_id, logs):
    """The answer and its log lines, without what differs between two nodes' beats."""

    def anonymous(text):
        return text.replace(f"node {node_id} ", "node N ").replace(f"/{node_id}/", "/N/")

    body = json.loads(anonymous(answer.content.decode()))
    body.pop("next_due_at", None)  # a time
    headers = {k: v for k, v in answer.headers.items() if k != "Content-Length"}
    lines = [(r.levelname, anonymous(r.getMessage())) for r in logs]
    return answer.status_code, body, headers, lines


# Each request twice, to the fast path and to Django alone: the same answer.
CASES = {
    "good": lambda node, token: beat_env(node, token, {**GOOD, "seq": 2}),
    "bad_field": lambda node, token: beat_env(node, token, {**GOOD, "seq": 2, "cpu_percent": -1}),
    "missing_fields": lambda node, token: beat_env(node, token, {"seq": 2}),
    "not_json": lambda node, token: environ(
        "PUT", f"/api/nodes/{node}/heartbeat", b"{", HTTP_AUTHORIZATION=f"Bearer {token}"
    ),
    "no_token": lambda node, token: beat_env(node, None),
    "wrong_token": lambda node, token: beat_env(node, "not-the-token"),
    "other_node": lambda node, token: beat_env(999999, token),
    "stale_seq": lambda node, token: beat_env(node, token, {**GOOD, "seq": 1}),
    "too_large": lambda node, token: beat_env(
        node, token, {**GOOD, "seq": 2, "agent_version": "x" * 17000}
    ),
    "post": lambda node, token: environ(
        "POST", f"/api/nodes/{node}/heartbeat", b"{}", HTTP_AUTHORIZATION=f"Bearer {token}"
    ),
    "nul": lambda node, token: environ(
        "PUT",
        f"/api/nodes/{node}/heartbeat",
        b'{"seq": 2, "agent_version": "a\\u0000"}',
        HTTP_AUTHORIZATION=f"Bearer {token}",
    ),
    "host_not_allowed": lambda node, token: beat_env(
        node, token, {**GOOD, "seq": 2}, HTTP_HOST="evil.example"
    ),
    "trailing_slash": lambda node, token: beat_env(
        node, token, {**GOOD, "seq": 2}, path=f"/api/nodes/{node}/heartbeat/"
    ),
}
STATUS = {
    "good": 200,
    "bad_field": 400,
    "missing_fields": 400,
    "not_json": 400,
    "no_token": 401,
    "wrong_token": 404,
    "other_node": 404,
    "stale_seq": 409,
    "too_large": 413,
    "post": 405,
    "nul": 400,
    "host_not_allowed": 400,
    "trailing_slash": 200,
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_fast_path_answers_and_logs_as_django_does(agent, beat, fast, case, caplog):
    app, _ = fast
    answers = []
    for handler in (app, django_application):
        node, token = agent()
        assert beat(node.pk, token, seq=1).status_code == 200  # so seq 1 is stale
        caplog.clear()
        answer = call(handler, CASES[case](node.pk, token))
        logs = [r for r in caplog.records if r.name.startswith("django")]
        answers.append(_comparable(answer, node.pk, logs))
    assert answers[0][0] == STATUS[case], answers[0]
    assert answers[0] == answers[1]


@pytest.mark.parametrize(
    ("case", "answered_by_django"),
    [
        ("good", False),
        ("bad_field", False),
        ("no_token", False),
        ("stale_seq", False),
        ("too_large", True),  # over 16 KB: Django reads and refuses it
        ("post", True),
        ("nul", True),
        ("host_not_allowed", True),
    ],
)
def test_what_the_fast_path_leaves_to_django(agent, beat, fast, case, answered_by_django):
    app, spy = fast
    node, token = agent()
    beat(node.pk, token, seq=1)
    call(app, CASES[case](node.pk, token))
    assert bool(spy.paths) == answered_by_django


def test_a_disallowed_host_gets_djangos_400_in_the_api_shape(agent, fast):
    app, spy = fast
    node, token = agent()
    answer = call(app, beat_env(node.pk, token, HTTP_HOST="evil.example"))
    assert answer.status_code == 400
    assert answer.json()["status"] == 400
    assert spy.paths == [f"/api/nodes/{node.pk}/heartbeat"]
    assert not Sample.objects.exists()


def test_other_paths_go_to_django(fast):
    app, spy = fast
    health = call(app, environ("GET", "/api/health"))
    other = call(app, environ("PUT", "/api/nodes/1/metrics", b"{}"))
    query = call(app, environ("PUT", "/api/nodes/1/heartbeat", b"{}", query="a=1"))
    assert spy.paths == ["/api/health", "/api/nodes/1/metrics", "/api/nodes/1/heartbeat"]
    assert health.status_code in (200, 503)
    assert other.status_code in (401, 403, 405)
    assert query.status_code == 401  # the view, through Django: no token


def test_a_chunked_body_goes_to_django(agent, fast):
    app, spy = fast
    node, token = agent()
    env = beat_env(node.pk, token, CONTENT_LENGTH=None, HTTP_TRANSFER_ENCODING="chunked")
    call(app, env)
    assert spy.paths == [f"/api/nodes/{node.pk}/heartbeat"]


def test_another_middleware_setting_turns_the_fast_path_off(agent, fast, settings):
    app, spy = fast
    node, token = agent()
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[:-1]]  # axes removed: no longer mirrored
    answer = call(app, beat_env(node.pk, token))
    assert answer.status_code == 200
    assert spy.paths == [f"/api/nodes/{node.pk}/heartbeat"]


def test_headers_follow_the_settings(agent, fast, settings):
    app, _ = fast
    node, token = agent()
    settings.X_FRAME_OPTIONS = "sameorigin"
    settings.SECURE_HSTS_SECONDS = 60
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    answer = call(app, beat_env(node.pk, token, HTTP_X_FORWARDED_PROTO="https"))
    assert answer.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert answer.headers["Strict-Transport-Security"] == "max-age=60"


def test_a_database_error_is_a_logged_500_in_the_api_shape(agent, fast, monkeypatch, caplog):
    app, _ = fast
    node, token = agent()

    def broken(*args, **kwargs):
        raise DatabaseError("the database is gone")

    monkeypatch.setattr(heartbeat, "store", broken)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        answer = call(app, beat_env(node.pk, token))
    assert answer.status_code == 500
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {
        "status": 500,
        "code": "error",
        "message": "Server error.",
        "errors": [{"field": None, "message": "Server error.", "code": "error"}],
    }
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info and "heartbeat" in record.getMessage()


@pytest.mark.django_db(transaction=True)
def test_a_kept_connection_is_checked_only_once_the_server_has_closed_it(agent, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("the health check without a query is PostgreSQL's")
    import psycopg

    node, token = agent()
    db = connections["default"]
    checks = []
    is_usable = db.is_usable
    monkeypatch.setattr(db, "is_usable", lambda: checks.append(1) or is_usable())

    def beat(seq):
        started = []
        env = beat_env(node.pk, token, {**GOOD, "seq": seq})
        content = b"".join(application(env, lambda status, headers: started.append(status)))
        assert started == ["200 OK"], content
        return db.connection.info.backend_pid

    pid = beat(1)
    assert beat(2) == pid and checks == []  # kept, and no SELECT 1 per request
    with psycopg.connect(**{**db.get_connection_params(), "autocommit": True}) as other:
        other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])  # waits for its exit
    assert beat(3) != pid and checks == [1]  # the server's goodbye noticed: replaced
