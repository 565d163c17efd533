"""The Linux bridge agent's data plane: one bridge per network, VXLAN, tap plugging.

`plan` turns a network's desired state into what the host should have (pure); the driver
compares that with the kernel and changes only the difference, so a second pass does
nothing. VXLAN is unicast only: the remote endpoints come from the watch, each as an
all-zero-MAC forwarding entry; there is no multicast group and no learning. A flat network
joins the interface `physical_interface_mappings` names for its physical network; that
interface is the operator's, so it is only ever enslaved (see `Kernel.ensure_uplink`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from oslo_config import cfg

from neutrino.agent import reports
from neutrino.agent.linux.ip import Kernel

LOG = logging.getLogger(__name__)
ORPHAN = "orphan:"


def bridge_name(network_id: str) -> str:
    """Neutron's bridge name for a network."""
    return f"brq{network_id[:11]}"


def tap_name(port_id: str) -> str:
    """Neutron's tap name for a port."""
    return f"tap{port_id[:11]}"


@dataclass(frozen=True)
class Plan:
    """What one network needs on this host."""

    bridge: str
    vxlan: str | None
    vni: int | None
    remotes: frozenset[str]
    taps: frozenset[str]
    uplink: str | None = None


def plan(network: dict[str, Any], local_ip: str,
         mappings: dict[str, str] | None = None) -> Plan:
    """The host's share of a network, from its desired state (no I/O)."""
    vxlan = vni = uplink = None
    if network["network_type"] == "vxlan" and local_ip:
        vni = int(network["segmentation_id"])
        vxlan = f"vxlan-{vni}"
    elif network["network_type"] == "flat":
        uplink = (mappings or {}).get(network.get("physical_network") or "")
    remotes = frozenset(e["ip_address"] for e in network.get("remote_endpoints", [])
                        if e["ip_address"] != local_ip)
    taps = frozenset(tap_name(p["id"]) for p in network["ports"])
    return Plan(bridge_name(network["id"]), vxlan, vni, remotes if vxlan else frozenset(),
                taps, uplink)


class LinuxBridgeDriver:
    """Bridges, VXLAN devices and tap plugging in one namespace."""

    agent_type = "Linux bridge agent"
    binary = "neutrino-linuxbridge-agent"
    topic = "N/A"

    def __init__(self, conf: cfg.ConfigOpts, netns: str | None = None) -> None:
        self.conf = conf
        self.local_ip = conf.VXLAN.local_ip
        self.mappings = reports.interface_mappings(conf)
        self.kernel = Kernel(netns or conf.AGENT.host_namespace)
        self._lock = threading.Lock()
        self._applied: dict[str, dict[str, Any]] = {}

    def configurations(self) -> dict[str, Any]:
        """Neutron's Linux bridge agent configurations."""
        with self._lock:
            devices = sum(len(n["ports"]) for n in self._applied.values())
        return reports.l2_configurations(self.conf, devices)

    def present(self) -> set[str]:
        """Networks with a bridge here; bridges of unknown networks as orphan keys."""
        with self._lock:
            known = {bridge_name(n): n for n in self._applied}
        keys = set()
        for name, link in self.kernel.links().items():
            if link.kind == "bridge" and name.startswith("brq"):
                keys.add(known.get(name, ORPHAN + name))
        return keys

    def apply(self, network_id: str, state: dict[str, Any] | None) -> None:
        """Make the host match a network's state (None: remove its bridge and VXLAN)."""
        if network_id.startswith(ORPHAN):
            self._remove(network_id[len(ORPHAN):], None)
            return
        if state is None:
            with self._lock:
                old = self._applied.pop(network_id, None)
            vxlan = plan(old, self.local_ip).vxlan if old else None
            self._remove(bridge_name(network_id), vxlan)
            return
        wanted = plan(state, self.local_ip, self.mappings)
        self.kernel.ensure_bridge(wanted.bridge)
        if wanted.vxlan and wanted.vni is not None:
            self.kernel.ensure_vxlan(wanted.vxlan, wanted.vni, self.local_ip, wanted.bridge)
            self.kernel.ensure_remotes(wanted.vxlan, set(wanted.remotes))
        if wanted.uplink:
            self.kernel.ensure_uplink(wanted.uplink, wanted.bridge)
        links = self.kernel.links()
        for tap in sorted(wanted.taps):
            if tap in links:  # the VM's tap exists once the VM is plugged
                self.kernel.ensure_in_bridge(tap, wanted.bridge)
        with self._lock:
            self._applied[network_id] = state

    def drifted(self) -> set[str]:
        """Networks with a wanted tap present but not plugged, or a missing bridge."""
        links = self.kernel.links()
        with self._lock:
            networks = dict(self._applied)
        out = set()
        for network_id, state in networks.items():
            wanted = plan(state, self.local_ip, self.mappings)
            bridge = links.get(wanted.bridge)
            if bridge is None:
                out.add(network_id)
                continue
            for tap in wanted.taps:
                link = links.get(tap)
                if link is not None and (link.master != bridge.index or not link.up):
                    out.add(network_id)
                    break
        return out

    def _remove(self, bridge: str, vxlan: str | None) -> None:
        links = self.kernel.links()
        bridge_link = links.get(bridge)
        if vxlan is None and bridge_link is not None:
            # Find the VXLAN device enslaved to the bridge (an orphan's VNI is unknown).
            vxlan = next((n for n, link in links.items()
                          if link.kind == "vxlan" and link.master == bridge_link.index), None)
        if vxlan:
            self.kernel.delete(vxlan)
        self.kernel.delete(bridge)  # a flat uplink is released, not deleted

    def status(self) -> tuple[dict[str, str], set[str]]:
        """A port is ACTIVE when its tap is in its bridge and up, and admin-enabled."""
        links = self.kernel.links()
        out: dict[str, str] = {}
        with self._lock:
            networks = list(self._applied.values())
        for network in networks:
            bridge = links.get(bridge_name(network["id"]))
            for port in network["ports"]:
                tap = links.get(tap_name(port["id"]))
                plugged = bool(tap and bridge and tap.master == bridge.index and tap.up)
                out[port["id"]] = "ACTIVE" if plugged and port["admin_state_up"] else "DOWN"
        return out, set()
