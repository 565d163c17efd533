"""The Linux bridge agent's security keys: what it was sent, and the firewall made of it.

The agent is sent its networks (the ports on its host, with their groups, port security and
address pairs), the groups those ports are in, the member buckets of the groups that rules
name as remote, and address groups (see `neutrino.services.security_projection`). This
keeps the latest state of each, builds the host's `firewall.Plan` from all of them (pure)
and has the `Firewall` apply it. Applies from several worker threads are combined: one
thread renders and applies while the others wait for a render that includes their change,
so that a snapshot of a thousand keys costs far fewer than a thousand applies.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from neutrino.agent.contract import Key
from neutrino.agent.linux import firewall
from neutrino.agent.linux.firewall import Firewall, Group, Members, Plan, Port

LOG = logging.getLogger(__name__)
SECURITY_GROUP, MEMBERS, ADDRESS_GROUP = "security_group", "sg_members", "address_group"
KINDS = frozenset({SECURITY_GROUP, MEMBERS, ADDRESS_GROUP})
DRIVERS = {"nftables", "iptables", "iptables_hybrid",
           "neutron.agent.linux.iptables_firewall.IptablesFirewallDriver",
           "neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver",
           "neutron.agent.linux.openvswitch_firewall.OVSFirewallDriver", "openvswitch"}
NOOP = {"", "noop", "neutron.agent.firewall.NoopFirewallDriver"}


def wanted(enable: bool, driver: str, namespace: str | None) -> bool:
    """Whether the agent should filter, from `[securitygroup]` and where it runs (never in
    the root namespace: its netfilter tables are the machine's)."""
    if not enable or driver.strip() in NOOP:
        return False
    if driver.strip() not in DRIVERS:
        raise ValueError(f"unknown [securitygroup] firewall_driver {driver!r}: use nftables "
                         "(or Neutron's iptables driver names, which mean it), or noop")
    if not namespace:
        LOG.error("Security groups are NOT enforced: this agent runs in the root namespace, "
                  "whose netfilter tables neutrino never touches; set [AGENT] "
                  "host_namespace, or [securitygroup] firewall_driver = noop to silence this")
        return False
    return True


class HostSecurity:
    """The security state an L2 agent was sent, and its host's firewall."""

    def __init__(self, namespace: str, verify_interval: float = 60.0) -> None:
        self.firewall = Firewall(namespace)
        self.verify_interval = verify_interval
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._ports: dict[str, tuple[Port, ...]] = {}  # network -> its filtered ports
        self._groups: dict[str, Group] = {}
        self._buckets: dict[str, Members] = {}  # "group:bucket" -> members
        self._address_groups: dict[str, Members] = {}
        self._generation = 0  # bumped by every change
        self._rendered = 0  # the generation last applied
        self._busy = False
        self._verified = time.monotonic()  # the first apply makes the tables whole
        self._failure: Exception | None = None
        self._lost = False  # the last look found our tables missing

    def keys(self) -> set[Key]:
        """The security keys held now."""
        with self._lock:
            return ({(SECURITY_GROUP, g) for g in self._groups}
                    | {(MEMBERS, b) for b in self._buckets}
                    | {(ADDRESS_GROUP, a) for a in self._address_groups})

    def filtered_networks(self) -> set[str]:
        """Networks with a filtered port here."""
        with self._lock:
            return {n for n, ports in self._ports.items() if ports}

    def set_network(self, network_id: str, state: dict[str, Any] | None) -> bool:
        """A network's ports changed (None: none left here); True if the firewall did."""
        ports = () if state is None else tuple(sorted(
            firewall.port_of(network_id, p) for p in state.get("ports", ())
            if firewall.filtered(p)))
        with self._lock:
            same = self._ports.get(network_id, ()) == ports
        if same:
            # Nothing new; but tables the last look for drift found gone (deleted by hand,
            # the namespace remade) are made again.
            return self.sync(verify=True) if ports and self._lost else False
        with self._lock:
            if ports:
                self._ports[network_id] = ports
            else:
                self._ports.pop(network_id, None)
            self._generation += 1
        return self.sync()

    def set_key(self, key: Key, state: dict[str, Any] | None) -> bool:
        """A security key's state (None: not wanted here); True if the firewall changed."""
        kind, object_id = key
        where: dict[str, Any]
        value: Group | Members | None
        if kind == SECURITY_GROUP:
            where, value = self._groups, firewall.group_of(state) if state else None
        elif kind == MEMBERS:
            where, value = self._buckets, Members.of(state["addresses"]) if state else None
        elif kind == ADDRESS_GROUP:
            where = self._address_groups
            value = Members.of(state["addresses"]) if state else None
        else:
            return False
        with self._lock:
            if where.get(object_id) == value:
                return False  # a group's members sent again with its rules: nothing new
            _store(where, object_id, value)
            self._generation += 1
        return self.sync()

    def plan(self) -> Plan:
        """The firewall the held state asks for (under the lock)."""
        by_group: dict[str, list[Members]] = {}
        for name, found in self._buckets.items():
            by_group.setdefault(name.partition(":")[0], []).append(found)
        members = {g: Members.union(found) for g, found in by_group.items()}
        ports = tuple(p for network in self._ports.values() for p in network)
        zones = self.firewall.zones(self._ports)
        return Plan(ports, dict(self._groups), members, dict(self._address_groups), zones)

    def sync(self, verify: bool = False) -> bool:
        """Apply the latest state (combined with concurrent callers); True if it changed
        the host. Raises what the apply raised, to each caller it was for."""
        with self._lock:
            mine = self._generation
            while self._busy and self._rendered < mine:
                self._done.wait()
            if self._rendered >= mine and not verify:
                if self._failure is not None:
                    raise self._failure
                return False
            self._busy = True
            generation = self._generation
            plan = self.plan()
        changed = False
        failure = None
        now = time.monotonic()
        try:
            if not plan.ports and not verify:
                changed = self.firewall.remove()
            else:
                changed = self.firewall.apply(plan, verify=verify)
                if verify:
                    self._verified = now
                    self._lost = False
        except Exception as err:
            failure = err
        with self._lock:
            self._busy = False
            self._rendered = generation
            self._failure = failure
            self._done.notify_all()
        if failure is not None:
            raise failure
        if changed:
            LOG.debug("Firewall of %s at generation %d: %d ports", self.firewall.namespace,
                      generation, len(plan.ports))
        return changed

    def verify_if_due(self) -> bool:
        """Every `verify_interval`, check the kernel's tables against what was applied and
        make them whole if they differ; True if that changed the host. Called from the
        agent's look for drift, never from a change: checking lists the whole table (tens
        of milliseconds on a host of a thousand ports), which a port joining a group must
        not wait for."""
        with self._lock:
            due = bool(self._ports) and \
                time.monotonic() - self._verified > self.verify_interval
        if not due:
            return False
        changed = self.sync(verify=True)
        if changed:
            LOG.warning("The firewall of %s had drifted from what was applied: made whole",
                        self.firewall.namespace)
        return changed

    def present(self) -> bool:
        """Whether the host has both our tables now."""
        netfilter = self.firewall.netfilter
        found = netfilter.has_set("inet", firewall.TABLE, "untracked") and \
            netfilter.has_set("bridge", firewall.TABLE, "filtered")
        self._lost = not found
        return found


def _store(where: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        where.pop(key, None)
    else:
        where[key] = value
