"""What one network's DHCP service should be on this host, as a frozen plan (pure).

`plan` takes the network's desired state (as the server sends it) and the agent's settings
and says everything the driver makes: the namespace, the DHCP port's veth pair with its MAC
and addresses, the host entries and options files, the leases to write before a first start,
and dnsmasq's command line. No I/O and no clock: the driver compares the plan with the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import netaddr

from neutrino import registry
from neutrino.agent.dhcp import render
from neutrino.agent.linux.process import Daemon


@dataclass(frozen=True)
class Settings:
    """The agent's side of a plan: where files go and how dnsmasq runs."""

    root: str  # $state_path/dhcp
    dnsmasq: str
    lease_seconds: int
    host_namespace: str | None = None


@dataclass(frozen=True)
class DhcpPlan:
    """One network's DHCP service on this host."""

    network_id: str
    namespace: str
    port_id: str
    mac: str
    outer: str  # the DHCP port's device on the host, for the L2 agent to plug
    inner: str  # its end inside the DHCP namespace, where dnsmasq listens
    addresses: frozenset[str]  # CIDRs on the inner end
    paths: render.Paths
    host_files: tuple[tuple[str, str], ...]  # (port id, entries)
    opts: str
    leases: tuple[tuple[str, str], ...]  # (MAC, IPv4) written before a first start
    lease_seconds: int
    watched: bool  # dnsmasq watches the host files' directory (else: one file, SIGHUP)
    daemon: Daemon
    served: frozenset[str]  # ports with a host entry
    subnets: frozenset[str]  # subnets served (DHCP enabled)
    ports: int  # ports on the network, the DHCP port included


def paths(settings: Settings, network_id: str) -> render.Paths:
    """Where a network's dnsmasq keeps its files."""
    return render.Paths(f"{settings.root}/{network_id}")


def daemon_name(network_id: str) -> str:
    """How the logs name a network's dnsmasq."""
    return f"dnsmasq of network {network_id}"


def plan(state: dict[str, Any], settings: Settings, watched: bool = True) -> DhcpPlan | None:
    """The DHCP service a network needs here; None when there is nothing to serve (no DHCP
    port for this agent, or no subnet with DHCP enabled)."""
    port_id = state.get("dhcp_port_id")
    port = next((p for p in state["ports"] if p["id"] == port_id), None)
    if port is None or not render.dhcp_subnets(state):
        return None
    network_id = state["id"]
    where = paths(settings, network_id)
    subnets = {s["id"]: s for s in state["subnets"]}
    addresses = frozenset(
        f"{ip['ip_address']}/{netaddr.IPNetwork(subnets[ip['subnet_id']]['cidr']).prefixlen}"
        for ip in port["fixed_ips"] if ip["subnet_id"] in subnets)
    inner = registry.dhcp_ns_device(port["id"])
    namespace = registry.dhcp_namespace(network_id, settings.host_namespace)
    args = render.command(state, inner, where, settings.lease_seconds, watched=watched)
    args.remove("--keep-in-foreground")  # daemonised: it outlives the agent
    argv = (settings.dnsmasq, *args[1:])
    files = render.host_files(state)
    return DhcpPlan(
        network_id=network_id, namespace=namespace, port_id=port["id"],
        mac=port["mac_address"], outer=registry.tap_name(port["id"]), inner=inner,
        addresses=addresses, paths=where, host_files=tuple(sorted(files.items())),
        opts=render.opts_text(state),
        leases=tuple((mac, ip) for _port, mac, ip in render.host_entries(state)
                     if ":" not in ip),
        lease_seconds=settings.lease_seconds, watched=watched,
        daemon=Daemon(daemon_name(network_id), argv, where.pid, network_id, namespace),
        served=frozenset(files), subnets=frozenset(s["id"] for s in render.dhcp_subnets(state)),
        ports=len(state["ports"]))
