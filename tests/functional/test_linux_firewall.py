"""Security groups enforced on a host, with real packets, in throwaway namespaces.

A host namespace holds a network's bridge, as the L2 agent makes it; VMs A and B (filtered,
in group G) and C (a router's port: never filtered) sit on it. The host's security state is
given to `HostSecurity` as the agent would be sent it, and what passes is what a VM sees.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from neutrino.agent.linux import netns
from neutrino.agent.linux.firewall import TABLE
from neutrino.agent.linux.kernel import Kernel
from neutrino.agent.linux.security import HostSecurity
from neutrino.lab import probes
from neutrino.registry import bridge_name, tap_name
from tests.support import root_network_snapshot

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("conntrack") is None,
    reason="needs root, nftables and conntrack (tools/install installs them)")

NET = "5e1f0c2a-9d8b-4a7c-b6e5-0f1e2d3c4b5a"
G = "a0a0a0a0-1111-4222-8333-444444444444"
PORTS = {"a": ("aaaaaaaa-0000-4000-8000-000000000001", "fa:16:3e:00:00:0a", "10.70.0.10"),
         "b": ("bbbbbbbb-0000-4000-8000-000000000002", "fa:16:3e:00:00:0b", "10.70.0.11"),
         "c": ("cccccccc-0000-4000-8000-000000000003", "fa:16:3e:00:00:0c", "10.70.0.1")}
DEFAULT_RULES = [{"direction": "egress", "ethertype": "IPv4"},
                 {"direction": "egress", "ethertype": "IPv6"},
                 {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": G},
                 {"direction": "ingress", "ethertype": "IPv6", "remote_group_id": G}]
ICMP_IN = {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp",
           "remote_ip_prefix": "0.0.0.0/0"}


def port(name: str, pairs: list[dict[str, str]] = (), security: bool = True,  # type: ignore[assignment]
         owner: str = "compute:nova") -> dict[str, Any]:
    port_id, mac, ip = PORTS[name]
    return {"id": port_id, "mac_address": mac, "device_owner": owner,
            "fixed_ips": [{"subnet_id": "s", "ip_address": ip}],
            "port_security_enabled": security, "allowed_address_pairs": list(pairs),
            "security_groups": [G] if security else []}


def network(*ports: dict[str, Any]) -> dict[str, Any]:
    return {"id": NET, "ports": list(ports)}


def group(*rules: dict[str, Any], stateful: bool = True) -> dict[str, Any]:
    return {"id": G, "stateful": stateful, "rules": list(rules)}


def members(*addresses: str) -> dict[str, Any]:
    return {"group_id": G, "bucket": "00", "addresses": list(addresses)}


@pytest.fixture
def world() -> Iterator[dict[str, Any]]:
    """The host with its bridge, and VMs a, b, c plugged into it."""
    before = root_network_snapshot()
    tag = uuid.uuid4().hex[:6]
    host = f"ntf-h{tag}"
    vms = {n: f"ntf-{n}{tag}" for n in PORTS}
    for name in (host, *vms.values()):
        netns.create(name)
    k = Kernel(host, owned=True)
    k.ensure_bridge(bridge_name(NET))
    for name, (port_id, mac, ip) in PORTS.items():
        k.ensure_veth(tap_name(port_id), "eth0", vms[name])
        k.ensure_in_bridge(tap_name(port_id), bridge_name(NET))
        inner = Kernel(vms[name], owned=True)
        inner.ensure_link("eth0", up=True, mac=mac)
        inner.ensure_addresses("eth0", [f"{ip}/24"])
    security = HostSecurity(host)
    try:
        yield {"security": security, "host": host, **vms}
    finally:
        security.firewall.netfilter.close()
        for name in netns.names():
            if name.startswith("ntf-") and name.endswith(tag):
                netns.remove(name)
        assert root_network_snapshot() == before


def apply(world: dict[str, Any], *rules: dict[str, Any], stateful: bool = True,
          ports: tuple[dict[str, Any], ...] | None = None,
          member_ips: tuple[str, ...] = (PORTS["a"][2], PORTS["b"][2])) -> None:
    security: HostSecurity = world["security"]
    security.set_key(("security_group", G), group(*DEFAULT_RULES, *rules, stateful=stateful))
    security.set_key(("sg_members", f"{G}:00"), members(*member_ips))
    security.set_network(NET, network(*(ports or (port("a"), port("b"),
                                                  port("c", security=False,
                                                       owner="network:router_interface")))))


def ip(name: str) -> str:
    return PORTS[name][2]


def test_group_members_talk_and_others_are_dropped(world: dict[str, Any]) -> None:
    """A and B share the default group: they ping each other; C (not a member) cannot
    ping A, but A's own pings to C come back (their replies are established)."""
    apply(world)
    assert probes.ping(world["a"], ip("b"))
    assert probes.ping(world["b"], ip("a"))
    assert not probes.ping(world["c"], ip("a"))
    assert probes.ping(world["a"], ip("c"))
    conntrack = netns.run(world["host"], ["conntrack", "-L"]).stdout
    assert "zone=" in conntrack  # tracked in the network's zone


def test_an_icmp_rule_lets_the_outside_ping_and_its_removal_ends_the_flow(
        world: dict[str, Any]) -> None:
    """The seed's `security group rule create --protocol icmp`: C's pings pass; a running
    ping stops once the rule is removed (its conntrack entry is deleted), and nothing
    else is disturbed."""
    apply(world)
    assert not probes.ping(world["c"], ip("a"))
    apply(world, ICMP_IN)
    assert probes.ping(world["c"], ip("a"))
    pinger = subprocess.Popen(netns.command(world["c"], ["ping", "-i", "0.1", "-c", "40",
                                                         "-W", "1", ip("a")]),
                              stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    apply(world)  # the rule removed while C's ping runs (one echo id: one flow)
    removed_at = time.monotonic()
    out, _ = pinger.communicate(timeout=30)
    received = [line for line in out.splitlines() if "bytes from" in line]
    assert 5 <= len(received) <= 20, out  # answered before the removal only
    assert time.monotonic() - removed_at > 2  # the ping went on unanswered
    assert probes.ping(world["a"], ip("b"))


def test_a_rule_added_keeps_established_flows(world: dict[str, Any]) -> None:
    """A's running ping to C loses nothing while rules are added and groups rewritten."""
    apply(world)
    pinger = subprocess.Popen(netns.command(world["a"], ["ping", "-i", "0.05", "-c", "60",
                                                         "-W", "1", ip("c")]),
                              stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    for extra in ({"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                   "port_range_min": 22, "port_range_max": 22,
                   "remote_ip_prefix": "0.0.0.0/0"}, ICMP_IN):
        apply(world, extra)
        time.sleep(0.3)
    out, _ = pinger.communicate(timeout=30)
    assert " 0% packet loss" in out, out


def test_tcp_rule_opens_one_port(world: dict[str, Any]) -> None:
    """`--protocol tcp --dst-port 22`: C reaches A's port 22, not 23."""
    apply(world, {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                  "port_range_min": 22, "port_range_max": 22,
                  "remote_ip_prefix": "0.0.0.0/0"})
    assert probes.tcp(world["a"], world["c"], ip("a"), 22, timeout=2).ok
    assert not probes.tcp(world["a"], world["c"], ip("a"), 23, timeout=2).ok


def test_spoofed_mac_and_ip_go_nowhere(world: dict[str, Any]) -> None:
    """A VM that changes its source address, or its MAC, is not heard; back to its own
    it is."""
    apply(world)
    vm = world["a"]
    netns.run(vm, ["ip", "addr", "add", "10.70.0.99/24", "dev", "eth0"])
    spoofed = netns.run(vm, ["ping", "-c", "2", "-W", "1", "-I", "10.70.0.99", ip("c")])
    assert spoofed.returncode != 0
    netns.run(vm, ["ip", "addr", "del", "10.70.0.99/24", "dev", "eth0"])
    netns.run(vm, ["ip", "link", "set", "eth0", "address", "fa:16:3e:00:00:99"])
    assert not probes.ping(vm, ip("c"), count=2)
    netns.run(vm, ["ip", "link", "set", "eth0", "address", PORTS["a"][1]])
    assert probes.ping(vm, ip("c"), count=3)


def test_allowed_address_pair_is_accepted(world: dict[str, Any]) -> None:
    """An address pair's IP may leave the port, and joins the remote group's members."""
    pair = "10.70.0.50"
    apply(world, ports=(port("a", pairs=[{"ip_address": pair}]), port("b"),
                        port("c", security=False, owner="network:router_interface")),
          member_ips=(ip("a"), ip("b"), pair))
    vm = world["a"]
    netns.run(vm, ["ip", "addr", "add", f"{pair}/24", "dev", "eth0"])
    assert netns.run(vm, ["ping", "-c", "2", "-W", "1", "-I", pair, ip("b")]).returncode == 0


_ROGUE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("0.0.0.0", int(sys.argv[2])))
for _ in range(5):
    s.sendto(b"offer", (sys.argv[1], 68))
"""

_LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 68))
s.settimeout(float(sys.argv[1]))
print("ready", flush=True)
try:
    print(s.recvfrom(100)[0].decode(), flush=True)
except socket.timeout:
    print("nothing", flush=True)
"""


def _dhcp_offer_heard(world: dict[str, Any], sender: str, source_port: int) -> bool:
    listener = subprocess.Popen(netns.command(world["b"], [sys.executable, "-c", _LISTEN,
                                                            "2"]),
                                stdout=subprocess.PIPE, text=True)
    assert listener.stdout is not None
    assert listener.stdout.readline().strip() == "ready"
    netns.run(world[sender], [sys.executable, "-c", _ROGUE, "10.70.0.255", str(source_port)])
    heard = listener.stdout.readline().strip()
    listener.wait(timeout=5)
    return heard == "offer"


def test_a_vm_cannot_be_a_dhcp_server(world: dict[str, Any]) -> None:
    """UDP 67 -> 68 from a VM goes nowhere; from the router's (unfiltered) port it does."""
    apply(world)
    assert not _dhcp_offer_heard(world, "a", 67)
    assert _dhcp_offer_heard(world, "c", 67)


def _arp_request(namespace: str, mac: str, sender_ip: str, target_ip: str) -> None:
    """One ARP request from `namespace`'s eth0, claiming `sender_ip`."""
    code = f"""
import socket
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
mac = bytes.fromhex("{mac.replace(':', '')}")
frame = b"\\xff" * 6 + mac + b"\\x08\\x06" + b"\\x00\\x01\\x08\\x00\\x06\\x04\\x00\\x01" + mac
frame += socket.inet_aton("{sender_ip}") + b"\\x00" * 6 + socket.inet_aton("{target_ip}")
s.send(frame)
"""
    netns.run(namespace, [sys.executable, "-c", code])


def test_arp_claiming_another_address_is_dropped(world: dict[str, Any]) -> None:
    """A's ARP request claiming an address that is not its own never reaches C; one with
    its own address does (C learns A as its neighbour)."""
    apply(world)
    _arp_request(world["a"], PORTS["a"][1], "10.70.0.77", ip("c"))
    _arp_request(world["a"], PORTS["a"][1], ip("a"), ip("c"))
    time.sleep(0.5)
    neighbours = netns.run(world["c"], ["ip", "neigh", "show"]).stdout
    assert ip("a") in neighbours
    assert "10.70.0.77" not in neighbours


def test_stateless_group_is_not_tracked(world: dict[str, Any]) -> None:
    """A stateless group: C's ping passes by the ICMP rule one way and the egress rule the
    other, and the host keeps no conntrack entry for it."""
    apply(world, ICMP_IN, stateful=False)
    netns.run(world["host"], ["conntrack", "-F"])
    assert probes.ping(world["c"], ip("a"), count=2)
    tracked = netns.run(world["host"], ["conntrack", "-L"]).stdout
    assert ip("a") not in tracked


def test_a_second_apply_changes_nothing_and_removal_cleans_up(world: dict[str, Any]) -> None:
    """The same state twice: the second apply changes nothing; no filtered port left: the
    tables go."""
    security: HostSecurity = world["security"]
    apply(world)
    assert security.set_network(NET, network(port("a"), port("b"))) is False
    assert security.present()
    assert security.set_network(NET, None) is True
    assert not security.present()


def test_tables_deleted_by_hand_come_back(world: dict[str, Any]) -> None:
    """Someone deletes our inet table: the next look at the network makes it again."""
    security: HostSecurity = world["security"]
    apply(world)
    assert security.present()  # what the agent's look for drift asks, every half second
    netns.run(world["host"], ["nft", "delete", "table", "inet", TABLE])
    assert not security.present()
    assert probes.ping(world["c"], ip("a"))  # unfiltered meanwhile
    apply(world)
    assert security.present()
    assert not probes.ping(world["c"], ip("a"))



def test_rendered_tables_pass_nft_check(world: dict[str, Any]) -> None:
    """Every construct the renderer makes (remote groups, address groups with CIDRs,
    pairs, stateless ports, IPv6 and ICMP rules) passes `nft -c`."""
    from neutrino.agent.linux import firewall as fw
    from neutrino.agent.linux.netfilter import check, render, render_replace

    rules = [*DEFAULT_RULES, ICMP_IN,
             {"direction": "ingress", "ethertype": "IPv6", "protocol": "ipv6-icmp",
              "port_range_min": 128, "port_range_max": 0},
             {"direction": "egress", "ethertype": "IPv4", "protocol": "udp",
              "port_range_min": 53, "port_range_max": 53, "remote_address_group_id": "ag"},
             {"direction": "ingress", "ethertype": "IPv4", "protocol": "132",
              "port_range_min": 1000, "port_range_max": 2000,
              "remote_ip_prefix": "192.0.2.0/24"}]
    plan = fw.Plan(
        (fw.port_of(NET, port("a", pairs=[{"ip_address": "10.70.1.0/24",
                                            "mac_address": "fa:16:3e:00:00:aa"}])),),
        {G: fw.group_of(group(*rules, stateful=False))},
        {G: fw.Members.of(["10.70.0.10", "10.70.1.0/24", "10.70.1.5", "2001:db8::5"])},
        {"ag": fw.Members.of(["198.51.100.0/24", "198.51.101.0/24"])}, {NET: 4200})
    for table in fw.render(plan):
        check(render_replace(table), world["host"])
        assert render(table).count("\n") > 5


def test_the_periodic_check_remakes_a_table_changed_by_hand(world: dict[str, Any]) -> None:
    """Our inet table replaced by hand with another of the same name (its sets there, so it
    looks present): a change does not read the kernel; the look for drift does once
    `verify_interval` has passed, and makes the table whole again."""
    security: HostSecurity = world["security"]
    apply(world)
    assert not probes.ping(world["c"], ip("a"))
    netns.run(world["host"], ["nft", "delete", "table", "inet", TABLE])
    netns.run(world["host"], ["nft", "add", "table", "inet", TABLE])
    netns.run(world["host"], ["nft", "add", "set", "inet", TABLE, "untracked",
                              "{ type ipv4_addr; }"])
    assert security.present() and probes.ping(world["c"], ip("a"))
    security.verify_interval = 3600.0
    try:
        assert security.verify_if_due() is False  # not due: nothing read, nothing changed
        assert probes.ping(world["c"], ip("a"))
        security.verify_interval = 0.0
        assert security.verify_if_due() is True
        assert not probes.ping(world["c"], ip("a"))
        assert security.verify_if_due() is False  # a second look finds nothing to do
    finally:
        security.verify_interval = 60.0
