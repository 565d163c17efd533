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
import select
import threading
import time
from dataclasses import dataclass
from typing import Any

from oslo_config import cfg
from pyroute2.netlink.rtnl import RTMGRP_LINK

from neutrino import registry
from neutrino.agent import reports
from neutrino.agent.contract import Key, Notify, Status
from neutrino.agent.linux import netns, security
from neutrino.agent.linux.kernel import Kernel
from neutrino.agent.readback import ReadBacks
from neutrino.registry import bridge_name, tap_name, vxlan_name

LOG = logging.getLogger(__name__)
NETWORK = "network"
ORPHAN = "orphan:"
MANY_TAPS = 16


@dataclass(frozen=True, order=True)
class PortPlan:
    """A port of this host on the network: its tap, and whether it should be up."""

    id: str
    tap: str
    admin_up: bool


@dataclass(frozen=True)
class Plan:
    """What one network needs on this host."""

    network_id: str
    bridge: str
    vxlan: str | None
    vni: int | None
    remotes: frozenset[str]
    ports: tuple[PortPlan, ...]
    uplink: str | None = None

    @property
    def taps(self) -> frozenset[str]:
        """The taps to plug."""
        return frozenset(p.tap for p in self.ports)


def plan(network: dict[str, Any], local_ip: str,
         mappings: dict[str, str] | None = None) -> Plan:
    """The host's share of a network, from its desired state (no I/O)."""
    vxlan = vni = uplink = None
    if network["network_type"] == "vxlan" and local_ip:
        vni = int(network["segmentation_id"])
        vxlan = vxlan_name(vni)
    elif network["network_type"] == "flat":
        uplink = (mappings or {}).get(network.get("physical_network") or "")
    remotes = frozenset(e["ip_address"] for e in network.get("remote_endpoints", [])
                        if e["ip_address"] != local_ip)
    ports = tuple(sorted(PortPlan(p["id"], tap_name(p["id"]), bool(p["admin_state_up"]))
                         for p in network["ports"]))
    return Plan(network["id"], bridge_name(network["id"]), vxlan, vni,
                remotes if vxlan else frozenset(), ports, uplink)


def _devices(one: Plan) -> tuple[Any, ...]:
    """What of a plan the network's devices depend on (not its taps, nor the VXLAN
    device's remotes: their changes are applied by difference)."""
    return one.bridge, one.vxlan, one.vni, one.uplink


def port_statuses(plans: list[Plan], plugged: set[str]) -> dict[str, str]:
    """A port is ACTIVE when its tap is plugged and up, and it is admin-enabled (pure)."""
    return {p.id: "ACTIVE" if p.tap in plugged and p.admin_up else "DOWN"
            for one in plans for p in one.ports}


class LinuxBridgeDriver:
    """Bridges, VXLAN devices and tap plugging in one namespace."""

    kind = registry.L2

    def __init__(self, conf: cfg.ConfigOpts, netns: str | None = None) -> None:
        self.conf = conf
        self.local_ip = conf.VXLAN.local_ip
        self.mappings = reports.interface_mappings(conf)
        self.kernel = Kernel(netns or conf.AGENT.host_namespace)
        self.security: security.HostSecurity | None = None
        if security.wanted(conf.SECURITYGROUP.enable_security_group,
                           conf.SECURITYGROUP.firewall_driver, self.kernel.netns):
            self.security = security.HostSecurity(str(self.kernel.netns))
        self.key_kinds = frozenset({NETWORK}) | (security.KINDS if self.security else
                                                 frozenset())
        self._lock = threading.Lock()
        self._applied: dict[str, Plan] = {}
        self._tap_networks: dict[str, str] = {}  # tap -> network, for host events
        self.verify_interval = conf.AGENT.resync_interval
        self._verified = ReadBacks()  # when each network's devices were read back
        self._wired: dict[str, frozenset[str]] = {}  # network -> taps seen in its bridge

    def configurations(self) -> dict[str, Any]:
        """Neutron's Linux bridge agent configurations."""
        with self._lock:
            devices = sum(len(p.ports) for p in self._applied.values())
        found = reports.l2_configurations(self.conf, devices)
        found["firewall_driver"] = "nftables" if self.security else "noop"
        return found

    def present(self) -> set[Key]:
        """Networks with a bridge here; bridges of unknown networks as orphan keys."""
        with self._lock:
            known = {p.bridge: network_id for network_id, p in self._applied.items()}
        keys = set()
        for name, link in self.kernel.links().items():
            if link.kind == "bridge" and name.startswith("brq"):
                keys.add((NETWORK, known.get(name, ORPHAN + name)))
        if self.security is not None:
            keys |= self.security.keys()
        return keys

    def apply(self, key: Key, state: dict[str, Any] | None) -> bool:
        """Make the host match a network's state (None: remove its bridge and VXLAN)."""
        if key[0] in security.KINDS:
            return self.security.set_key(key, state) if self.security else False
        network_id = key[1]
        if network_id.startswith(ORPHAN):
            return self._remove(network_id[len(ORPHAN):], None)
        if state is None:
            with self._lock:
                old = self._applied.pop(network_id, None)
                self._wired.pop(network_id, None)
                self._index_taps(old, None)
            self._verified.forget(network_id)
            changed = self._remove(bridge_name(network_id), old.vxlan if old else None)
            if self.security is not None:
                changed |= self.security.set_network(network_id, None)
            return changed
        wanted = plan(state, self.local_ip, self.mappings)
        now = time.monotonic()
        with self._lock:
            before = self._applied.get(network_id)
            wired = self._wired.get(network_id, frozenset())
        # A network's state changes with each of its ports turning ACTIVE and each host
        # that gets one (hundreds in a cold start): what was applied and read back recently
        # is trusted, so that such a pass looks only at taps not known wired and adds or
        # removes only the remotes that changed. Reading the VXLAN entries back (a `bridge`
        # run) was most of the agent's work before. The looks for drift and the
        # verification after `verify_interval` find what changes under the agent.
        incremental = before is not None and _devices(before) == _devices(wanted) and \
            self._verified.recent(network_id, self.verify_interval, now)
        # The firewall first: a VM's tap joins its bridge already filtered.
        changed = self.security.set_network(network_id, state) if self.security else False
        try:
            with self.kernel.session() as kernel:
                if not incremental:
                    changed |= self._ensure_devices(kernel, wanted)
                    wired = frozenset()
                elif before is not None and wanted.vxlan and before.remotes != wanted.remotes:
                    changed |= kernel.ensure_remotes(wanted.vxlan, set(wanted.remotes),
                                                     assume=set(before.remotes))
                plugged, wired = self._plug(kernel, wanted, wired)
                changed |= plugged
                # A port bound elsewhere now (a router failed over, a VM migrated) leaves
                # this bridge, or its stale device here would answer for it.
                for tap in sorted(before.taps - wanted.taps if before else ()):
                    changed |= kernel.ensure_out_of_bridge(tap, wanted.bridge)
        except Exception:
            self._verified.forget(network_id)  # read everything back next time
            raise
        with self._lock:
            self._applied[network_id] = wanted
            self._wired[network_id] = wired
            self._index_taps(before, wanted)
        if not incremental:
            self._verified.mark(network_id, now)
        return changed

    def _ensure_devices(self, kernel: Kernel, wanted: Plan) -> bool:
        """The network's bridge, its VXLAN device with the remotes, its flat uplink."""
        changed = kernel.ensure_bridge(wanted.bridge)
        if wanted.vxlan and wanted.vni is not None:
            changed |= kernel.ensure_vxlan(wanted.vxlan, wanted.vni, self.local_ip,
                                           wanted.bridge, set(wanted.remotes))
        if wanted.uplink:
            changed |= kernel.ensure_uplink(wanted.uplink, wanted.bridge)
        return changed

    def _plug(self, kernel: Kernel, wanted: Plan,
              wired: frozenset[str]) -> tuple[bool, frozenset[str]]:
        """The network's present taps not known wired go into its bridge, up; whether any
        changed, and the taps now known wired."""
        candidates = sorted(wanted.taps - wired)
        # A few taps: one request each; many (a cold start, an external network with a
        # router's gateway per router): one read of every link.
        links = kernel.links(details=False) if len(candidates) > MANY_TAPS else None
        bridge = links.get(wanted.bridge) if links is not None else None
        now_wired = set(wired & wanted.taps)
        plugged = 0
        for tap in candidates:
            link = links.get(tap) if links is not None else kernel.link(tap)
            if link is None:
                continue  # the VM's tap exists once it is plugged
            if bridge is None or link.master != bridge.index or not link.up:
                plugged += kernel.ensure_in_bridge(tap, wanted.bridge)
            now_wired.add(tap)
        LOG.debug("Network %s: %d taps wanted, %d looked at, %d plugged now", wanted.network_id,
                  len(wanted.taps), len(candidates), plugged)
        return plugged > 0, frozenset(now_wired)

    def _index_taps(self, old: Plan | None, new: Plan | None) -> None:
        """Keep the tap -> network index of host events in step with the plans (locked)."""
        if old is not None:
            for tap in old.taps:
                self._tap_networks.pop(tap, None)
        if new is not None:
            for tap in new.taps:
                self._tap_networks[tap] = new.network_id

    def drifted(self) -> set[Key]:
        """Networks with a wanted tap present but not plugged, or a missing bridge; taps
        gone or out of their bridge are no longer known wired (their ports turn DOWN)."""
        links = self.kernel.links(details=False)
        with self._lock:
            plans = dict(self._applied)
        out = set()
        if self.security is not None:
            if not self.security.present():
                # Our tables are gone (or were never made): a filtered network re-applies
                # them.
                out |= {(NETWORK, n) for n in sorted(self.security.filtered_networks())[:1]}
            else:
                self.security.verify_if_due()
        for network_id, wanted in plans.items():
            bridge = links.get(wanted.bridge)
            if bridge is None:
                out.add((NETWORK, network_id))
                self._verified.forget(network_id)  # made again in full
                continue
            loose = {tap for tap in wanted.taps if (link := links.get(tap)) is not None
                     and (link.master != bridge.index or not link.up)}
            if loose:
                out.add((NETWORK, network_id))
            gone = {tap for tap in wanted.taps if tap not in links}
            if loose or gone:
                self._loosen(network_id, loose | gone)
        return out

    def _loosen(self, network_id: str, taps: set[str]) -> None:
        """Taps seen out of their bridge (or down) are no longer known wired."""
        with self._lock:
            self._wired[network_id] = self._wired.get(network_id, frozenset()) - taps

    def events(self, notify: Notify, stop: threading.Event) -> None:
        """Netlink link events of the host: a tap of a port here that appears (a VM plugged,
        a DHCP or router port made) gets its network applied at once. A tap already in a
        bridge and up is left to the looks for drift (plugging one raises an event too)."""
        ipr = netns.iproute(self.kernel.netns)
        try:
            # Links only: pyroute2's default groups add the bridges' forwarding entries,
            # addresses and routes (each new tap brings IPv6 ones), every message parsed in
            # full to be dropped here.
            ipr.bind(groups=RTMGRP_LINK)
            while not stop.is_set():
                if not select.select([ipr.fileno()], [], [], 0.5)[0]:
                    continue
                keys = set()
                for msg in ipr.get():
                    event = msg.get("event")
                    if event not in ("RTM_NEWLINK", "RTM_DELLINK"):
                        continue
                    tap = msg.get_attr("IFLA_IFNAME")
                    network_id = self._tap_networks.get(tap)
                    if network_id is None:
                        continue
                    if event == "RTM_DELLINK":
                        self._loosen(network_id, {tap})  # its port turns DOWN
                        continue
                    if msg.get_attr("IFLA_MASTER") and msg["flags"] & 1:
                        continue  # plugged and up already
                    self._loosen(network_id, {tap})  # a new device, or one unplugged
                    keys.add((NETWORK, network_id))
                if keys:
                    notify(keys)
        finally:
            ipr.close()

    def _remove(self, bridge: str, vxlan: str | None) -> bool:
        links = self.kernel.links()
        bridge_link = links.get(bridge)
        if vxlan is None and bridge_link is not None:
            # Find the VXLAN device enslaved to the bridge (an orphan's VNI is unknown).
            vxlan = next((n for n, link in links.items()
                          if link.kind == "vxlan" and link.master == bridge_link.index), None)
        changed = self.kernel.delete(vxlan) if vxlan else False
        return self.kernel.delete(bridge) or changed  # a flat uplink is released, not deleted

    def status(self) -> Status:
        """Ports whose tap is known to be in its bridge and up are ACTIVE (if
        admin-enabled). Known, not read: applies see each tap they plug or find plugged,
        host events and the looks for drift see each one leave or go; reading every link
        of a host for each status sent was a quarter of a network node's agent in a cold
        start."""
        with self._lock:
            plans = list(self._applied.values())
            plugged = {tap for p in plans for tap in self._wired.get(p.network_id, ())}
        return Status(ports=port_statuses(plans, plugged))
