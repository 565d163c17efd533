"""Fixtures: servers on every reachable database backend, with both auth strategies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    BACKENDS,
    Server,
    backend_unavailable,
    database_url,
    namespaces,
    our_processes,
    root_network_snapshot,
    wait_for,
)

ADMIN = ("admin", "adminpass")
ALICE = ("alice", "alicepass")
BOB = ("bob", "bobpass")


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """After the whole run: no namespace or process of ours remains, and the root namespace's
    links, addresses, routes and rules are exactly as they were (an error fails the run)."""
    before = (namespaces(), root_network_snapshot(), our_processes())
    yield
    def left() -> set[str]:
        return set(our_processes()) - set(before[2])

    try:
        wait_for(lambda: not left(), timeout=20)
    except AssertionError:
        raise AssertionError(f"processes left behind: {sorted(left())}") from None
    assert namespaces() - before[0] == set(), "namespaces left behind"
    assert root_network_snapshot() == before[1], "the root namespace's network changed"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each database backend; unreachable ones skip with the reason printed."""
    reason = backend_unavailable(request.param)
    if reason is not None:
        print(f"\nSKIP {request.param}: {reason}")
        pytest.skip(reason)
    return str(request.param)


def _server(tmp_path: Path, backend: str, auth: str, **kwargs: object) -> Iterator[Server]:
    with database_url(backend, tmp_path) as url:
        server = Server(tmp_path, url, auth=auth, **kwargs)  # type: ignore[arg-type]
        if auth == "http_basic":
            server.manage("user", "add", ADMIN[0], "--password", ADMIN[1], "--role", "admin",
                          "--project-id", "admin-project")
            server.manage("user", "add", ALICE[0], "--password", ALICE[1], "--project-id",
                          "project-a")
            server.manage("user", "add", BOB[0], "--password", BOB[1], "--project-id",
                          "project-b")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    """A noauth server on each backend, shared by a module's tests."""
    yield from _server(tmp_path_factory.mktemp(f"srv-{backend}"), backend, "noauth")


@pytest.fixture(scope="module")
def basic_server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    """An http_basic server on each backend with users admin, alice (A) and bob (B)."""
    yield from _server(tmp_path_factory.mktemp(f"basic-{backend}"), backend, "http_basic")


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A noauth server on SQLite only, for tests about the API rather than the database."""
    yield from _server(tmp_path_factory.mktemp("srv-sqlite-only"), "sqlite", "noauth")


# Clients of a module's http_basic `server` (a module defines `server`; one that defines
# its own `admin` or `alice` keeps it).
@pytest.fixture(scope="module")
def admin(server: Server) -> Iterator[httpx.Client]:
    """The admin user's client."""
    with server.http(basic=ADMIN) as client:
        yield client


@pytest.fixture(scope="module")
def alice(server: Server) -> Iterator[httpx.Client]:
    """Alice's client (a member of project-a)."""
    with server.http(basic=ALICE) as client:
        yield client


@pytest.fixture(scope="module")
def bob(server: Server) -> Iterator[httpx.Client]:
    """Bob's client (a member of project-b)."""
    with server.http(basic=BOB) as client:
        yield client
