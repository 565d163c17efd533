"""Data planes that only remember the desired state: the control plane, tested without root.

They follow the same contract as the Linux drivers (idempotent `apply`, `present` for
leftovers, statuses), so the agents and the server are exercised exactly as with real ones.
"""

from __future__ import annotations

import threading
from typing import Any

from oslo_config import cfg

from neutrino.agent import reports


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

    def drifted(self) -> set[str]:
        """Nothing on a host that is not touched can drift."""
        return set()

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
        return reports.dhcp_configurations(self.conf, self.snapshot())

    def status(self) -> tuple[dict[str, str], set[str]]:
        """Every port the real driver would serve counts as served."""
        return {}, reports.served_ports(self.snapshot())


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
        return reports.l2_configurations(self.conf,
                                         sum(len(n["ports"]) for n in self.snapshot()))

    def status(self) -> tuple[dict[str, str], set[str]]:
        """Local ports are up when their admin state is."""
        ports = {p["id"]: "ACTIVE" if p["admin_state_up"] else "DOWN"
                 for n in self.snapshot() for p in n["ports"]}
        return ports, set()
