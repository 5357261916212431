"""A worker's tasks reuse their database connection as the web's requests do (#18): Celery's
Django fixup closed it before and after every task, so every job opened a new PostgreSQL
connection before it could be claimed."""

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import connection

from portal.celery import _database_connections_as_for_a_request, app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def persistent_connections(monkeypatch):
    """The PostgreSQL settings (SQLite's connections are not kept: CONN_MAX_AGE 0)."""
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    yield
    connection.close()


def _open_connection():
    connection.ensure_connection()
    return connection.connection


def _task(eager: bool = False):
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def test_celerys_fixup_leaves_the_connection_open_between_tasks():
    opened = _open_connection()
    fixup = DjangoWorkerFixup(app)
    for _ in range(10):  # prerun and postrun of five tasks
        fixup.close_database()
    assert connection.connection is opened


def test_a_task_closes_a_connection_past_its_age_as_a_request_does(settings):
    opened = _open_connection()
    _database_connections_as_for_a_request(task=_task())
    assert connection.connection is opened  # young: kept, checked before its next query
    assert connection.health_check_done is False
    connection.close_at = 0  # older than CONN_MAX_AGE
    _database_connections_as_for_a_request(task=_task())
    assert connection.connection is None


def test_a_task_run_eagerly_leaves_its_callers_connection_alone():
    opened = _open_connection()
    connection.close_at = 0
    _database_connections_as_for_a_request(task=_task(eager=True))
    assert connection.connection is opened
