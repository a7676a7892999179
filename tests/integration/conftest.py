"""Fixtures for tests against real services on 127.0.0.1: PostgreSQL and Redis.

Each fixture skips its test, with the reason, when the server is not reachable
(default ports, trust authentication, user ``postgres`` or ``root``, database
``test``). Every test gets a fresh PostgreSQL database or a fresh Redis key
prefix, removed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

HOST = "127.0.0.1"
PG_USERS: tuple[str, ...] = ("postgres", "root")


def _pg_admin() -> tuple[Any, str]:
    """An autocommit psycopg2 connection to database ``test`` (or ``postgres``) and its user."""
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    errors: list[str] = []
    for user in PG_USERS:
        for database in ("test", "postgres"):
            try:
                connection = psycopg2.connect(
                    host=HOST, user=user, dbname=database, connect_timeout=3
                )
            except psycopg2.Error as exc:
                errors.append(f"{user}@{database}: {' '.join(str(exc).split())}")
                continue
            connection.autocommit = True
            return connection, user
    pytest.skip(f"no PostgreSQL server reachable on {HOST}:5432 ({'; '.join(errors)})")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped after the test."""
    admin, user = _pg_admin()
    name = f"hwaware_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg2://{user}@{HOST}:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def redis_url() -> Iterator[tuple[str, str]]:
    """``(url, prefix)``: a reachable Redis and a fresh key prefix, deleted after the test."""
    redis = pytest.importorskip("redis", reason="the redis client is not installed")
    url = f"redis://{HOST}:6379/0"
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis server reachable on {HOST}:6379 ({exc})")
    prefix = f"hwaware-test-{uuid.uuid4().hex[:12]}:"
    try:
        yield url, prefix
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()
