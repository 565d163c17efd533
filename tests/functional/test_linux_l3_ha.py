"""HA routers with real keepalived, through the L3 agent's driver on two throwaway hosts.

Two host namespaces hold the bridges the L2 agent would make (a tenant network, the
external network and the HA network); the tenant and external bridges are joined to their
twins on the other host by a veth pair, the HA bridges through each host's `ul0` uplink to
a switch namespace (the link the drivers track: cut, it partitions that host alone); a VM
sits on the tenant network, an "outside" namespace on the external one. Each host's driver
builds the same HA router; keepalived picks the host that serves it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.l3.driver import RouterDriver
from neutrino.agent.l3.plan import FENCE_TABLE
from neutrino.agent.linux import netns
from neutrino.agent.linux.kernel import Kernel, Route
from neutrino.cmd.common import load_config
from tests.support import root_network_snapshot, wait_for

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("keepalived") is None or shutil.which("nft") is None,
    reason="needs root, keepalived and nftables (tools/install installs them)")

ROUTER = "3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
IFACE = "21111111-2222-4333-8444-555555555555"
GATEWAY = "26666666-7777-4888-9999-aaaaaaaaaaaa"
HA_PORTS = {"h1": "3aaaaaaa-1111-4111-8111-111111111111",
            "h2": "3bbbbbbb-2222-4222-8222-222222222222"}
HA_IPS = {"h1": "169.254.192.1", "h2": "169.254.192.2"}
VRID = 7
ROUTER_ADDRESSES = {"10.60.0.1/24", "203.0.113.101/24"}


def state(host: str) -> dict[str, Any]:
    """The router as the server sends it to `host`'s L3 agent."""
    return {"id": ROUTER, "admin_state_up": True, "routes": [],
            "interfaces": [{"id": IFACE, "mac_address": "fa:16:3e:bb:00:01", "mtu": 1450,
                            "network_id": "n1", "fixed_ips": [{
                                "subnet_id": "s1", "ip_address": "10.60.0.1",
                                "cidr": "10.60.0.0/24", "gateway_ip": "10.60.0.1"}]}],
            "gateway": {"id": GATEWAY, "mac_address": "fa:16:3e:bb:00:02", "mtu": 1500,
                        "network_id": "ext", "enable_snat": True, "fixed_ips": [{
                            "subnet_id": "s2", "ip_address": "203.0.113.101",
                            "cidr": "203.0.113.0/24", "gateway_ip": "203.0.113.1"}]},
            "floatingips": [],
            "ha": {"vr_id": VRID, "peers": [ip for h, ip in HA_IPS.items() if h != host],
                   "port": {
                "id": HA_PORTS[host], "mac_address": f"fa:16:3e:cc:00:0{host[-1]}",
                "mtu": 1500, "network_id": "ha", "fixed_ips": [{
                    "subnet_id": "s3", "ip_address": HA_IPS[host],
                    "cidr": "169.254.192.0/18", "gateway_ip": None}]}}}


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Hosts h1 and h2 with twin bridges, a VM (10.60.0.10) and outside (203.0.113.1), and
    a driver per host."""
    before = root_network_snapshot()
    tag = uuid.uuid4().hex[:6]
    hosts = {"h1": f"ntha1{tag}", "h2": f"ntha2{tag}"}
    vm, outside, switch = f"nthav{tag}", f"nthao{tag}", f"nthas{tag}"
    for name in (*hosts.values(), vm, outside, switch):
        netns.create(name)
    drivers: dict[str, RouterDriver] = {}
    stop = threading.Event()
    events: dict[str, list[set[Any]]] = {"h1": [], "h2": []}
    watchers: list[threading.Thread] = []
    retired: list[RouterDriver] = []  # drivers replaced by a test (an agent restarted)
    try:
        for ns in hosts.values():
            k = Kernel(ns, owned=True)
            for bridge in ("brqtenant", "brqext", "brqha"):
                k.ensure_bridge(bridge)
        for bridge in ("brqtenant", "brqext"):
            link = f"lk{bridge[3:]}"
            sh("ip", "link", "add", link, "netns", hosts["h1"], "type", "veth", "peer",
               "name", link, "netns", hosts["h2"])
            for ns in hosts.values():
                Kernel(ns, owned=True).ensure_in_bridge(link, bridge)
        Kernel(switch, owned=True).ensure_bridge("brsw")
        for host, ns in hosts.items():
            sh("ip", "link", "add", "ul0", "netns", ns, "type", "veth", "peer", "name",
               f"ul{host}", "netns", switch)
            Kernel(ns, owned=True).ensure_in_bridge("ul0", "brqha")
            Kernel(switch, owned=True).ensure_in_bridge(f"ul{host}", "brsw")
        k1 = Kernel(hosts["h1"], owned=True)
        for bridge, peer_ns, cidr in (("brqtenant", vm, "10.60.0.10/24"),
                                      ("brqext", outside, "203.0.113.1/24")):
            k1.ensure_veth(f"tap{bridge[3:]}", "eth0", peer_ns)
            k1.ensure_in_bridge(f"tap{bridge[3:]}", bridge)
            inner = Kernel(peer_ns, owned=True)
            inner.ensure_link("eth0", up=True)
            inner.ensure_addresses("eth0", [cidr])
        Kernel(vm, owned=True).ensure_routes([Route("default", "10.60.0.1")])
        for host, ns in hosts.items():
            conf = tmp_path / f"{host}.conf"
            (tmp_path / host).mkdir()
            conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path / host}\n"
                            "ha_vrrp_advert_int = 0.2\nha_vrrp_track_interfaces = ul0\n")
            drivers[host] = RouterDriver(load_config(["--config-file", str(conf)], "test"),
                                         host_netns=ns)
            # As the agent runs it: the driver's events, here only recorded.
            watchers.append(threading.Thread(target=drivers[host].events, args=(
                events[host].append, stop), daemon=True))
            watchers[-1].start()
        yield {"drivers": drivers, "hosts": hosts, "vm": vm, "outside": outside,
               "tmp": tmp_path, "events": events, "retired": retired}
    finally:
        stop.set()
        for watcher in watchers:
            watcher.join(5)
        for driver in drivers.values():
            driver.apply(("router", ROUTER), None)  # stops keepalived by its pid file
            driver.monitor.close()
        for driver in retired:
            driver.monitor.close()
        for name in netns.names():
            if name.startswith((*hosts.values(), vm, outside, switch)):
                netns.remove(name)
        left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
        assert left.stdout == "", f"keepalived left behind: {left.stdout}"
        assert root_network_snapshot() == before


def plug(world: dict[str, Any], host: str) -> None:
    """What the L2 agent does on a host: the router's host ends into their bridges."""
    k = Kernel(world["hosts"][host], owned=True)
    for port, bridge in ((IFACE, "brqtenant"), (GATEWAY, "brqext"),
                         (HA_PORTS[host], "brqha")):
        k.ensure_in_bridge(f"tap{port[:11]}", bridge)


def holders(world: dict[str, Any]) -> set[str]:
    """The hosts whose router namespace holds any of the router's addresses."""
    found = set()
    names = netns.names()
    for host, ns in world["hosts"].items():
        if f"{ns}-qrouter-{ROUTER}" not in names:
            continue  # the router was removed from that host
        inside = Kernel(f"{ns}-qrouter-{ROUTER}", owned=True)
        held = inside.addresses(f"qr-{IFACE[:11]}") | inside.addresses(f"qg-{GATEWAY[:11]}")
        if held & ROUTER_ADDRESSES:
            found.add(host)
    return found


def serving(world: dict[str, Any]) -> tuple[str, str]:
    """Both hosts' routers built and wired, one serving and seen so by its monitor: the
    serving host and the other."""
    for host, driver in world["drivers"].items():
        driver.apply(("router", ROUTER), state(host))
        plug(world, host)
        driver.apply(("router", ROUTER), state(host))
    active = settled(world)
    wait_for(lambda: world["drivers"][active].status().routers == {ROUTER: "active"}, 5,
             what="the monitor seeing the primary")
    return active, "h2" if active == "h1" else "h1"


def settled(world: dict[str, Any]) -> str:
    """The one host serving the router, once no other has held it for two seconds: two
    keepalived started at the same instant may both become primary until their first
    adverts get through (a fresh port's first ARP can take a second here)."""
    def one_for_a_while() -> bool:
        found = holders(world)
        if len(found) != 1:
            return False
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if holders(world) != found:
                return False
            time.sleep(0.05)
        return True
    wait_for(one_for_a_while, 15, what="one host serving the router")
    [active] = holders(world)
    return active


def ping(world: dict[str, Any]) -> bool:
    return subprocess.run(["ip", "netns", "exec", world["vm"], "ping", "-c", "1", "-W", "1",
                           "203.0.113.1"], capture_output=True).returncode == 0


def keepalived_pid(world: dict[str, Any], host: str) -> int:
    return int((world["tmp"] / host / "ha_confs" / ROUTER / "keepalived.pid").read_text())


def test_keepalived_waits_for_wiring_then_one_host_serves(world: dict[str, Any]) -> None:
    """No keepalived before the HA port is wired; then exactly one host holds the router's
    addresses and reports itself active, the other standby; the VM reaches outside through
    it; a second pass changes nothing."""
    drivers = world["drivers"]
    for host, driver in drivers.items():
        driver.apply(("router", ROUTER), state(host))
        assert ("router", ROUTER) not in driver.drifted()  # nothing to do before wiring
        assert not (world["tmp"] / host / "ha_confs" / ROUTER / "keepalived.pid").exists()
    assert holders(world) == set()
    for host, driver in drivers.items():
        plug(world, host)
        assert ("router", ROUTER) in driver.drifted()  # wired: keepalived can start
        driver.apply(("router", ROUTER), state(host))
        assert ("router", ROUTER) not in driver.drifted()
    active = settled(world)
    standby = "h2" if active == "h1" else "h1"
    wait_for(lambda: drivers[active].status().routers == {ROUTER: "active"}, 5,
             what="the monitor seeing the primary")
    assert drivers[standby].status().routers == {ROUTER: "standby"}
    inside = Kernel(f"{world['hosts'][active]}-qrouter-{ROUTER}", owned=True)
    assert Route("default", "203.0.113.1", f"qg-{GATEWAY[:11]}") in inside.routes()
    assert wait_for(lambda: ping(world), 10, what="the VM reaching outside")
    for host, driver in drivers.items():
        assert driver.apply(("router", ROUTER), state(host)) is False
        driver.verify_interval = 0  # a full pass, reading everything back: still nothing
        assert driver.apply(("router", ROUTER), state(host)) is False
    assert holders(world) == {active}
    assert drivers[active].status().routers == {ROUTER: "active"}


def test_failover_when_keepalived_dies_without_preemption(world: dict[str, Any]) -> None:
    """keepalived killed on the serving host: the other takes over within about three
    adverts (printed), the monitor reports it at once; the first host's keepalived,
    started again by the driver, stays standby (nopreempt)."""
    drivers = world["drivers"]
    active, other = serving(world)
    world["events"][other].clear()
    started = time.monotonic()
    os.kill(keepalived_pid(world, active), signal.SIGTERM)
    wait_for(lambda: holders(world) == {other}, 10, what="the other host taking over")
    took = time.monotonic() - started
    wait_for(lambda: world["events"][other], 5, what="the monitor's event on the new primary")
    print(f"\nfailover after keepalived's stop: {took:.2f} s")
    assert world["events"][other][0] == {("router", ROUTER)}
    assert drivers[other].status().routers == {ROUTER: "active"}
    wait_for(lambda: ("router", ROUTER) in drivers[active].drifted(), 5,
             what="the driver finding its keepalived gone")
    drivers[active].apply(("router", ROUTER), state(active))  # the agent's next pass
    time.sleep(1.5)  # several adverts: a preempting node would have taken over by now
    assert holders(world) == {other}
    assert drivers[active].status().routers == {ROUTER: "standby"}


@contextlib.contextmanager
def arp_senders(namespace: str, devices: tuple[str, ...]) -> Iterator[dict[str, set[str]]]:
    """The sender addresses of the ARP frames that arrive on each device while the block
    runs (a packet socket per device, opened in the namespace; for every protocol, since
    a bridge port's frames reach only those)."""
    seen: dict[str, set[str]] = {device: set() for device in devices}
    done = threading.Event()
    with netns.entered(namespace):
        sockets = {device: socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                         socket.htons(0x0003)) for device in devices}
    for device, sock in sockets.items():
        sock.bind((device, 0))
        sock.settimeout(0.1)

    def listen(device: str, sock: socket.socket) -> None:
        while not done.is_set():
            try:
                frame = sock.recv(2048)
            except TimeoutError:
                continue
            if len(frame) >= 32 and frame[12:14] == b"\x08\x06":
                seen[device].add(socket.inet_ntoa(frame[28:32]))
    threads = [threading.Thread(target=listen, args=item, daemon=True)
               for item in sockets.items()]
    for thread in threads:
        thread.start()
    try:
        yield seen
    finally:
        done.set()
        for thread in threads:
            thread.join(2)
        for sock in sockets.values():
            sock.close()


def test_no_arp_of_the_vrid_address_leaves_the_ha_device(world: dict[str, Any]) -> None:
    """A new primary's gratuitous ARPs announce the router's addresses on the tenant
    network, but none for the VRID's address reaches the HA network (every router of a
    project shares it: each such ARP would be handled in all their namespaces)."""
    active, other = serving(world)
    with arp_senders(world["hosts"][active], ("ul0", "lktenant")) as seen:
        os.kill(keepalived_pid(world, active), signal.SIGTERM)
        wait_for(lambda: holders(world) == {other}, 10, what="the other host taking over")
        time.sleep(2.5)  # the refresh every second too
    assert "10.60.0.1" in seen["lktenant"], seen
    assert not {ip for ip in seen["ul0"] if ip.startswith("169.254.0.")}, seen


def test_kill_9_of_keepalived_never_leaves_two_hosts_serving(world: dict[str, Any]) -> None:
    """Both keepalived processes of the serving host killed with SIGKILL (they cannot give
    the addresses up): the host forwards on until its fence closes by itself, and the
    agent removes the addresses as it closes, before the other host takes over, so that
    no sample (every 20 ms) finds both holding them and the time with neither is about
    the backup's wait beyond the lease (printed); the driver's next pass starts
    keepalived again, which stays standby."""
    drivers = world["drivers"]
    active, other = serving(world)
    base = world["tmp"] / active / "ha_confs" / ROUTER
    time.sleep(0.5)  # the monitor holds the VRRP process's pidfd by now
    pids = [int((base / name).read_text()) for name in ("keepalived-vrrp.pid",
                                                        "keepalived.pid")]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    samples = sample_serving(world, lambda s: s[2] == {other})
    both = [t for t, held, _open in samples if len(held) > 1]
    assert not both, f"both hosts held the router's addresses at {both[:5]}..."
    assert samples[-1][1] == samples[-1][2] == {other}, samples[-5:]
    dark = samples[-1][0] - max((t for t, _held, open_ in samples if open_ == {active}),
                                default=0.0)
    print(f"\nkill -9: the other host served after {samples[-1][0]:.2f} s "
          f"(neither for {dark:.2f} s, {len(samples)} samples)")
    wait_for(lambda: ("router", ROUTER) in drivers[active].drifted(), 5,
             what="the driver finding its keepalived gone (once its fence closed)")
    drivers[active].apply(("router", ROUTER), state(active))  # the agent's next pass
    assert keepalived_pid(world, active) not in pids
    assert holders(world) == {other}  # the leftovers went before keepalived started
    time.sleep(1.5)
    assert holders(world) == {other}
    assert drivers[active].status().routers == {ROUTER: "standby"}


def fence_open(world: dict[str, Any], host: str) -> bool:
    """Whether the kernel of `host` passes the router's traffic: its lease (renewed by each
    advert it sends) is current and no other primary was heard since."""
    ns = f"{world['hosts'][host]}-qrouter-{ROUTER}"
    sets = {}
    for name in ("lease", "heard"):
        out = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "set", "inet",
                              FENCE_TABLE, name], capture_output=True, text=True).stdout
        sets[name] = "elements" in out
    return sets["lease"] and not sets["heard"]


def sample_serving(world: dict[str, Any], until: Any, limit: float = 10.0
                   ) -> list[tuple[float, frozenset[str], frozenset[str]]]:
    """(time, hosts holding the addresses, hosts also passing traffic) every ~20 ms until
    `until(sample)` or `limit` seconds."""
    samples: list[tuple[float, frozenset[str], frozenset[str]]] = []
    started = time.monotonic()
    while time.monotonic() - started < limit:
        held = frozenset(holders(world))
        open_ = frozenset(h for h in held if fence_open(world, h))
        samples.append((time.monotonic() - started, held, open_))
        if until(samples[-1]):
            break
        time.sleep(0.02)
    return samples


def test_a_host_cut_off_gives_the_router_up_at_once(world: dict[str, Any]) -> None:
    """The serving host's uplink to the HA network cut: its keepalived, tracking the link,
    gives the addresses up at once (FAULT), before the other host takes over, so that no
    sample (every 20 ms) finds both holding them; the link healed, it comes back as a
    standby under the host that took over, and the VM reaches outside throughout."""
    drivers = world["drivers"]
    active, other = serving(world)
    uplink = Kernel(world["hosts"][active], owned=True)
    uplink.ensure_link("ul0", up=False)
    samples = sample_serving(world, lambda s: s[1] == {other} and s[2] == {other})
    both = [t for t, held, _open in samples if len(held) > 1]
    assert not both, f"both hosts held the router's addresses at {both[:5]}"
    assert samples[-1][1] == {other}, samples[-5:]
    released = min(t for t, held, _open in samples if active not in held)
    print(f"\nlink cut: released after {released:.2f} s, the other serving after "
          f"{samples[-1][0]:.2f} s")
    wait_for(lambda: drivers[active].status().routers == {ROUTER: "standby"}, 5,
             what="the cut host reporting standby")
    assert wait_for(lambda: ping(world), 10, what="the VM reaching outside")
    uplink.ensure_link("ul0", up=True)
    healed = sample_serving(world, lambda s: s[0] > 2.5, limit=3)
    assert all(held == {other} for _t, held, _open in healed), healed[-5:]
    assert drivers[active].status().routers == {ROUTER: "standby"}
    assert drivers[other].status().routers == {ROUTER: "active"}


def test_orphaned_primary_goes_dark_by_itself(world: dict[str, Any]) -> None:
    """The serving host's keepalived killed with SIGKILL while its agent is gone too (no
    monitor left to remove the addresses): the addresses stay in its kernel, but its fence
    closes before the other host takes over, so no sample finds two hosts passing the
    router's traffic; and with the other host's router removed, the orphan's addresses
    answer nothing."""
    drivers = world["drivers"]
    active, other = serving(world)
    assert fence_open(world, active) and not fence_open(world, other)
    assert wait_for(lambda: ping(world), 10, what="the VM reaching outside")
    drivers[active].monitor.on_dead = None  # the agent is dead: nobody removes addresses
    base = world["tmp"] / active / "ha_confs" / ROUTER
    for name in ("keepalived-vrrp.pid", "keepalived.pid"):
        os.kill(int((base / name).read_text()), signal.SIGKILL)
    samples = sample_serving(world, lambda s: s[2] == {other})
    both = [t for t, _held, open_ in samples if len(open_) > 1]
    assert not both, f"two hosts passed the router's traffic at {both[:5]}"
    assert samples[-1][2] == {other}, samples[-5:]
    assert active in samples[-1][1]  # still holding the addresses, but fenced
    dark = min(t for t, _held, open_ in samples if active not in open_)
    print(f"\norphaned primary dark after {dark:.2f} s, the other serving after "
          f"{samples[-1][0]:.2f} s")
    drivers[other].apply(("router", ROUTER), None)  # only the orphan holds them now
    assert holders(world) == {active}
    assert not ping(world)


@contextlib.contextmanager
def frozen_keepalived(world: dict[str, Any], host: str) -> Iterator[None]:
    """A host's keepalived stopped (SIGSTOP: its kernel goes on) for the block."""
    base = world["tmp"] / host / "ha_confs" / ROUTER
    pids = [int((base / name).read_text()) for name in ("keepalived-vrrp.pid",
                                                        "keepalived.pid")]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_frozen_primary_never_serves_beside_the_new_one(world: dict[str, Any]) -> None:
    """The serving host's keepalived frozen (SIGSTOP: its kernel goes on): the other host
    takes over while the frozen one, addresses still set, passes nothing; thawed, it finds
    the other primary and VRRP leaves one; at no sample do two hosts pass the traffic, and
    the VM reaches outside again."""
    active, other = serving(world)
    with frozen_keepalived(world, active):
        samples = sample_serving(world, lambda s: s[2] == {other})
        assert samples[-1][2] == {other}, samples[-5:]
        assert active in samples[-1][1]  # frozen with its addresses, fenced
        time.sleep(1)
    thawed = sample_serving(world, lambda s: len(s[1]) == 1 and len(s[2]) == 1
                            and s[0] > 2, limit=15)
    for t, _held, open_ in samples + thawed:
        assert len(open_) <= 1, f"two hosts passed the router's traffic at {t:.2f} s"
    assert len(thawed[-1][1]) == 1 and thawed[-1][1] == thawed[-1][2], thawed[-5:]
    assert wait_for(lambda: ping(world), 10, what="the VM reaching outside")


def arp_replies(world: dict[str, Any], address: str, probes: int = 3) -> int:
    """ARP replies the outside gets for `address` to `probes` broadcast requests (each
    host holding it unfenced answers each one)."""
    # No deadline (-w): with one, arping stops at the `probes`-th reply.
    out = subprocess.run(["ip", "netns", "exec", world["outside"], "arping", "-b", "-c",
                          str(probes), "-I", "eth0", address],
                         capture_output=True, text=True, timeout=30).stdout
    found = re.search(r"Received (\d+) response", out)
    assert found, out
    return int(found.group(1))


def test_frozen_primary_sends_no_arp_reply(world: dict[str, Any]) -> None:
    """The serving host's keepalived frozen: once the other host serves, only it answers
    ARP for the router's gateway address (the frozen kernel, which keeps the address,
    would teach the outside's switch to send the router's MAC to the frozen host)."""
    active, other = serving(world)
    gateway_ip = "203.0.113.101"
    assert arp_replies(world, gateway_ip) == 3  # the primary's; the other holds nothing
    with frozen_keepalived(world, active):
        samples = sample_serving(world, lambda s: s[2] == {other})
        assert samples[-1][1] == {active, other}, samples[-5:]  # both hold it
        assert arp_replies(world, gateway_ip) == 3  # and one answers
    wait_for(lambda: len(holders(world)) == 1, 15, what="one host holding the router")
    assert wait_for(lambda: ping(world), 10, what="the VM reaching outside")


def router_ns(world: dict[str, Any], host: str) -> str:
    return f"{world['hosts'][host]}-qrouter-{ROUTER}"


def tracked(world: dict[str, Any], host: str, port: int) -> str:
    """The conntrack entries of a host's router namespace for one TCP destination port."""
    return subprocess.run(["ip", "netns", "exec", router_ns(world, host), "conntrack", "-L",
                           "-p", "tcp", "--dport", str(port)], capture_output=True,
                          text=True).stdout


@pytest.mark.skipif(shutil.which("conntrackd") is None, reason="needs conntrackd")
def test_conntrackd_keeps_an_snat_connection_across_failover(world: dict[str, Any]) -> None:
    """A TCP connection from the VM to outside, SNATed behind the router's gateway IP: the
    backup's kernel tracks it (conntrackd) before any failover; keepalived stopped on the
    primary, the new primary forwards the connection's next bytes both ways, even with
    mid-stream pick-up switched off in both kernels (so that only the synced entry can
    carry it)."""
    active, other = serving(world)
    for host in world["hosts"]:
        subprocess.run(["ip", "netns", "exec", router_ns(world, host), "sysctl", "-qw",
                        "net.netfilter.nf_conntrack_tcp_loose=0"], check=True)
    with netns.entered(world["outside"]):
        listener = socket.create_server(("203.0.113.1", 0))
    port = listener.getsockname()[1]
    with netns.entered(world["vm"]):
        client = socket.socket()
    try:
        client.settimeout(5)
        client.connect(("203.0.113.1", port))
        server, _ = listener.accept()
        server.settimeout(5)
        client.sendall(b"before\n")
        assert server.recv(64) == b"before\n"
        assert "src=10.60.0.10" in tracked(world, active, port)
        assert "dst=203.0.113.101" in tracked(world, active, port)  # the SNAT of replies
        assert wait_for(lambda: "dst=203.0.113.101" in tracked(world, other, port), 10,
                        what="the backup's kernel tracking the connection")
        os.kill(keepalived_pid(world, active), signal.SIGTERM)
        wait_for(lambda: holders(world) == {other}, 10, what="the other host taking over")
        server.sendall(b"reply after\n")  # outside -> gateway IP: de-NATed by the entry
        assert client.recv(64) == b"reply after\n"
        client.sendall(b"after\n")
        assert server.recv(64) == b"after\n"
        server.close()
    finally:
        client.close()
        listener.close()


def test_an_agent_restart_keeps_the_primary_serving(world: dict[str, Any]) -> None:
    """A new driver on the serving host (the agent restarted) adopts keepalived and the
    fence as they are: the fence's lease is not dropped, the host stays primary, and the
    VM's traffic goes on."""
    drivers = world["drivers"]
    active, _other = serving(world)
    conf = load_config(["--config-file", str(world["tmp"] / f"{active}.conf")], "test")
    world["retired"].append(drivers[active])  # its events thread runs until the end
    drivers[active] = RouterDriver(conf, host_netns=world["hosts"][active])
    drivers[active].apply(("router", ROUTER), state(active))
    assert fence_open(world, active)
    assert holders(world) == {active}
    assert ping(world)
