"""The L3 agent's legacy routers in throwaway namespaces: kernel state and real packets.

A host namespace holds two bridges (a tenant network and the external network), as the L2
agent would make them; a VM namespace sits on the first, an "outside" namespace on the
second. The driver builds the router between them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.l3.driver import RouterDriver
from neutrino.agent.l3.plan import NAT_TABLE
from neutrino.agent.linux import netns
from neutrino.agent.linux.kernel import Kernel, Route
from neutrino.cmd.common import load_config
from neutrino.lab import probes
from tests.support import root_network_snapshot

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("conntrack") is None,
    reason="needs root, nftables and conntrack (tools/install installs them)")

ROUTER = "7a0c5a3e-1f2b-4c3d-9e8f-0a1b2c3d4e5f"
IFACE = "11111111-2222-4333-8444-555555555555"
GATEWAY = "66666666-7777-4888-9999-aaaaaaaaaaaa"
FIP = "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff"


def state(fips: list[tuple[str, str]] = (), snat: bool = True,  # type: ignore[assignment]
          routes: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A router on 10.60.0.0/24 with its gateway 203.0.113.101 on 203.0.113.0/24."""
    return {"id": ROUTER, "admin_state_up": True, "routes": routes or [],
            "interfaces": [{"id": IFACE, "mac_address": "fa:16:3e:aa:00:01", "mtu": 1450,
                            "network_id": "n1", "fixed_ips": [{
                                "subnet_id": "s1", "ip_address": "10.60.0.1",
                                "cidr": "10.60.0.0/24", "gateway_ip": "10.60.0.1"}]}],
            "gateway": {"id": GATEWAY, "mac_address": "fa:16:3e:aa:00:02", "mtu": 1500,
                        "network_id": "ext", "enable_snat": snat, "fixed_ips": [{
                            "subnet_id": "s2", "ip_address": "203.0.113.101",
                            "cidr": "203.0.113.0/24", "gateway_ip": "203.0.113.1"}]},
            "floatingips": [{"id": f"{FIP[:-1]}{i}", "floating_ip_address": fip,
                             "fixed_ip_address": fixed} for i, (fip, fixed) in enumerate(fips)]}


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """host (two bridges), vm (10.60.0.10 via 10.60.0.1) and outside (203.0.113.1)."""
    before = root_network_snapshot()
    tag = uuid.uuid4().hex[:6]
    host, vm, outside = f"ntt-h{tag}", f"ntt-v{tag}", f"ntt-o{tag}"
    for name in (host, vm, outside):
        netns.create(name)
    k = Kernel(host, owned=True)
    for bridge, peer_ns, peer, cidr in (("brqtenant", vm, "eth0", "10.60.0.10/24"),
                                        ("brqext", outside, "eth0", "203.0.113.1/24")):
        k.ensure_bridge(bridge)
        k.ensure_veth(f"tap{bridge[3:]}", peer, peer_ns)
        k.ensure_in_bridge(f"tap{bridge[3:]}", bridge)
        inner = Kernel(peer_ns, owned=True)
        inner.ensure_link(peer, up=True)
        inner.ensure_addresses(peer, [cidr])
    Kernel(vm, owned=True).ensure_routes([Route("default", "10.60.0.1")])
    conf = tmp_path / "l3.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n")
    driver = RouterDriver(load_config(["--config-file", str(conf)], "test"), host_netns=host)
    try:
        yield {"driver": driver, "host": host, "vm": vm, "outside": outside}
    finally:
        for name in netns.names():
            if name.startswith((host, vm, outside)):
                netns.remove(name)
        assert root_network_snapshot() == before


def plug(world: dict[str, Any]) -> None:
    """What the L2 agent does: the router's host ends into their networks' bridges."""
    k = Kernel(world["host"], owned=True)
    k.ensure_in_bridge(f"tap{IFACE[:11]}", "brqtenant")
    k.ensure_in_bridge(f"tap{GATEWAY[:11]}", "brqext")


def test_a_router_in_the_kernel_and_a_second_pass(world: dict[str, Any]) -> None:
    """Namespace, ports with their MACs and addresses, forwarding, the default route and
    the NAT table; a second apply changes nothing."""
    driver = world["driver"]
    assert driver.apply(("router", ROUTER), state(routes=[
        {"destination": "172.20.0.0/16", "nexthop": "10.60.0.254"}])) is True
    ns = f"{world['host']}-qrouter-{ROUTER}"
    assert ("router", ROUTER) in driver.present()
    inside = Kernel(ns, owned=True)
    links = inside.links()
    qr, qg = f"qr-{IFACE[:11]}", f"qg-{GATEWAY[:11]}"
    assert links[qr].mac == "fa:16:3e:aa:00:01" and links[qr].up and links[qr].mtu == 1450
    assert inside.addresses(qr) == {"10.60.0.1/24"}
    assert inside.addresses(qg) == {"203.0.113.101/24"}
    assert inside.routes() == {Route("default", "203.0.113.1", qg),
                               Route("172.20.0.0/16", "10.60.0.254", qr)}
    assert inside.sysctls(["net.ipv4.ip_forward"]) == {"net.ipv4.ip_forward": "1"}
    ruleset = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "ip",
                              NAT_TABLE], capture_output=True, text=True).stdout
    snat = [line for line in ruleset.splitlines() if "snat to 203.0.113.101" in line]
    assert any(f'oifname "{qg}"' in line and "10.60.0.0/24" in line for line in snat), ruleset
    assert driver.apply(("router", ROUTER), state(routes=[
        {"destination": "172.20.0.0/16", "nexthop": "10.60.0.254"}])) is False
    assert driver.configurations()["routers"] == 1
    assert driver.apply(("router", ROUTER), None) is True
    assert ns not in netns.names() and ("router", ROUTER) not in driver.present()


def test_snat_floating_ips_and_their_flows(world: dict[str, Any]) -> None:
    """Out with the gateway IP; with a floating IP, in by it and out as it; a removed
    floating IP stops answering and its connections are gone from conntrack."""
    driver, vm, outside = world["driver"], world["vm"], world["outside"]
    driver.apply(("router", ROUTER), state())
    plug(world)
    assert probes.ping(vm, "203.0.113.1", count=3)
    seen = probes.tcp(outside, vm, "203.0.113.1", 8080)
    assert seen.ok and seen.server_peer == "203.0.113.101"  # SNAT behind the gateway

    driver.apply(("router", ROUTER), state([("203.0.113.150", "10.60.0.10")]))
    assert driver.status().floatingips == {f"{FIP[:-1]}0": "ACTIVE"}
    assert probes.ping(outside, "203.0.113.150", count=3)
    inbound = probes.tcp(vm, outside, "203.0.113.150", 22)
    assert inbound.ok and (inbound.server_peer, inbound.server_local) == (
        "203.0.113.1", "10.60.0.10")
    outbound = probes.tcp(outside, vm, "203.0.113.1", 8080)
    assert outbound.ok and outbound.server_peer == "203.0.113.150"

    ns = f"{world['host']}-qrouter-{ROUTER}"
    ping = subprocess.Popen(["ip", "netns", "exec", outside, "ping", "-i", "0.2",
                             "203.0.113.150"], stdout=subprocess.DEVNULL)
    try:
        probes.ping(outside, "203.0.113.150")
        flows = subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-L", "-d",
                                "203.0.113.150"], capture_output=True, text=True).stdout
        assert "203.0.113.150" in flows
        driver.apply(("router", ROUTER), state())  # disassociated
        flows = subprocess.run(["ip", "netns", "exec", ns, "conntrack", "-L", "-d",
                                "203.0.113.150"], capture_output=True, text=True).stdout
        assert "203.0.113.150" not in flows
    finally:
        ping.kill()
        ping.wait()
    assert not probes.ping(outside, "203.0.113.150")
    assert driver.status().floatingips == {}


def test_no_snat_without_enable_snat(world: dict[str, Any]) -> None:
    """enable_snat false: the VM's packets leave with their own address."""
    driver, vm, outside = world["driver"], world["vm"], world["outside"]
    driver.apply(("router", ROUTER), state(snat=False))
    plug(world)
    Kernel(outside, owned=True).ensure_routes([Route("10.60.0.0/24", "203.0.113.101")])
    seen = probes.tcp(outside, vm, "203.0.113.1", 8080)
    assert seen.ok and seen.server_peer == "10.60.0.10"


def test_a_router_removed_while_the_agent_was_down_goes_at_start(
        world: dict[str, Any], tmp_path: Path) -> None:
    """A fresh driver finds the router's namespace (present) and removes it when told the
    router is no longer its own (the runner's snapshot does exactly that)."""
    world["driver"].apply(("router", ROUTER), state())
    conf = tmp_path / "l3b.conf"
    conf.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\n")
    fresh = RouterDriver(load_config(["--config-file", str(conf)], "test"),
                         host_netns=world["host"])
    assert fresh.present() == {("router", ROUTER)}
    assert fresh.apply(("router", ROUTER), None) is True
    assert fresh.present() == set()
