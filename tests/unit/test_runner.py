"""The agent's loops against an in-memory host and server: end states, not calls."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from neutrino.agent.contract import Key, Status
from neutrino.agent.runner import DONE, ERROR, PENDING, AgentRunner
from neutrino.registry import DHCP


def net(network_id: str, ports: int = 1) -> dict[str, Any]:
    return {"id": network_id, "ports": [f"p{i}" for i in range(ports)]}


def key(network_id: str) -> Key:
    return ("network", network_id)


def answer(revision: int, states: dict[str, dict[str, Any]], removed: tuple[str, ...] = (),
           snapshot: bool = False) -> dict[str, Any]:
    return {"revision": revision, "snapshot": snapshot,
            "states": [{"kind": "network", "id": i, "state": s} for i, s in states.items()],
            "removed": [["network", i] for i in removed]}


class Host:
    """A fake host: networks it has, how often it changed, and failures to inject."""

    kind = DHCP
    key_kinds = frozenset({"network"})

    def __init__(self, leftovers: dict[str, dict[str, Any]] | None = None) -> None:
        self.networks: dict[str, dict[str, Any]] = dict(leftovers or {})
        self.changes = 0
        self.fail: set[str] = set()
        self.broken: set[str] = set()  # driver calls that raise: present, status, drifted
        self.slow: dict[str, float] = {}

    def configurations(self) -> dict[str, Any]:
        return {"networks": len(self.networks)}

    def apply(self, k: Key, state: dict[str, Any] | None) -> bool:
        network_id = k[1]
        time.sleep(self.slow.get(network_id, 0))
        if network_id in self.fail:
            raise RuntimeError("device busy")
        current = self.networks.get(network_id)
        if state is None and current is not None:
            del self.networks[network_id]
        elif state is not None and current != state:
            self.networks[network_id] = state
        else:
            return False
        self.changes += 1
        return True

    def _maybe_break(self, call: str) -> None:
        if call in self.broken:
            raise KeyError(call)

    def present(self) -> set[Key]:
        self._maybe_break("present")
        return {key(n) for n in self.networks}

    def status(self) -> Status:
        self._maybe_break("status")
        return Status()

    def drifted(self) -> set[Key]:
        self._maybe_break("drifted")
        return set()


class Server:
    """The agent channel, in memory: answers queued by the test, reports recorded."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.answers: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def report(self, agent: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.reports.append(agent)
        return {"agent": {"id": "a1"}, "revision": 0}

    def watch(self, agent_type: str, host: str, since: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + 0.2  # a short long poll
        while time.monotonic() < deadline:
            with self.lock:
                if self.answers:
                    return self.answers.pop(0)
            time.sleep(0.01)
        return answer(since, {})

    def status(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"updated": 0}


def runner(host: Host, server: Server | None = None, **kwargs: Any) -> AgentRunner:
    options = {"report_interval": 0.05, "availability_zone": None, "polling_interval": 0.05,
               "resync_interval": 60, "failure_limit": 3, **kwargs}
    return AgentRunner("h", host, server or Server(), **options)  # type: ignore[arg-type]


def wait_until(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_snapshot_replaces_everything_and_second_pass_changes_nothing() -> None:
    """A snapshot removes leftovers; a full pass afterwards finds nothing to do."""
    host = Host(leftovers={"stale": net("stale")})
    r = runner(host)
    r.absorb(answer(7, {"n1": net("n1"), "n2": net("n2", 3)}, snapshot=True))
    assert r.reconcile_once() == (3, 0)
    assert host.networks == {"n1": net("n1"), "n2": net("n2", 3)}
    assert r.state.applied == 7
    r.mark_all_dirty()
    assert r.reconcile_once() == (0, 0)
    assert r.progress() == {"network": {"done": 2, "pending": 0, "failing": 0}}


def test_incremental_changes_and_removals() -> None:
    """A watch answer replaces the keys it names and drops the removed ones."""
    host = Host()
    r = runner(host)
    r.absorb(answer(3, {"n1": net("n1"), "n2": net("n2")}, snapshot=True))
    r.reconcile_once()
    r.absorb(answer(5, {"n2": net("n2", 2)}, removed=("n1",)))
    r.reconcile_once()
    assert host.networks == {"n2": net("n2", 2)}
    assert r.state.applied == 5
    assert key("n1") not in r.state.keys


def test_a_failing_key_backs_off_alone_and_progress_moves() -> None:
    """One key failing is an error with its message and its own backoff; the others are
    applied, `applied` moves, and the key is applied once it works again."""
    now = [100.0]
    host = Host()
    host.fail = {"bad"}
    r = runner(host, clock=lambda: now[0])
    r.absorb(answer(9, {"good": net("good"), "bad": net("bad")}, snapshot=True))
    assert r.reconcile_once() == (1, 1)
    assert host.networks == {"good": net("good")}
    bad = r.state.keys[key("bad")]
    assert (bad.state, bad.message, bad.attempts) == (ERROR, "RuntimeError: device busy", 1)
    assert r.state.applied == 9  # failing keys are reported, not waited for
    assert r.progress() == {"network": {"done": 1, "pending": 0, "failing": 1}}
    # A new key arrives while "bad" backs off: served at once, "bad" not retried yet.
    r.absorb(answer(10, {"new": net("new")}))
    assert r.reconcile_once() == (1, 0)
    assert "new" in host.networks and r.state.keys[key("bad")].attempts == 1
    host.fail = set()
    now[0] += 1.0  # past the backoff
    assert r.reconcile_once() == (1, 0)
    assert set(host.networks) == {"good", "bad", "new"}
    assert r.state.keys[key("bad")].state == DONE and r.state.applied == 10


def test_a_new_state_ends_a_keys_backoff() -> None:
    """A key given a new desired state is tried at once, even while backing off."""
    now = [0.0]
    host = Host()
    host.fail = {"n"}
    r = runner(host, clock=lambda: now[0])
    r.absorb(answer(1, {"n": net("n")}, snapshot=True))
    r.reconcile_once()
    host.fail = set()
    r.absorb(answer(2, {"n": net("n", 2)}))
    assert r.state.keys[key("n")].state == PENDING
    assert r.reconcile_once() == (1, 0) and host.networks["n"] == net("n", 2)


def test_a_change_arriving_mid_pass_goes_before_the_rest_of_the_pass() -> None:
    """A network changed while a long pass runs is applied as soon as a worker is free, not
    at the end of the pass; every network is still applied exactly once."""
    host = Host()
    r = runner(host, workers=1)
    r.absorb(answer(1, {f"n{i:02d}": net(f"n{i:02d}") for i in range(40)}, snapshot=True))
    order: list[str] = []
    apply = host.apply

    def recording(k: Key, state: dict[str, Any] | None) -> bool:
        order.append(k[1])
        if k[1] == "n00":  # the watch delivers a new network meanwhile
            r.absorb(answer(2, {"new": net("new")}))
        return apply(k, state)

    host.apply = recording  # type: ignore[method-assign]
    assert r.reconcile_once() == (41, 0)
    assert order.index("new") == 1  # right after the key being applied
    assert sorted(order) == sorted([f"n{i:02d}" for i in range(40)] + ["new"])
    assert host.networks["new"] == net("new") and r.state.applied == 2


def test_a_poison_key_does_not_delay_other_keys() -> None:
    """With one network failing forever, a new network is applied as soon as it arrives
    (the old loop slept up to 10 s after any failed pass, deaf to new work)."""
    host, server = Host(), Server()
    host.fail = {"poison"}
    r = runner(host, server)
    server.answers.append(answer(1, {"poison": net("poison")}, snapshot=True))
    r.start()
    try:
        wait_until(lambda: r.state.keys.get(key("poison")) is not None
                   and r.state.keys[key("poison")].attempts >= 4)  # backing off ~1.6 s now
        started = time.monotonic()
        server.answers.append(answer(2, {"fresh": net("fresh")}))
        wait_until(lambda: "fresh" in host.networks)
        # The old loop slept for the failed pass's backoff first (up to 10 s); the usual
        # port-to-served p99 is ~0.2 s with the real data plane.
        assert time.monotonic() - started < 1.0
        wait_until(lambda: any(rep["configurations"]["resources_status"].get("network")
                               == {"done": 1, "pending": 0, "failing": 1}
                               for rep in server.reports))
    finally:
        r.stop()
    assert r.fatal is None


@pytest.mark.parametrize("call", ["present", "drifted", "status"])
def test_a_driver_call_failing_in_a_loop_stops_the_agent(call: str) -> None:
    """A driver call that keeps failing in a loop (the reconcile loop's full pass, the look
    for drift, its status read) ends the agent: heartbeats stop, so the server fails it
    over."""
    host, server = Host(), Server()
    r = runner(host, server, resync_interval=0.05 if call == "present" else 60)
    server.answers.append(answer(1, {"n": net("n")}, snapshot=True))
    r.start()
    try:
        wait_until(lambda: "n" in host.networks)
        host.broken = {call}
        wait_until(lambda: r.fatal is not None, timeout=20)
        reports = len(server.reports)
        time.sleep(0.3)
        assert len(server.reports) == reports  # no heartbeat after giving up
    finally:
        r.stop()
    loop = "reconcile" if call == "present" else "look"
    assert f"the {loop} loop failed" in (r.fatal or "")


def test_a_malformed_watch_answer_that_repeats_stops_the_agent() -> None:
    """The watch loop is supervised too: an answer it cannot absorb (here, no `states`)
    is logged and retried; repeated, the agent gives up instead of serving stale state."""
    host, server = Host(), Server()
    r = runner(host, server)
    server.answers.extend([{"revision": 3, "networks": []}] * 5)
    r.start()
    try:
        wait_until(lambda: r.fatal is not None, timeout=20)
    finally:
        r.stop()
    assert "watch loop failed" in (r.fatal or "")


class StuckLook(Host):
    """A host whose look for drift blocks until `release` (a netlink read that hangs)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def drifted(self) -> set[Key]:
        self.release.wait(10)
        return set()


@pytest.mark.parametrize(("stuck", "reason"), [
    ("apply", "applying network stuck has not returned"),
    ("look", "the look for drift has not returned")])
def test_a_stuck_driver_call_stops_the_heartbeats(stuck: str, reason: str) -> None:
    """A driver call that never returns, an apply or the look for drift (in a thread of its
    own), is noticed by the heartbeat: the agent stops instead of reporting while it no
    longer applies, repairs drift or sends statuses."""
    host = StuckLook() if stuck == "look" else Host()
    host.slow = {"stuck": 3.0} if stuck == "apply" else {}
    server = Server()
    r = runner(host, server, stall_timeout=0.5)
    server.answers.append(answer(1, {"stuck": net("stuck")}, snapshot=True))
    r.start()
    try:
        wait_until(lambda: r.fatal is not None, timeout=10)
    finally:
        if isinstance(host, StuckLook):
            host.release.set()
        r.stop()
    assert reason in (r.fatal or "")


def test_full_passes_are_counted_and_one_that_found_work_says_so() -> None:
    """The periodic pass's figures: how many ran, how many found something to change."""
    host = Host()
    r = runner(host)
    r.absorb(answer(1, {"n": net("n")}, snapshot=True))
    r.reconcile_once()
    r.mark_all_dirty()
    changed, failed = r.reconcile_once()
    r._count_pass(changed, failed, 0.1)
    host.networks["n"] = net("n", 5)  # the host drifted
    r.mark_all_dirty()
    changed, failed = r.reconcile_once()
    r._count_pass(changed, failed, 0.1)
    assert r.configurations()["full_passes"] == {"count": 2, "with_changes": 1,
                                                 "last_changed": 1}


def test_host_events_apply_their_keys_at_once() -> None:
    """A driver that reports host events (a tap appearing) gets that key applied without
    waiting for the next look for drift."""
    host, server = Host(), Server()
    seen = threading.Event()

    class Eventful(Host):
        def events(self, notify: Any, stop: threading.Event) -> None:
            seen.wait(5)
            self.networks.pop("n", None)  # the host changed under the agent
            notify({key("n"), key("unknown")})
            stop.wait()

    host = Eventful()
    r = runner(host, server, polling_interval=60, resync_interval=60)
    server.answers.append(answer(1, {"n": net("n")}, snapshot=True))
    r.start()
    try:
        wait_until(lambda: "n" in host.networks)
        seen.set()
        wait_until(lambda: host.changes >= 2, timeout=2)  # applied again, long before a poll
    finally:
        r.stop()
    assert "unknown" not in host.networks and r.fatal is None


def test_drift_is_looked_for_while_a_stream_of_changes_keeps_the_pass_going() -> None:
    """A key the host lost is found and applied again within a few polling intervals even
    while the watch keeps delivering changes (a cold start's ports turning ACTIVE), so the
    reconciler never runs out of work; it used to look for drift only between passes."""
    streaming = threading.Event()
    streaming.set()

    class Drifting(Host):
        def drifted(self) -> set[Key]:
            return {key("lost")} if "lost" not in self.networks else set()

    host, server = Drifting(), Server()
    r = runner(host, server, workers=1, polling_interval=0.1)
    apply = host.apply
    revision = [2]

    def streaming_apply(k: Key, state: dict[str, Any] | None) -> bool:
        if k[1] == "busy" and streaming.is_set():
            time.sleep(0.01)
            revision[0] += 1  # the busy network changes again as it is applied
            r.absorb(answer(revision[0], {"busy": net("busy", revision[0])}))
        return apply(k, state)

    host.apply = streaming_apply  # type: ignore[method-assign]
    server.answers.append(answer(1, {"lost": net("lost"), "busy": net("busy")},
                                 snapshot=True))
    r.start()
    try:
        wait_until(lambda: "lost" in host.networks and revision[0] > 10)
        del host.networks["lost"]  # the host lost it while the stream goes on
        at = revision[0]
        wait_until(lambda: "lost" in host.networks, timeout=3)
        assert revision[0] > at  # the stream went on meanwhile
    finally:
        streaming.clear()
        r.stop()
    assert r.fatal is None


def test_a_slow_look_for_drift_does_not_hold_the_workers() -> None:
    """Keys go on being applied while the driver's look for drift is slow (reading a host
    of a thousand links under load): the look used to run in the reconciler's thread, and
    the workers sat idle until it returned."""
    looking, release = threading.Event(), threading.Event()
    applied_when_looking: list[int] = []

    class SlowLook(Host):
        def drifted(self) -> set[Key]:
            if not looking.is_set():
                applied_when_looking.append(len(self.networks))
                looking.set()
                release.wait(10)
            return set()

    host = SlowLook()
    host.slow = {f"k{i:02d}": 0.02 for i in range(40)}
    r = runner(host, workers=2, polling_interval=0.05)
    r.start()
    try:
        r.absorb(answer(1, {f"k{i:02d}": net(f"k{i:02d}") for i in range(40)},
                        snapshot=True))
        looking.wait(5)
        wait_until(lambda: len(host.networks) == 40, timeout=5)  # the look still held
        assert not release.is_set() and applied_when_looking[0] < 40
    finally:
        release.set()
        r.stop()
    assert r.fatal is None


def test_a_slow_key_holds_only_its_own_worker() -> None:
    """While one key takes long (a daemon starting), the other workers go on through the
    rest of the pass instead of waiting for it at the end of a batch."""
    host = Host()
    host.slow = {"a-slow": 0.5}
    r = runner(host, workers=2)
    finished: dict[str, float] = {}
    apply = host.apply

    def timed(k: Key, state: dict[str, Any] | None) -> bool:
        did = apply(k, state)
        finished[k[1]] = time.monotonic()
        return did

    host.apply = timed  # type: ignore[method-assign]
    r.absorb(answer(1, {"a-slow": net("a-slow"),
                        **{f"q{i:02d}": net(f"q{i:02d}") for i in range(20)}}, snapshot=True))
    assert r.reconcile_once() == (21, 0)
    assert max(finished[f"q{i:02d}"] for i in range(20)) < finished["a-slow"]
