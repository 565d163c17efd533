"""Security groups in the lab with real packets: the default group between VMs on two
hosts, a rule letting the router in and its removal, a spoofing VM silenced, and a port
without port security left alone."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from neutrino.lab import probes
from neutrino.lab.lab import Lab
from neutrino.lab.topology import load
from neutrino.lab.vms import VM_IFNAME
from tests.functional.test_lab import base, lab_name, leftovers  # noqa: F401 (fixture)
from tests.functional.test_lab_routers import cli, setup_router
from tests.support import root_network_snapshot, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("busybox") is None,
    reason="needs root, nftables, dnsmasq and busybox (tools/install installs them)")]


def test_security_groups_in_the_lab(base: Path) -> None:  # noqa: F811
    before = root_network_snapshot()
    name = lab_name()
    lab = Lab(name, base, out=lambda _line: None)
    lab.up(load("seed-004"))
    try:
        made = setup_router(lab)
        vm2 = lab.vm_boot("vm2", "demo-net", "compute2")
        wait_for(lambda: lab.vm_dhcp("vm2").ip_address, 60, what="vm2's lease")
        vm1 = lab.vm("vm1")
        ns1, ns2 = lab.vm_namespace("vm1"), lab.vm_namespace("vm2")
        router_ns = f"{lab.host_namespace('network1')}-qrouter-{made['router']}"
        port = lab.api_call("GET", f"/v2.0/ports/{vm1['port_id']}")["port"]
        [group] = port["security_groups"]
        assert port["port_security_enabled"] is True

        # The default group: members talk across hosts; the router is not a member.
        wait_for(lambda: probes.ping(ns1, vm2["ip_address"]), 30, what="vm1 -> vm2")
        assert probes.ping(ns2, vm1["ip_address"])
        assert probes.ping(ns1, "192.168.1.1")  # its own pings' replies come back
        assert not probes.ping(router_ns, vm1["ip_address"], count=2)

        # A rule lets ICMP in from anywhere; removing it shuts it again.
        rule = lab.api_call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": group, "direction": "ingress", "protocol": "icmp",
            "remote_ip_prefix": "0.0.0.0/0"}})["security_group_rule"]
        wait_for(lambda: probes.ping(router_ns, vm1["ip_address"]), 15,
                 what="the router pinging vm1 once ICMP is allowed")
        lab.api_call("DELETE", f"/v2.0/security-group-rules/{rule['id']}")
        wait_for(lambda: not probes.ping(router_ns, vm1["ip_address"]), 15,
                 what="the router's pings dropped once the rule is gone")

        # A VM that takes another address is not heard (shown with `lab vm exec`).
        spoofed = "192.168.1.250"
        assert cli(name, base, "vm", "exec", "vm1", "--", "ip", "addr", "add",
                   f"{spoofed}/24", "dev", VM_IFNAME).returncode == 0
        assert cli(name, base, "vm", "exec", "vm1", "--", "ping", "-c", "2", "-W", "1",
                   "-I", spoofed, vm2["ip_address"]).returncode != 0
        assert probes.ping(ns1, vm2["ip_address"])  # its own address still works

        # Without port security (and groups), nothing is filtered on its port.
        lab.api_call("PUT", f"/v2.0/ports/{vm1['port_id']}", {"port": {
            "security_groups": [], "port_security_enabled": False}})
        wait_for(lambda: probes.ping(router_ns, vm1["ip_address"]), 15,
                 what="the router pinging vm1 without port security")
        assert cli(name, base, "vm", "exec", "vm1", "--", "ping", "-c", "2", "-W", "1",
                   "-I", spoofed, "192.168.1.1").returncode == 0
    finally:
        lab.down()
    assert leftovers(name) == []
    assert root_network_snapshot() == before
