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


_BEFORE: dict[str, object] = {}


def _controller(config: pytest.Config) -> bool:
    """This process runs the session (not one of pytest-xdist's workers)."""
    return not hasattr(config, "workerinput")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Before the whole run: what exists of ours, and the root namespace's network."""
    if _controller(session.config):
        _BEFORE.update(namespaces=namespaces(), network=root_network_snapshot(),
                       processes=set(our_processes()))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the whole run (every worker's, with -n): no namespace or process of ours
    remains, and the root namespace's links, addresses, routes and rules are exactly as they
    were; otherwise the run fails."""
    if not _controller(session.config) or not _BEFORE:
        return

    def left() -> set[str]:
        return set(our_processes()) - _BEFORE["processes"]  # type: ignore[operator]

    problems = []
    try:
        wait_for(lambda: not left(), timeout=20)
    except AssertionError:
        problems.append(f"processes left behind: {sorted(left())}")
    stray = namespaces() - _BEFORE["namespaces"]  # type: ignore[operator]
    if stray:
        problems.append(f"namespaces left behind: {sorted(stray)}")
    if root_network_snapshot() != _BEFORE["network"]:
        problems.append("the root namespace's network changed")
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for problem in problems:
            if reporter is not None:
                reporter.write_line(f"FAILED (the run): {problem}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
            server.add_user(*ADMIN, "admin-project", "admin")
            server.add_user(*ALICE, "project-a")
            server.add_user(*BOB, "project-b")
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
