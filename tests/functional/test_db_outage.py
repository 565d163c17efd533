"""A database that drops the server's connections: writes retry, nothing answers 500."""

from __future__ import annotations

import pytest

from tests.functional.test_api import ok
from tests.support import Server, database_url, require_backend


def _terminate_backends(dbname: str) -> int:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres",
                         autocommit=True) as conn:
        rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
        return len(rows.fetchall())


def test_dropped_connections(tmp_path_factory: pytest.TempPathFactory) -> None:
    """After PostgreSQL kills every connection, writes succeed and reads recover."""
    require_backend("postgresql")
    tmp = tmp_path_factory.mktemp("outage")
    with database_url("postgresql", tmp) as url:
        server = Server(tmp, url).start()
        try:
            with server.http() as c:
                ok(c.post("/v2.0/networks", json={"network": {"name": "before"}}), 201)
                ok(c.get("/v2.0/networks"))
                assert _terminate_backends(url.rsplit("/", 1)[1]) >= 1
                made = ok(c.post("/v2.0/networks", json={"network": {"name": "after"}}), 201)
                assert made["network"]["name"] == "after"
                assert _terminate_backends(url.rsplit("/", 1)[1]) >= 1
                statuses = [c.get("/v2.0/networks").status_code for _ in range(3)]
                assert set(statuses) <= {200, 503}, statuses
                assert statuses[-1] == 200
                names = {n["name"] for n in ok(c.get("/v2.0/networks"))["networks"]}
                assert names == {"before", "after"}
        finally:
            server.stop()
