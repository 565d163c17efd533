"""Data planes that only remember the desired state: the control plane, tested without root.

They follow the same contract as the Linux drivers (idempotent `apply`, `present` for
leftovers, statuses), so the agents and the server are exercised exactly as with real ones.
"""

from __future__ import annotations

import threading
from typing import Any

from oslo_config import cfg

DHCP_OWNER = "network:dhcp"


class _Recorder:
    """Keeps what `apply` was asked to make, per network."""

    def __init__(self) -> None:
        self.networks: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def apply(self, network_id: str, state: dict[str, Any] | None) -> None:
        """Record (or forget) a network's state."""
        with self._lock:
            if state is None:
                self.networks.pop(network_id, None)
            else:
                self.networks[network_id] = state

    def present(self) -> set[str]:
        """Networks recorded now."""
        with self._lock:
            return set(self.networks)

    def snapshot(self) -> list[dict[str, Any]]:
        """The recorded states."""
        with self._lock:
            return list(self.networks.values())


class NoopDhcpDriver(_Recorder):
    """A DHCP agent's host that serves nothing, but says what it would serve."""

    agent_type = "DHCP agent"
    binary = "neutrino-dhcp-agent"
    topic = "dhcp_agent"

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__()
        self.conf = conf

    def configurations(self) -> dict[str, Any]:
        """Neutron's DHCP agent configurations, counted from what is hosted."""
        networks = self.snapshot()
        return {
            "dhcp_driver": self.conf.dhcp_driver,
            "dhcp_lease_duration": self.conf.dhcp_lease_duration,
            "log_agent_heartbeats": False,
            "notifies_port_ready": True,
            "networks": len(networks),
            "subnets": sum(len([s for s in n["subnets"] if s["enable_dhcp"]])
                           for n in networks),
            "ports": sum(len(n["ports"]) for n in networks),
        }

    def status(self) -> tuple[dict[str, str], set[str]]:
        """Every port of a hosted network with an address on a DHCP subnet is served."""
        ready = set()
        for network in self.snapshot():
            dhcp_subnets = {s["id"] for s in network["subnets"] if s["enable_dhcp"]}
            for port in network["ports"]:
                if port["device_owner"] != DHCP_OWNER and any(
                        ip["subnet_id"] in dhcp_subnets for ip in port["fixed_ips"]):
                    ready.add(port["id"])
        return {}, ready


class NoopL2Driver(_Recorder):
    """A Linux bridge agent's host that plugs nothing, but reports its ports up."""

    agent_type = "Linux bridge agent"
    binary = "neutrino-linuxbridge-agent"
    topic = "N/A"

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__()
        self.conf = conf

    def configurations(self) -> dict[str, Any]:
        """Neutron's Linux bridge agent configurations."""
        mappings = dict(m.split(":", 1) for m in self.conf.LINUX_BRIDGE.physical_interface_mappings
                        if ":" in m)
        return {
            "interface_mappings": mappings,
            "bridge_mappings": {},
            "devices": sum(len(n["ports"]) for n in self.snapshot()),
            "tunneling_ip": self.conf.VXLAN.local_ip,
            "tunnel_types": ["vxlan"] if self.conf.VXLAN.local_ip else [],
            "l2_population": True,
        }

    def status(self) -> tuple[dict[str, str], set[str]]:
        """Local ports are up when their admin state is."""
        ports = {p["id"]: "ACTIVE" if p["admin_state_up"] else "DOWN"
                 for n in self.snapshot() for p in n["ports"]}
        return ports, set()
