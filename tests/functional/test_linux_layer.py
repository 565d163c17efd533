"""The shared Linux layer in throwaway namespaces: namespaces, the Kernel, daemons.

Every test works in namespaces of its own, removed afterwards; the root namespace's network
must be exactly as it was (checked per test and for the whole run).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.agent.linux import netns, process
from neutrino.agent.linux.kernel import (
    AlreadyExists,
    Kernel,
    KernelError,
    Neighbour,
    NotFound,
    NotOwned,
    Route,
    Rule,
    translate,
)
from tests.support import root_network_snapshot

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make namespaces")


@pytest.fixture
def ns() -> Iterator[str]:
    """A namespace of the test's own (made with the layer under test), removed afterwards."""
    before = root_network_snapshot()
    name = f"ntt-{uuid.uuid4().hex[:8]}"
    assert netns.create(name) is True
    try:
        yield name
    finally:
        netns.remove(name)
        assert root_network_snapshot() == before


def test_namespaces_are_made_and_removed_from_any_thread(ns: str) -> None:
    """A namespace made from a worker thread exists (loopback up), the thread is back in its
    own namespace, and removing it twice is harmless."""
    own = os.readlink("/proc/thread-self/ns/net")
    name = f"ntt-{uuid.uuid4().hex[:8]}"
    made: list[bool] = []
    worker = threading.Thread(target=lambda: made.append(netns.create(name)))
    worker.start()
    worker.join()
    try:
        assert made == [True] and netns.exists(name) and netns.create(name) is False
        assert Kernel(name, owned=True).links()["lo"].up
        assert os.readlink("/proc/thread-self/ns/net") == own
        with netns.entered(name):
            assert os.readlink("/proc/thread-self/ns/net") != own
        assert os.readlink("/proc/thread-self/ns/net") == own
    finally:
        assert netns.remove(name) is True
    assert netns.remove(name) is False and not netns.exists(name)
    with pytest.raises(netns.NamespaceError):
        netns.iproute(name)


def test_links_addresses_routes_rules_neighbours_and_a_second_pass(ns: str) -> None:
    """Each ensure makes exactly what it is given, and says nothing changed the second time."""
    k = Kernel(ns, owned=True)
    peer = f"ntt-{uuid.uuid4().hex[:8]}"
    netns.create(peer)
    try:
        assert k.ensure_veth("qr-test0", "qr-peer0", peer) is True
        assert k.ensure_veth("qr-test0", "qr-peer0", peer) is False
        assert "qr-peer0" in Kernel(peer, owned=True).links()
        assert k.ensure_link("qr-test0", up=True, mac="fa:16:3e:00:00:01", mtu=1450) is True
        assert k.ensure_link("qr-test0", up=True, mac="fa:16:3e:00:00:01", mtu=1450) is False
        link = k.links()["qr-test0"]
        assert (link.up, link.mac, link.mtu) == (True, "fa:16:3e:00:00:01", 1450)

        wanted = {"10.5.0.1/24", "10.6.0.1/24"}
        assert k.ensure_addresses("qr-test0", wanted) is True
        assert k.ensure_addresses("qr-test0", wanted) is False
        assert k.addresses("qr-test0") == wanted
        assert k.ensure_addresses("qr-test0", {"10.5.0.1/24"}) is True
        assert k.addresses("qr-test0") == {"10.5.0.1/24"}

        routes = {Route("default", "10.5.0.254"), Route("172.16.0.0/16", "10.5.0.9"),
                  Route("default", "10.5.0.253", table=100)}
        assert k.ensure_routes(routes, tables=(254, 100)) is True
        assert k.ensure_routes(routes, tables=(254, 100)) is False
        assert k.routes() == {Route("default", "10.5.0.254", "qr-test0"),
                              Route("172.16.0.0/16", "10.5.0.9", "qr-test0")}
        # Connected routes made by the kernel are not ours and stay.
        assert k.ensure_routes({Route("default", "10.5.0.254")}, tables=(254, 100)) is True
        main = subprocess.run(["ip", "-n", ns, "route", "show"], capture_output=True,
                              text=True, check=True).stdout
        assert "10.5.0.0/24 dev qr-test0" in main and "172.16.0.0/16" not in main
        assert k.routes(100) == set()

        rules = {Rule(1000, 100, src="10.5.0.0/24"), Rule(1001, 100, iif="qr-test0")}
        assert k.ensure_rules(rules) is True
        assert k.ensure_rules(rules) is False
        assert k.rules() == rules
        assert k.ensure_rules(set()) is True and k.rules() == set()

        neighbour = Neighbour("qr-test0", "10.5.0.20", "fa:16:3e:00:00:20")
        assert k.ensure_neighbours("qr-test0", {neighbour}) is True
        assert k.ensure_neighbours("qr-test0", {neighbour}) is False
        assert k.neighbours("qr-test0") == {neighbour}

        sysctls = {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.arp_ignore": "1"}
        assert k.ensure_sysctls(sysctls) is True
        assert k.ensure_sysctls(sysctls) is False
        assert k.sysctls(sysctls) == sysctls
        assert k.delete("qr-test0") is True and k.delete("qr-test0") is False
    finally:
        netns.remove(peer)


def test_sysctls_are_per_namespace(ns: str) -> None:
    """Forwarding turned on in one namespace is off in another and in the root's."""
    root = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    Kernel(ns, owned=True).ensure_sysctls({"net.ipv4.ip_forward": "1"})
    other = f"ntt-{uuid.uuid4().hex[:8]}"
    netns.create(other)
    try:
        assert Kernel(other, owned=True).sysctls(["net.ipv4.ip_forward"]) == {
            "net.ipv4.ip_forward": "0"}
    finally:
        netns.remove(other)
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == root


def test_guards_and_the_errno_map(ns: str) -> None:
    """In a namespace neutrino did not make, foreign links, routes, rules and sysctls are
    refused; kernel error codes become our exceptions."""
    host = Kernel(ns)  # a host's namespace: only prefixed links are ours
    subprocess.run(["ip", "-n", ns, "link", "add", "eth7", "type", "veth", "peer", "name",
                    "eth8"], check=True)
    for attempt in (lambda: host.delete("eth7"), lambda: host.ensure_link("eth7", up=True),
                    lambda: host.ensure_addresses("eth7", ["10.1.1.1/24"]),
                    lambda: host.ensure_routes([Route("default", "10.1.1.254")]),
                    lambda: host.ensure_rules([Rule(5, 100)]),
                    lambda: host.ensure_sysctls({"net.ipv4.ip_forward": "1"})):
        with pytest.raises(NotOwned):
            attempt()
    assert Kernel(ns, owned=True).links()["eth7"].up is False  # left as it was
    with pytest.raises(NotOwned):
        Kernel(None, owned=True).ensure_sysctls({"net.ipv4.ip_forward": "1"})
    with pytest.raises(NotFound):
        host.addresses("tapnothere0")
    with pytest.raises(NotFound):
        Kernel("ntt-no-such-namespace").links()
    assert isinstance(translate(OSError(17, "File exists"), "x"), AlreadyExists)
    assert type(translate(OSError(1, "Operation not permitted"), "x")) is KernelError


def _daemon(tmp_path: Path, seconds: int) -> process.Daemon:
    """A daemon that detaches and writes its pid file, as dnsmasq does: `sleep` started in
    the background by a shell that exits."""
    start = f"exec sleep {seconds} >/dev/null 2>&1 </dev/null & echo $! > {tmp_path}/d.pid"
    return process.Daemon("sleep daemon", ("/bin/sh", "-c", start), f"{tmp_path}/d.pid",
                          "sleep")


def _running_as(tmp_path: Path, seconds: int) -> process.Daemon:
    """The same daemon described by the command line it runs with once detached."""
    return process.Daemon("sleep daemon", ("/bin/sleep", str(seconds)), f"{tmp_path}/d.pid",
                          "sleep")


def test_daemons_start_adopt_restart_reload_respawn_and_stop(tmp_path: Path) -> None:
    """A daemon is started once, adopted by a new manager (an agent restart), restarted when
    its command line changes, signalled to reload, found dead, and stopped."""
    manager = process.Daemons()
    first = manager.ensure(_daemon(tmp_path, 300))
    assert first.started and process.running(first.pid, "sleep")
    adopted = process.Daemons().ensure(_running_as(tmp_path, 300))
    assert not adopted.changed and adopted.pid == first.pid
    restarted = manager.ensure(_daemon(tmp_path, 301))  # its command line changed
    assert restarted.restarted and restarted.pid != first.pid
    assert not process.running(first.pid, "sleep")
    # Reload: the signal reaches the running daemon (SIGCONT is harmless to sleep).
    reloaded = manager.ensure(_running_as(tmp_path, 301), reload=signal.SIGCONT)
    assert reloaded.reloaded and reloaded.pid == restarted.pid
    # Killed: found dead by the cheap look, started again by the next ensure.
    assert reloaded.pid is not None
    os.kill(reloaded.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while process.running(reloaded.pid) and time.monotonic() < deadline:
        process.reap_children()
        time.sleep(0.02)
    assert manager.dead() == {f"{tmp_path}/d.pid"}
    again = manager.ensure(_daemon(tmp_path, 301))
    assert again.started and process.running(again.pid, "sleep")
    assert manager.stop(_daemon(tmp_path, 301)) is True
    assert not process.running(again.pid, "sleep")
    assert manager.stop(_daemon(tmp_path, 301)) is False


def test_reaping_never_takes_a_waiting_threads_child() -> None:
    """Collecting exited children while other threads wait for commands leaves each
    thread its own command's exit status."""
    results: list[int] = []

    def waiter() -> None:
        for _ in range(20):
            results.append(process.run(["sh", "-c", "exit 3"]).returncode)

    threads = [threading.Thread(target=waiter) for _ in range(4)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        process.reap_children()
    assert results == [3] * 80

