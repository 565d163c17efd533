"""A data plane that records plans instead of making them: the agents and the server,
tested without root (the faucet `fakeoftable` idea: ask what the host would have).

Each fake builds the same plans as its Linux driver, with the same pure functions, and keeps
the latest per key; `apply` says whether the plan changed, exactly as a real driver says
whether the host changed. Selected with `[AGENT] dataplane = noop`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from oslo_config import cfg

from neutrino import registry
from neutrino.agent import reports
from neutrino.agent.contract import Key, Status
from neutrino.agent.dhcp.driver import settings_of
from neutrino.agent.dhcp.plan import DhcpPlan
from neutrino.agent.dhcp.plan import plan as dhcp_plan
from neutrino.agent.l3.driver import l3_configurations
from neutrino.agent.l3.plan import RouterPlan
from neutrino.agent.l3.plan import plan as router_plan
from neutrino.agent.linux import firewall, l2, security
from neutrino.registry import AgentKind

P = TypeVar("P")


class FakeDataPlane(Generic[P]):
    """Plans per key, as a driver would have applied them."""

    kind: AgentKind
    key_kinds: frozenset[str] = frozenset({"network"})

    def __init__(self, planner: Callable[[Key, dict[str, Any]], P | None]) -> None:
        self.planner = planner
        self.plans: dict[Key, P] = {}
        self.applies = 0  # apply calls that changed a plan
        self.drift: set[Key] = set()  # keys a test says went wrong on the "host"
        self._lock = threading.Lock()

    def apply(self, key: Key, state: dict[str, Any] | None) -> bool:
        """Record the key's plan (None state or plan: forget it); True if it changed."""
        wanted = self.planner(key, state) if state is not None else None
        with self._lock:
            before = self.plans.get(key)
            if wanted is None:
                self.plans.pop(key, None)
            else:
                self.plans[key] = wanted
            self.drift.discard(key)
            changed = before != wanted
            self.applies += changed
        return changed

    def present(self) -> set[Key]:
        """Keys with a plan."""
        with self._lock:
            return set(self.plans)

    def drifted(self) -> set[Key]:
        """The keys a test marked as drifted."""
        with self._lock:
            return set(self.drift)

    def snapshot(self) -> list[P]:
        """The recorded plans."""
        with self._lock:
            return list(self.plans.values())

    def configurations(self) -> dict[str, Any]:
        """What the agent reports."""
        return {}

    def status(self) -> Status:
        """What the agent reports of its resources."""
        return Status()


class FakeDhcp(FakeDataPlane[DhcpPlan]):
    """A DHCP agent's host that serves nothing, but knows what it would serve."""

    kind = registry.DHCP

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        settings = settings_of(conf)
        super().__init__(lambda _key, state: dhcp_plan(state, settings))
        self.conf = conf

    def configurations(self) -> dict[str, Any]:
        """Neutron's DHCP agent configurations, counted from the plans."""
        return reports.dhcp_configurations(self.conf, self.snapshot())

    def status(self) -> Status:
        """Every port a plan serves counts as served."""
        return Status(dhcp_ready=frozenset(p for one in self.snapshot() for p in one.served))


def _security_plan(key: Key, state: dict[str, Any]) -> Any:
    """What a firewall would hold for a security key (pure)."""
    if key[0] == security.SECURITY_GROUP:
        return firewall.group_of(state)
    return firewall.Members.of(state["addresses"])


class FakeL2(FakeDataPlane[Any]):
    """A Linux bridge agent's host that plugs and filters nothing, but reports its ports
    plugged and knows the groups and members it would enforce."""

    kind = registry.L2
    key_kinds = frozenset({"network"}) | security.KINDS

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        local_ip, mappings = conf.VXLAN.local_ip, reports.interface_mappings(conf)
        super().__init__(lambda key, state: l2.plan(state, local_ip, mappings)
                         if key[0] == "network" else _security_plan(key, state))
        self.conf = conf

    def networks(self) -> list[l2.Plan]:
        """The network plans."""
        return [p for p in self.snapshot() if isinstance(p, l2.Plan)]

    def configurations(self) -> dict[str, Any]:
        """Neutron's Linux bridge agent configurations."""
        return reports.l2_configurations(self.conf,
                                         sum(len(p.ports) for p in self.networks()))

    def status(self) -> Status:
        """Every planned tap counts as plugged: ports are up when their admin state is."""
        plans = self.networks()
        return Status(ports=l2.port_statuses(plans, {p.tap for one in plans
                                                        for p in one.ports}))


class FakeL3(FakeDataPlane[RouterPlan]):
    """An L3 agent's host that routes nothing, but knows every router it would make."""

    kind = registry.L3
    key_kinds = frozenset({"router"})

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(lambda _key, state: router_plan(state))
        self.conf = conf

    def configurations(self) -> dict[str, Any]:
        """Neutron's L3 agent configurations, counted from the plans."""
        return l3_configurations(self.conf, self.snapshot())

    def status(self) -> Status:
        """Every planned floating IP counts as in the kernel."""
        return Status(floatingips={f.id: "ACTIVE" for p in self.snapshot()
                                   for f in p.floating_ips})
