"""dnsmasq's files and command line for a network, against whole expected texts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.dhcp.render import (
    Paths,
    command,
    host_files,
    leases_text,
    opts_text,
    stale_files,
)

S1, S2, S6 = "11111111-aaaa", "22222222-bbbb", "66666666-ffff"
DHCP_PORT, VM1, VM2, OFF = "d0", "p1", "p2", "p3"


def network(**overrides: Any) -> dict[str, Any]:
    """Seed 000's net2 with a second subnet, a DHCP port and two VM ports."""
    state: dict[str, Any] = {
        "id": "net2", "mtu": 1450, "dhcp_port_id": DHCP_PORT,
        "subnets": [
            {"id": S1, "cidr": "198.51.100.0/24", "ip_version": 4, "enable_dhcp": True,
             "gateway_ip": "198.51.100.1", "dns_nameservers": [], "host_routes": []},
            {"id": S2, "cidr": "203.0.113.0/28", "ip_version": 4, "enable_dhcp": True,
             "gateway_ip": None, "dns_nameservers": ["192.0.2.53", "192.0.2.54"],
             "host_routes": [{"destination": "10.10.0.0/16", "nexthop": "203.0.113.14"}]},
            {"id": S6, "cidr": "2001:db8::/64", "ip_version": 6, "enable_dhcp": False,
             "gateway_ip": "2001:db8::1", "dns_nameservers": [], "host_routes": []},
        ],
        "ports": [
            {"id": DHCP_PORT, "mac_address": "fa:16:3e:00:00:01", "device_owner": "network:dhcp",
             "admin_state_up": True, "fixed_ips": [
                 {"subnet_id": S1, "ip_address": "198.51.100.2"},
                 {"subnet_id": S2, "ip_address": "203.0.113.2"}]},
            {"id": VM1, "mac_address": "fa:16:3e:aa:bb:01", "device_owner": "compute:nova",
             "admin_state_up": True, "fixed_ips": [
                 {"subnet_id": S1, "ip_address": "198.51.100.7"},
                 {"subnet_id": S6, "ip_address": "2001:db8::7"}]},
            {"id": VM2, "mac_address": "fa:16:3e:aa:bb:02", "device_owner": "compute:nova",
             "admin_state_up": True, "fixed_ips": [
                 {"subnet_id": S2, "ip_address": "203.0.113.5"}]},
            {"id": OFF, "mac_address": "fa:16:3e:aa:bb:03", "device_owner": "compute:nova",
             "admin_state_up": False, "fixed_ips": [
                 {"subnet_id": S1, "ip_address": "198.51.100.9"}]},
        ],
    }
    state.update(overrides)
    return state


def test_host_files() -> None:
    """One file per served port; DHCP ports, disabled ports and non-DHCP subnets left out."""
    assert host_files(network()) == {
        VM1: "fa:16:3e:aa:bb:01,198.51.100.7,host-198-51-100-7.openstacklocal.\n",
        VM2: "fa:16:3e:aa:bb:02,203.0.113.5,host-203-0-113-5.openstacklocal.\n",
    }


def test_leases_are_prewritten_for_every_served_address() -> None:
    """One lease per served IPv4 address, valid one lease duration from now."""
    assert leases_text(network(), 600, 1_000) == (
        "1600 fa:16:3e:aa:bb:01 198.51.100.7 host-198-51-100-7 *\n"
        "1600 fa:16:3e:aa:bb:02 203.0.113.5 host-203-0-113-5 *\n")
    assert leases_text(network(), -1, 1_000).startswith("0 fa:16:3e:aa:bb:01 ")


def test_opts() -> None:
    """Router, DNS (the DHCP server itself when the subnet has none) and routes per subnet."""
    assert opts_text(network()) == (
        "tag:subnet-11111111-aaaa,option:dns-server,198.51.100.2\n"
        "tag:subnet-11111111-aaaa,option:router,198.51.100.1\n"
        "tag:subnet-22222222-bbbb,option:dns-server,192.0.2.53,192.0.2.54\n"
        "tag:subnet-22222222-bbbb,option:router\n"
        "tag:subnet-22222222-bbbb,option:classless-static-route,10.10.0.0/16,203.0.113.14\n"
    )


def test_command() -> None:
    """Static ranges per DHCP subnet, the lease time, the MTU, files under the network's dir."""
    assert command(network(), "ns-d0", Paths("/var/lib/neutrino/dhcp/net2"), 86400) == [
        "dnsmasq", "--no-hosts", "--no-resolv", "--keep-in-foreground",
        "--except-interface=lo", "--pid-file=/var/lib/neutrino/dhcp/net2/pid",
        "--dhcp-hostsdir=/var/lib/neutrino/dhcp/net2/hosts.d",
        "--dhcp-optsfile=/var/lib/neutrino/dhcp/net2/opts",
        "--dhcp-leasefile=/var/lib/neutrino/dhcp/net2/leases", "--dhcp-match=set:ipxe,175",
        "--interface=ns-d0", "--bind-interfaces", "--domain=openstacklocal", "--port=0",
        "--dhcp-range=set:subnet-11111111-aaaa,198.51.100.0,static,255.255.255.0,86400s",
        "--dhcp-range=set:subnet-22222222-bbbb,203.0.113.0,static,255.255.255.240,86400s",
        "--dhcp-option-force=option:mtu,1450", "--dhcp-lease-max=272",
    ]
    infinite = command(network(), "ns-d0", Paths("/x"), -1, extra_conf="/etc/dnsmasq.conf")
    assert infinite[-1] == "--conf-file=/etc/dnsmasq.conf"
    assert "--dhcp-range=set:subnet-11111111-aaaa,198.51.100.0,static,255.255.255.0," \
           "infinite" in infinite


def test_removed_ports_are_stale() -> None:
    """Files of ports that are gone are found for removal (dnsmasq needs a SIGHUP for those)."""
    assert stale_files({"p1", "p2", "old"}, host_files(network())) == {"old"}


def test_dnsmasq_accepts_the_command_line(tmp_path: Path) -> None:
    """The real dnsmasq parses the rendered options (`--test`: no daemon, no socket)."""
    binary = shutil.which("dnsmasq", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if binary is None:
        print("\nSKIP: dnsmasq is not installed (tools/install installs dnsmasq-base)")
        pytest.skip("dnsmasq is not installed")
    paths = Paths(str(tmp_path))
    (tmp_path / "hosts.d").mkdir()
    (tmp_path / "opts").write_text(opts_text(network()))
    args = command(network(), "ns-d0", paths, 86400)
    result = subprocess.run([binary, *args[1:], "--test"], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert "syntax check OK" in result.stderr + result.stdout
