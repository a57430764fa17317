"""Fixtures: an app for every test; for the tests marked `stack`, on a fresh database.

The app opens its MariaDB connection lazily (flask-mysqldb, on first use in a request), so
a test that never reaches the database (tokens, malformed credentials, request ids) needs
none: its app names a database that does not exist. A test marked `stack` gets a fresh
database on the real MariaDB instead; the stack (`make run`) provides MariaDB and a test user
allowed to create databases named mp3test_*, and dev/test.sh puts its credentials
(TEST_MYSQL_*) in the environment.
"""

from __future__ import annotations

import base64
import os
import uuid

import MySQLdb
import pytest

from auth_service import create_app, schema, security

TEST_JWT_SECRET = "test-secret-" + "0123456789abcdef" * 4  # 76 bytes: long enough for HS512 too


def _admin_connection(db: str | None = None):
    kwargs = {"db": db} if db else {}
    return MySQLdb.connect(
        host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("MYSQL_PORT", "3306")),
        user=os.environ["TEST_MYSQL_USER"],
        passwd=os.environ["TEST_MYSQL_PASSWORD"],
        **kwargs,
    )


@pytest.fixture
def database():
    name = f"mp3test_{uuid.uuid4().hex[:12]}"
    connection = _admin_connection()
    connection.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    connection.select_db(name)
    schema.apply(connection.cursor())
    connection.commit()
    yield name
    connection.cursor().execute(f"DROP DATABASE `{name}`")
    connection.close()


@pytest.fixture
def environ(request):
    """The app's settings: on the test's own database when the test is marked `stack`."""
    settings = {
        "APP_ENV": "development",
        "MYSQL_HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "MYSQL_PORT": os.environ.get("MYSQL_PORT", "3306"),
        "MYSQL_USER": os.environ.get("TEST_MYSQL_USER", "mp3test"),
        "MYSQL_PASSWORD": os.environ.get("TEST_MYSQL_PASSWORD", "no-database-here"),
        "MYSQL_DB": "mp3test_no_database",
        "JWT_SECRET": TEST_JWT_SECRET,
    }
    if request.node.get_closest_marker("stack"):
        settings["MYSQL_DB"] = request.getfixturevalue("database")
    return settings


@pytest.fixture
def app(environ):
    return create_app(environ)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_client(environ):
    """A client of an app with some settings changed."""
    return lambda **changes: create_app({**environ, **changes}).test_client()


@pytest.fixture
def rows(database):
    """Read the user table directly, to check what the service really stored."""

    def read():
        connection = _admin_connection(database)
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT email, password_hash FROM user ORDER BY id")
            return cursor.fetchall()
        finally:
            connection.close()

    return read


@pytest.fixture
def sql(database):
    """Run one statement on the test's database as an operator would (and commit it)."""

    def run(statement: str, *args):
        connection = _admin_connection(database)
        try:
            cursor = connection.cursor()
            cursor.execute(statement, args)
            connection.commit()
            return cursor.fetchall()
        finally:
            connection.close()

    return run


@pytest.fixture
def user(database):
    """A user inserted straight into the table: (email, password)."""
    email, password = "alice@example.com", "correct horse battery"
    connection = _admin_connection(database)
    connection.cursor().execute(
        "INSERT INTO user (email, password_hash) VALUES (%s, %s)",
        (email, security.hash_password(password)),
    )
    connection.commit()
    connection.close()
    return email, password


def basic(username: str, password: str) -> dict:
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}
