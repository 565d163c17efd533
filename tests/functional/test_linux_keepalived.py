"""Real keepalived for one HA router on two "nodes": throwaway namespaces joined by the HA
network (a veth pair made directly in them), each with the router's qr- and qg- devices.

What is asserted is the kernel's state: which namespace holds the VRID's address, the
router's addresses and its default route. Nothing here touches the root namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.l3.keepalived import (
    RELOAD_SIGNAL,
    Address,
    HaPlan,
    Paths,
    daemon,
    health_check_text,
    render,
    vip_address,
)
from neutrino.agent.linux import netns, process
from neutrino.agent.linux.kernel import Route
from tests.support import root_network_snapshot, wait_for

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("keepalived") is None or shutil.which("ping") is None,
    reason="needs root, keepalived and ping (tools/install installs them)")

ROUTER = "7a0c5a3e-1f2b-4c3d-9e8f-0a1b2c3d4e5f"
VRID = 7
HA, QR, QG, GW, VM = "ha-ka", "qr-ka", "qg-ka", "gw-ka", "vm-ka"
GATEWAY_IP = "203.0.113.1"
EXCLUDED = (Address("10.60.0.1/24", QR), Address("203.0.113.101/24", QG),
            Address("203.0.113.50/32", QG))
ROUTER_ADDRESSES = frozenset({vip_address(VRID), *(a.cidr for a in EXCLUDED)})


def sh(*args: str) -> str:
    """Run a command; its output."""
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout


@dataclass
class Node:
    """One node's namespace for the router, and its keepalived's files."""

    ns: str
    ha_cidr: str
    paths: Paths
    daemons: process.Daemons = field(default_factory=lambda: process.Daemons(stop_timeout=5))
    plan: HaPlan | None = None

    @property
    def states(self) -> Path:
        """Where the notify script logs the states keepalived enters."""
        return Path(self.paths.base) / "states"

    def configure(self, **overrides: Any) -> HaPlan:
        """Write keepalived.conf (with a notify script) and the health-check script."""
        notify = Path(self.paths.base) / "notify.sh"
        notify.write_text(f'#!/bin/sh\necho "$3" >> {self.states}\n')
        notify.chmod(0o755)
        fields: dict[str, Any] = {
            "router_id": ROUTER, "vrid": VRID, "ha_device": HA, "ha_cidr": self.ha_cidr,
            "advert_int": 0.2, "excluded": EXCLUDED,
            "routes": (Route("default", GATEWAY_IP, QG),), "notify_script": str(notify)}
        fields.update(overrides)
        self.plan = HaPlan(**fields)
        Path(self.paths.conf).write_text(render(self.plan))
        check = Path(self.paths.health_check)
        check.write_text(health_check_text(self.plan))
        check.chmod(0o755)
        return self.plan

    def start(self) -> int:
        """Start keepalived detached in the namespace, as the agent does; its pid."""
        assert self.plan is not None
        outcome = self.daemons.ensure(daemon(self.plan, self.paths, self.ns))
        assert outcome.started and outcome.pid is not None
        return outcome.pid

    def pids(self) -> list[int]:
        """keepalived's running processes, by its two pid files (parent first)."""
        found = []
        for pid_file in (self.paths.pid, self.paths.vrrp_pid):
            try:
                pid = int(Path(pid_file).read_text().strip())
            except (OSError, ValueError):
                continue
            if process.running(pid, self.paths.conf):
                found.append(pid)
        return found

    def crash(self) -> None:
        """kill -9 of keepalived, both processes at once, giving neither a chance to act:
        both are stopped first (killing the parent alone sends its VRRP process SIGTERM,
        which it handles: priority 0 and the addresses released)."""
        pids = self.pids()
        assert len(pids) == 2, f"keepalived does not run in {self.ns}"
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: all(stopped(pid) for pid in pids), 5, 0.01, "keepalived to stop")
        self._kill(pids)

    def kill_parent(self) -> None:
        """kill -9 of keepalived's parent process only."""
        self._kill(self.pids()[:1])

    def _kill(self, pids: list[int]) -> None:
        assert pids, f"no keepalived runs in {self.ns}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: gone(pids), 5, 0.01, f"keepalived in {self.ns} to die")

    def addresses(self) -> frozenset[str]:
        """Every address in the namespace (CIDRs)."""
        out = sh("ip", "-n", self.ns, "-o", "addr", "show")
        return frozenset(word for line in out.splitlines() for word in line.split()[3:4])

    def held(self) -> frozenset[str]:
        """The router's addresses (the VRID's included) present in the namespace."""
        return ROUTER_ADDRESSES & self.addresses()

    def reload(self) -> None:
        """Signal keepalived to read its configuration again, as the agent does."""
        assert self.plan is not None
        assert self.daemons.ensure(daemon(self.plan, self.paths, self.ns),
                                   reload=RELOAD_SIGNAL).reloaded

    def default_route(self) -> bool:
        """Whether the router's default route is in the namespace."""
        return GATEWAY_IP in sh("ip", "-n", self.ns, "route", "show", "default")

    def state_log(self) -> list[str]:
        """The states keepalived notified, in order."""
        return self.states.read_text().split() if self.states.exists() else []


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    """Nodes a (169.254.192.1) and b (169.254.192.2) on one HA network; both namespaces and
    every keepalived removed after, and checked gone."""
    before = root_network_snapshot()
    process.become_subreaper()  # as the agent: keepalived detaches, and exits to us
    prefix = f"nt-ka-{uuid.uuid4().hex[:6]}"
    made: list[Node] = []
    try:
        for name, address in (("a", "169.254.192.1/18"), ("b", "169.254.192.2/18")):
            base = tmp_path / name
            base.mkdir()
            node = Node(f"{prefix}-{name}", address, Paths(str(base)))
            netns.create(node.ns)
            made.append(node)
        a, b = made
        # Both ends are made in their namespaces: nothing passes through the root namespace.
        sh("ip", "-n", a.ns, "link", "add", HA, "type", "veth", "peer", "name", HA,
           "netns", b.ns)
        for node in made:
            sh("ip", "-n", node.ns, "link", "add", QR, "type", "veth", "peer", "name", VM)
            sh("ip", "-n", node.ns, "link", "add", QG, "type", "veth", "peer", "name", GW)
            for device in (HA, QR, VM, QG, GW, "lo"):
                sh("ip", "-n", node.ns, "link", "set", device, "up")
            sh("ip", "-n", node.ns, "addr", "add", node.ha_cidr, "dev", HA)
        yield a, b
    finally:
        pids = [pid for node in made for pid in node.pids()]
        try:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            wait_for(lambda: gone(pids), 5, 0.01, "keepalived to die")
            # keepalived's scripts (notify, health check) die with it; give them a moment.
            wait_for(lambda: not ours(tmp_path), 10, 0.05, "keepalived's scripts to exit")
        finally:
            for node in made:
                netns.remove(node.ns)
        assert not [ns for ns in netns.names() if ns.startswith(prefix)]
        assert root_network_snapshot() == before


def gone(pids: list[int]) -> bool:
    """Whether the processes are gone, zombies included: keepalived refuses to start while
    its pid file names a zombie (it probes with kill(pid, 0)). As the agent does, this
    process is their subreaper and collects them."""
    process.reap_children()
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def stopped(pid: int) -> bool:
    """Whether a process is stopped by a signal."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2] == "T"


def ours(tmp_path: Path) -> list[str]:
    """Live processes whose command line names a file of this test (keepalived, scripts)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(tmp_path) in text and process.running(int(cmdline.parent.name)):
            found.append(f"{cmdline.parent.name} {text}")
    return found


def holder(a: Node, b: Node) -> Node | None:
    """The node holding all of the router's addresses and its default route, provided the
    other holds none of them; None otherwise."""
    held = {node.ns: node.held() for node in (a, b)}
    for node, other in ((a, b), (b, a)):
        if held[node.ns] == ROUTER_ADDRESSES and not held[other.ns] and node.default_route() \
                and not other.default_route():
            return node
    return None


def report(capsys: pytest.CaptureFixture[str], message: str) -> None:
    """Print a measurement even when pytest captures output."""
    with capsys.disabled():
        print(f"\n  {message}")


def steady(a: Node, b: Node, expected: Node, seconds: float) -> None:
    """`expected` holds the router, alone, for the whole of `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert holder(a, b) is expected, (a.held(), b.held(), a.state_log(), b.state_log())
        time.sleep(0.05)


def test_a_crash_fails_over_and_the_node_back_does_not_preempt(
        nodes: tuple[Node, Node], capsys: pytest.CaptureFixture[str]) -> None:
    """VRRPv3 at 0.2 s: one node holds the router; kill -9 of its keepalived moves it to the
    other within the master-down interval (3 adverts and a skew); the crashed node keeps its
    addresses until its keepalived is back, which removes them and, although its priority
    is higher, stays backup (nopreempt)."""
    a, b = nodes
    assert a.configure(priority=100).version == 3
    b.configure(priority=50)
    started = time.monotonic()
    a.start()
    wait_for(lambda: holder(a, b) is a, 5, 0.01, "a to hold the router")
    report(capsys, f"a primary {time.monotonic() - started:.2f} s after its start")
    b.start()
    steady(a, b, a, 2.0)  # ten adverts: b saw them and stays backup

    a.crash()
    crashed = time.monotonic()
    wait_for(lambda: b.held() == ROUTER_ADDRESSES and b.default_route(), 3, 0.01,
             "b to take the router")
    failover = time.monotonic() - crashed
    report(capsys, f"failover after kill -9 of keepalived (advert_int 0.2): {failover:.2f} s")
    # The master-down interval: 3 adverts and the skew, 0.6 s + (256 - 50) / 256 * 0.2 s.
    assert failover < 1.5
    assert a.held() == ROUTER_ADDRESSES  # nobody removed them on the crashed node

    a.start()
    wait_for(lambda: a.state_log()[-1:] == ["BACKUP"] and not a.held(), 3, 0.01,
             "a's new keepalived to remove its stale addresses")
    steady(a, b, b, 2.0)
    assert a.state_log() == ["BACKUP", "MASTER", "BACKUP"]
    assert b.state_log() == ["BACKUP", "MASTER"]


def test_a_killed_parent_takes_its_vrrp_process_along(
        nodes: tuple[Node, Node], capsys: pytest.CaptureFixture[str]) -> None:
    """kill -9 of keepalived's parent alone: its VRRP process gets its parent-death signal,
    releases the addresses and sends priority 0, so the other node takes over at once."""
    a, b = nodes
    a.configure()
    b.configure()
    a.start()
    wait_for(lambda: holder(a, b) is a, 5, 0.01, "a to hold the router")
    b.start()
    steady(a, b, a, 1.0)
    a.kill_parent()
    killed = time.monotonic()
    wait_for(lambda: holder(a, b) is b, 3, 0.01, "b alone to hold the router")
    elapsed = time.monotonic() - killed
    report(capsys, f"handover after kill -9 of keepalived's parent: {elapsed:.2f} s")
    assert elapsed < 0.75  # no master-down interval to wait for
    wait_for(lambda: not a.pids(), 5, 0.05, "a's VRRP process to exit")


def test_a_reload_moves_addresses_without_a_transition(nodes: tuple[Node, Node]) -> None:
    """SIGHUP after a floating IP is added and another removed: the primary gains and
    loses them, and neither node changes state (untracked addresses)."""
    a, b = nodes
    a.configure()
    b.configure()
    a.start()
    wait_for(lambda: holder(a, b) is a, 5, 0.01, "a to hold the router")
    b.start()
    steady(a, b, a, 1.0)
    added, removed = Address("203.0.113.60/32", QG), EXCLUDED[2]
    assert removed.cidr == "203.0.113.50/32"
    for node in (a, b):
        node.configure(excluded=(*EXCLUDED[:2], added))
        node.reload()
    wait_for(lambda: added.cidr in a.addresses() and removed.cidr not in a.addresses(), 3,
             0.01, "a to take the new floating IP and drop the old one")
    time.sleep(1.0)  # five adverts
    assert added.cidr not in b.addresses() and not b.held()
    assert (a.state_log(), b.state_log()) == (["BACKUP", "MASTER"], ["BACKUP"])


@pytest.mark.parametrize(("advert_int", "password_b", "holders"), [
    (1, "sesame01", 1), (1, "other001", 2), (0.5, "other001", 1)],
    ids=["vrrpv2-same-password", "vrrpv2-other-password", "vrrpv3-password-ignored"])
def test_passwords(nodes: tuple[Node, Node], advert_int: float, password_b: str,
                   holders: int) -> None:
    """Under VRRPv2 a node drops adverts with another password, so both become primary;
    under VRRPv3 no password is rendered and the nodes agree whatever they were given."""
    a, b = nodes
    a.configure(advert_int=advert_int, auth_password="sesame01")
    b.configure(advert_int=advert_int, auth_password=password_b)
    a.start()
    b.start()
    wait_for(lambda: a.held() or b.held(), 6, 0.05, "a primary node")
    # Past the master-down interval of both (3 adverts and a skew) and some adverts more.
    time.sleep(4 * advert_int + 1)
    assert [bool(n.held()) for n in (a, b)].count(True) == holders
    if holders == 1:
        assert holder(a, b) is not None


def test_the_health_check_moves_the_router_to_the_node_reaching_its_gateway(
        nodes: tuple[Node, Node]) -> None:
    """Only b reaches the gateway: a, primary first, fails its check twice and goes to
    FAULT, b takes the router and keeps it; a, healthy again as a node without the router,
    comes back as backup."""
    a, b = nodes
    sh("ip", "-n", b.ns, "addr", "add", f"{GATEWAY_IP}/24", "dev", GW)
    for node in (a, b):
        plan = node.configure(health_check_interval=1,
                              health_check_script=node.paths.health_check)
        assert plan.health_checked
    a.start()
    wait_for(lambda: holder(a, b) is a, 5, 0.01, "a to hold the router")
    b.start()
    wait_for(lambda: holder(a, b) is b, 10, 0.05, "b to take the router")
    assert "FAULT" in a.state_log()
    wait_for(lambda: a.state_log()[-1:] == ["BACKUP"], 6, 0.05, "a back to backup")
    steady(a, b, b, 1.5)


def test_every_rendering_passes_keepalived_s_configuration_check(tmp_path: Path) -> None:
    """`keepalived -t` in a namespace with the router's devices accepts each shape of
    configuration without a warning (it exits 0 only then); a VRRPv2 file with a
    fractional interval, which keepalived rounds, shows the check is not blind."""
    ns = f"nt-ka-{uuid.uuid4().hex[:6]}-t"
    netns.create(ns)
    try:
        sh("ip", "-n", ns, "link", "add", HA, "type", "veth", "peer", "name", QG)
        sh("ip", "-n", ns, "link", "add", QR, "type", "veth", "peer", "name", VM)
        for device in (HA, QG, QR, VM):
            sh("ip", "-n", ns, "link", "set", device, "up")
        sh("ip", "-n", ns, "addr", "add", "169.254.192.5/18", "dev", HA)
        script = tmp_path / "script.sh"
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)
        base: dict[str, Any] = {
            "router_id": ROUTER, "vrid": VRID, "ha_device": HA, "ha_cidr": "169.254.192.5/18",
            "excluded": (*EXCLUDED, Address("fe80::1/64", QR), Address("169.254.0.99/24", HA)),
            "routes": (Route("default", GATEWAY_IP, QG), Route("198.51.100.0/24", None, QG),
                       Route("172.20.0.0/16", "10.60.0.254", QR))}
        shapes: list[dict[str, Any]] = [
            {}, {"auth_password": "a-long-password", "advert_int": 1},
            {"advert_int": 0.2, "auth_password": "ignored"},
            {"health_check_interval": 2, "health_check_script": str(script),
             "notify_script": str(script), "conntrackd_script": str(script)},
            {"routes": ()}]
        for number, shape in enumerate(shapes):
            conf = tmp_path / f"keepalived-{number}.conf"
            conf.write_text(render(HaPlan(**{**base, **shape})))
            result = subprocess.run(["nsenter", f"--net={netns.path(ns)}", "--", "keepalived",
                                     "-t", "-f", str(conf)], capture_output=True, text=True,
                                    timeout=30)
            assert result.returncode == 0 and not result.stderr, f"{shape}: {result.stderr}"
        rounded = tmp_path / "rounded.conf"
        rounded.write_text(render(HaPlan(**base, advert_int=1)).replace(
            "advert_int 1", "advert_int 0.2"))
        result = subprocess.run(["nsenter", f"--net={netns.path(ns)}", "--", "keepalived",
                                 "-t", "-f", str(rounded)], capture_output=True, text=True,
                                timeout=30)
        assert result.returncode != 0 and "must be an integer" in result.stderr
    finally:
        netns.remove(ns)
    assert ns not in netns.names()
