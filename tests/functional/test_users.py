"""`neutrino user add|list|remove` against a running http_basic server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import _server
from tests.support import Server


@pytest.fixture(scope="module")
def basic_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An http_basic server on SQLite with the standard users."""
    yield from _server(tmp_path_factory.mktemp("users"), "sqlite", "http_basic")


def test_user_lifecycle(basic_sqlite: Server) -> None:
    """A user added logs in with its project and roles; removed, it is refused at once."""
    out = basic_sqlite.manage("user", "add", "carol", "--password", "s3cret",
                              "--project-id", "project-c", "--role", "member").stdout
    assert "project project-c" in out
    listing = basic_sqlite.manage("user", "list").stdout
    assert "carol" in listing and "project-c" in listing and "alice" in listing
    assert "s3cret" not in (basic_sqlite.dir / "state" / "users.json").read_text()
    with basic_sqlite.http(basic=("carol", "s3cret")) as carol:
        made = carol.post("/v2.0/networks", json={"network": {"name": "carol-net"}})
        assert made.status_code == 201 and made.json()["network"]["project_id"] == "project-c"
    with basic_sqlite.http(basic=("carol", "wrong")) as wrong:
        resp = wrong.get("/v2.0/networks")
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"].startswith("Basic")
    basic_sqlite.manage("user", "remove", "carol")
    assert "carol" not in basic_sqlite.manage("user", "list").stdout
    with basic_sqlite.http(basic=("carol", "s3cret")) as carol:
        assert carol.get("/v2.0/networks").status_code == 401


def test_no_credentials_is_401(basic_sqlite: Server) -> None:
    """Without credentials only the version document answers."""
    with basic_sqlite.http() as anonymous:
        assert anonymous.get("/").status_code == 200
        assert anonymous.get("/v2.0/networks").status_code == 401
        assert anonymous.get("/v2.0/extensions").status_code == 401
