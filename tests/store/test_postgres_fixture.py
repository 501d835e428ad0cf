"""The PostgreSQL fixture itself: a server that connects, and databases that do not see each other."""

from __future__ import annotations

import psycopg
from tests.postgres import SUPERUSER, Postgres


def test_new_databases_are_empty_and_independent(postgres: Postgres) -> None:
    first, second = postgres.new_database(), postgres.new_database()
    assert first != second
    assert first.startswith(f"postgresql://{SUPERUSER}@127.0.0.1:{postgres.port}/")
    with psycopg.connect(first, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (k integer PRIMARY KEY, v text NOT NULL)")
        conn.execute("INSERT INTO t (k, v) VALUES (1, 'a') ON CONFLICT (k) DO UPDATE SET v = excluded.v")
        conn.execute("INSERT INTO t (k, v) VALUES (1, 'b') ON CONFLICT (k) DO UPDATE SET v = excluded.v")
        assert conn.execute("SELECT v FROM t").fetchall() == [("b",)]
    with psycopg.connect(second, autocommit=True) as conn:
        tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
        assert tables == []


def test_server_listens_on_loopback_only(postgres: Postgres) -> None:
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
