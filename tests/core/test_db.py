"""core/db.py: the prepared statements' cursors (PostgreSQL)."""

import pytest
from django.db import DatabaseError, connection

from portal.core import db

pytestmark = [
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="prepared statements"),
    pytest.mark.django_db(transaction=True),
]

SQUARE = "SELECT %s::int * %s::int"
HALF = "SELECT 10 / %s::int"


def test_each_statement_keeps_its_cursor_and_adapters_between_the_others():
    """psycopg makes a cursor's adapters anew whenever it runs another query object: one
    cursor per statement, always given the text it first ran, keeps them."""
    assert db.fetch_prepared(connection, SQUARE, [3, 3]) == (9,)
    cursor, text = db._cursor(connection, SQUARE)
    adapters = cursor._tx
    assert db.fetch_prepared(connection, HALF, [5]) == (2,)
    assert db.fetch_prepared(connection, "".join(["SELECT %s::int ", "* %s::int"]), [4, 5]) == (20,)
    assert db._cursor(connection, SQUARE) == (cursor, text)
    assert cursor._tx is adapters
    assert db._cursor(connection, HALF)[0] is not cursor


def test_a_failed_statement_runs_again_and_a_new_connection_gets_new_cursors():
    with pytest.raises(DatabaseError):  # Django's error, as its own cursors raise
        db.fetch_prepared(connection, HALF, [0])
    assert db.fetch_prepared(connection, HALF, [2]) == (5,)
    before = db._cursor(connection, HALF)[0]
    connection.close()
    assert db.fetch_prepared(connection, HALF, [1]) == (10,)
    assert db._cursor(connection, HALF)[0] is not before
