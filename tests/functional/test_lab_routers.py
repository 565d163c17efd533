"""Routers in the lab with real packets: seed 004's demo end to end, the lab's new commands,
and a legacy router failing over when its L3 agent is killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from neutrino.lab import demo, probes
from neutrino.lab.lab import Lab
from neutrino.lab.topology import load
from tests.functional.test_lab import base, lab_name, leftovers  # noqa: F401 (fixture)
from tests.support import VENV_BIN, root_network_snapshot, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("busybox") is None,
    reason="needs root, nftables, dnsmasq and busybox (tools/install installs them)")]


def test_router_demo_end_to_end(base: Path) -> None:  # noqa: F811
    """Seed 004 with a legacy router: every step asserted, nothing of the lab left."""
    before = root_network_snapshot()
    name = lab_name()
    record = demo.run("router", Lab(name, base, out=lambda _line: None),
                      out=lambda _line: None)
    assert all(ok for _what, ok in record.checks)
    facts = record.facts
    assert facts["gateway"] == "203.0.113.101"
    assert facts["snat"].server_peer == "203.0.113.101"
    assert facts["inbound"].server_local == facts["fixed_ip"]
    assert facts["outbound"].server_peer == facts["floating_ip"]
    assert leftovers(name) == []
    assert root_network_snapshot() == before


def cli(name: str, base: Path, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: F811
    return subprocess.run([str(VENV_BIN / "neutrino"), "lab", "--lab", name, "--dir",
                           str(base), *args], capture_output=True, text=True, timeout=300)


def setup_router(lab: Lab) -> dict[str, str]:
    """ext-net, demo-net with a VM on compute1, a router between them."""
    ext = lab.api_call("POST", "/v2.0/networks", {"network": {
        "name": "ext-net", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "external"}})["network"]
    lab.api_call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": ext["id"], "cidr": "203.0.113.0/24", "ip_version": 4,
        "enable_dhcp": False, "gateway_ip": "203.0.113.1",
        "allocation_pools": [{"start": "203.0.113.101", "end": "203.0.113.200"}]}})
    net_id = lab.network_create("demo-net", "192.168.1.0/24")
    subnet = lab.api_get("/v2.0/subnets", network_id=net_id)["subnets"][0]
    # Legacy even where the topology makes HA routers by default (seed-003's l3_ha).
    router = lab.api_call("POST", "/v2.0/routers", {"router": {
        "name": "r", "ha": False, "external_gateway_info": {"network_id": ext["id"]}}})[
        "router"]
    lab.api_call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": subnet["id"]})
    vm = lab.vm_boot("vm1", "demo-net", "compute1")
    wait_for(lambda: lab.vm_dhcp("vm1").ip_address, 60, what="the VM's lease")
    return {"router": router["id"], "vm": vm["name"], "ext": ext["id"]}


def test_lab_commands_for_routers(base: Path) -> None:  # noqa: F811
    """`lab host netns`, `lab host exec`, `lab outside exec`, `lab vm list`, and an L3
    agent stopped and started with its routers left in place, then taken away."""
    name = lab_name()
    lab = Lab(name, base, out=lambda _line: None)
    lab.up(load("seed-004"))
    try:
        made = setup_router(lab)
        netns_out = cli(name, base, "host", "netns", "network1").stdout.split()
        assert f"qrouter-{made['router']}" in netns_out
        assert any(n.startswith("qdhcp-") for n in netns_out)
        wait_for(lambda: cli(name, base, "outside", "exec", "--", "ping", "-c", "1", "-W",
                             "1", "203.0.113.101").returncode == 0, 30, what="gateway ping")
        shown = cli(name, base, "host", "exec", "network1", "--", "ip", "netns")
        assert shown.returncode == 0  # the host's view of its own namespaces
        listed = json.loads(cli(name, base, "vm", "list", "--json").stdout)
        assert listed[0]["networks"].startswith("demo-net=192.168.1.")
        assert cli(name, base, "agent", "stop", "network1", "l3").returncode == 0
        assert f"qrouter-{made['router']}" in lab.host_netns("network1")  # routers stay
        assert probes.ping(lab.vm_namespace("vm1"), "192.0.2.1")  # and keep routing
        # The router deleted while its agent is down: removed at the agent's start.
        router_url = f"/v2.0/routers/{made['router']}"
        subnet = lab.api_get("/v2.0/subnets", name="")["subnets"]
        demo_subnet = next(s for s in subnet if s["cidr"] == "192.168.1.0/24")
        lab.api_call("PUT", f"{router_url}/remove_router_interface",
                     {"subnet_id": demo_subnet["id"]})
        lab.api_call("PUT", router_url, {"router": {"external_gateway_info": {}}})
        lab.api_call("DELETE", router_url)
        assert cli(name, base, "agent", "start", "network1", "l3").returncode == 0
        wait_for(lambda: f"qrouter-{made['router']}" not in lab.host_netns("network1"), 30,
                 what="the router deleted while the agent was down removed at its start")
    finally:
        lab.down()
    assert leftovers(name) == []


def test_legacy_router_fails_over_when_its_agent_is_killed(base: Path) -> None:  # noqa: F811
    """kill -9 of the L3 agent hosting a router: the router is rescheduled and the VM
    reaches the internet again (the time it took is printed)."""
    name = lab_name()
    lab = Lab(name, base, out=lambda _line: None)
    lab.up(load("seed-003"))
    try:
        made = setup_router(lab)
        vm_ns = lab.vm_namespace("vm1")
        wait_for(lambda: probes.ping(vm_ns, "192.0.2.1"), 30, what="internet before")
        hosts = {a["host"] for a in lab.api_get(
            f"/v2.0/routers/{made['router']}/l3-agents")["agents"]}
        [first] = hosts
        started = time.monotonic()
        lab.agent_stop(first, "l3", sig=signal.SIGKILL)
        survivor = "network2" if first == "network1" else "network1"
        wait_for(lambda: {a["host"] for a in lab.api_get(
            f"/v2.0/routers/{made['router']}/l3-agents")["agents"]} == {survivor}, 60,
            what="the router rescheduled")
        wait_for(lambda: probes.ping(vm_ns, "192.0.2.1"), 60, interval=0.2,
                 what="the VM reaching the internet through the new host")
        print(f"\nrouter failover (kill -9 of its L3 agent): internet again after "
              f"{time.monotonic() - started:.1f} s")
    finally:
        lab.down()
    assert leftovers(name) == []
