"""HTTP Basic logins under attack: bcrypt off the event loop, failures throttled per user and
per client address (429 with Retry-After), unknown users answered as known ones, and
passwords longer than bcrypt reads refused like any wrong one.

Timings are printed, not asserted (the benchmarks hold the timing goals); what is asserted
is behaviour: statuses, headers, and that authenticated requests keep being answered while
wrong passwords are being checked.
"""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ADMIN, ALICE, BOB, _server
from tests.functional.test_api import error, ok
from tests.support import AGENT_USER, VENV_BIN, Server

PER_USER = 3
PER_SOURCE = 4
LOAD_SECONDS = 3.0
ATTACKERS = 16


def _server_with(tmp_path_factory: pytest.TempPathFactory, name: str, per_user: int,
                 per_source: int) -> Iterator[Server]:
    yield from _server(tmp_path_factory.mktemp(name), "sqlite", "http_basic", options={
        "DEFAULT": {"auth_failures_per_user": per_user,
                    "auth_failures_per_source": per_source, "auth_failure_window": 60}})


@pytest.fixture(scope="module")
def by_user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Throttled per user after PER_USER failures; the source limit out of the way."""
    yield from _server_with(tmp_path_factory, "by-user", PER_USER, 1000)


@pytest.fixture(scope="module")
def by_source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Throttled per client address after PER_SOURCE failures."""
    yield from _server_with(tmp_path_factory, "by-source", 1000, PER_SOURCE)


@pytest.fixture(scope="module")
def unthrottled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No throttling to speak of, so that every wrong password costs a bcrypt check."""
    yield from _server_with(tmp_path_factory, "load", 10**6, 10**6)


def _attempts(server: Server, user: str,
              count: int) -> tuple[list[int], list[float], httpx.Response]:
    """`count` wrong-password logins of `user`: statuses, seconds each, the last answer."""
    statuses, seconds = [], []
    with server.http(basic=(user, "not-the-password")) as client:
        for _ in range(count):
            started = time.perf_counter()
            resp = client.get("/v2.0/networks")
            seconds.append(time.perf_counter() - started)
            statuses.append(resp.status_code)
    return statuses, seconds, resp


def test_failures_are_throttled_per_user(by_user: Server) -> None:
    """After PER_USER failures a user name gets 429 with Retry-After; its owner, logged in
    before, is still let in, and other users are not affected."""
    with by_user.http(basic=ALICE) as alice:
        ok(alice.get("/v2.0/networks"))
        statuses, _, last = _attempts(by_user, "alice", PER_USER + 1)
        assert statuses == [401] * PER_USER + [429]
        retry = last.headers.get("retry-after", "")
        assert retry.isdigit() and int(retry) >= 1
        assert "retry after" in error(last, 429, "TooManyRequests")
        ok(alice.get("/v2.0/networks"))  # remembered: the attacker does not lock her out
    with by_user.http(basic=BOB) as bob:
        ok(bob.get("/v2.0/networks"))


def test_unknown_users_answer_as_known_ones(by_user: Server) -> None:
    """An unknown user name gets the same statuses as a known one, throttling included, and
    (printed) costs about the same time: a bcrypt check against a dummy hash."""
    known, known_times, _ = _attempts(by_user, ADMIN[0], PER_USER + 1)
    unknown, unknown_times, _ = _attempts(by_user, f"ghost-{uuid.uuid4().hex[:6]}",
                                          PER_USER + 1)
    assert known == unknown == [401] * PER_USER + [429]
    print(f"\nwrong password, known user: {statistics.median(known_times[:PER_USER]) * 1e3:.0f}"
          f" ms; unknown user: {statistics.median(unknown_times[:PER_USER]) * 1e3:.0f} ms; "
          f"throttled: {known_times[-1] * 1e3:.1f} ms")


def test_failures_are_throttled_per_source(by_source: Server) -> None:
    """PER_SOURCE failures from one address, whatever the user names, throttle the address:
    even a right password not yet remembered waits; one remembered still passes."""
    with by_source.http(basic=ALICE) as alice:
        ok(alice.get("/v2.0/networks"))
        for i in range(PER_SOURCE):
            assert _attempts(by_source, f"user-{i}", 1)[0] == [401]
        with by_source.http(basic=BOB) as bob:
            resp = bob.get("/v2.0/networks")
            error(resp, 429, "TooManyRequests")
            assert int(resp.headers["retry-after"]) >= 1
        ok(alice.get("/v2.0/networks"))


def test_long_passwords_are_wrong_passwords(by_user: Server) -> None:
    """bcrypt reads 72 bytes: a longer password is a 401 (never a 500, never a traceback),
    even one whose first 72 bytes are right; `user add` refuses one."""
    password = "p" * 72
    by_user.manage("user", "add", "long", "--password", password, "--project-id", "p-long")
    with by_user.http(basic=("long", password)) as right:
        ok(right.get("/v2.0/networks"))
    for wrong in (password + "x", "y" * 200):
        with by_user.http(basic=("long", wrong)) as client:
            assert client.get("/v2.0/networks").status_code == 401
    with httpx.Client(base_url=by_user.url, auth=("long", "z" * 100)) as channel:
        assert channel.post("/agent-channel/v1/report", json={}).status_code == 401
    assert "Traceback" not in by_user.log_text()
    refused = subprocess.run([str(VENV_BIN / "neutrino"), "--config-file", str(by_user.config),
                              "user", "add", "longer", "--password", "q" * 73],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "72 bytes" in refused.stderr


def test_wrong_passwords_do_not_stall_the_server(unthrottled: Server) -> None:
    """16 clients send wrong passwords (each a bcrypt check) while another makes
    authenticated API calls and agent reports: every one of those is answered, and many
    more of them than of the attackers' (they do not queue behind bcrypt)."""
    unthrottled.add_user(*AGENT_USER, None, "service")
    report = {"agent": {"agent_type": "DHCP agent", "host": "load-host",
                        "binary": "neutrino-dhcp-agent", "topic": "dhcp_agent",
                        "configurations": {}, "applied_revision": 0}}
    stop = threading.Event()
    attack_statuses: list[int] = []
    lock = threading.Lock()

    def attack(index: int) -> None:
        names = ["alice", "bob", f"ghost-{index}"]
        with httpx.Client(base_url=unthrottled.url, timeout=60) as client:
            n = 0
            while not stop.is_set():
                resp = client.get("/v2.0/networks", auth=(names[n % 3], uuid.uuid4().hex))
                n += 1
                with lock:
                    attack_statuses.append(resp.status_code)

    with unthrottled.http(basic=ALICE) as alice, \
            httpx.Client(base_url=unthrottled.url, auth=AGENT_USER, timeout=60) as agent:
        ok(alice.get("/v2.0/networks"))
        ok(agent.post("/agent-channel/v1/report", json=report))
        threads = [threading.Thread(target=attack, args=(i,)) for i in range(ATTACKERS)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # let the attack build up its queue
        latencies: dict[str, list[float]] = {"list": [], "report": [], "version": []}
        statuses: list[int] = []
        deadline = time.monotonic() + LOAD_SECONDS
        with lock:
            attacked_before = len(attack_statuses)
        while time.monotonic() < deadline:
            for kind, call in (("list", lambda: alice.get("/v2.0/networks")),
                               ("report", lambda: agent.post("/agent-channel/v1/report",
                                                             json=report)),
                               ("version", lambda: alice.get("/"))):
                started = time.perf_counter()
                statuses.append(call().status_code)
                latencies[kind].append(time.perf_counter() - started)
        with lock:
            attacked = len(attack_statuses) - attacked_before
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert set(statuses) == {200}
    assert set(attack_statuses) == {401}
    served = sum(len(v) for v in latencies.values())
    for kind, values in latencies.items():
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        print(f"\n{kind}: {len(values)} requests, p50 {statistics.median(values) * 1e3:.1f} ms,"
              f" p99 {p99 * 1e3:.1f} ms", end="")
    print(f"\nwrong passwords checked meanwhile: {attacked} ({attacked / LOAD_SECONDS:.1f}/s)")
    assert served > attacked, (served, attacked)
