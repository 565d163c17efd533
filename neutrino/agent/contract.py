"""The contract between the agent runner and a data plane driver.

A driver makes one host match the desired state, one key at a time. A key is
`(kind, id)`: `("network", <id>)` for the DHCP and Linux bridge agents, `("router", <id>)`
for an L3 agent. The runner owns the loops (watch, reconcile, heartbeat, status); a driver
only says what it handles and does, for one key:

- `apply(key, state)`: make the host match `state` (None: remove the key's things) and say
  whether anything changed. Idempotent: a second call with the same state changes nothing.
  Drivers turn `state` into a typed, frozen plan with a pure function first (no I/O), then
  compare the plan with the host and change only the difference.
- `present()`: the keys the host has now, found on the host (so leftovers are removed);
- `drifted()`: keys whose host state went wrong since they were applied (a cheap look);
- `status()`: what the server should know (ports up, DHCP ready, router states);
- `configurations()`: Neutron's `configurations` of the agent.

A driver may also have `events(notify, stop)`: a loop that watches the host (a netlink
monitor) and calls `notify(keys)` the moment something concerning those keys happens (a VM's
tap appearing), until `stop` is set; the runner then applies them at once instead of at the
next look for drift.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from neutrino.registry import AgentKind

Key = tuple[str, str]  # (kind, id)


def key_text(key: Key) -> str:
    """A key as logs show it: `network 5f2c...`."""
    return f"{key[0]} {key[1]}"


@dataclass(frozen=True)
class Status:
    """What an agent reports of its host's resources: one typed report for every kind.

    `ports`: port id -> ACTIVE/DOWN (plugged on this host, or not); `dhcp_ready`: ports a
    DHCP server here answers for; `routers`: HA router id -> active/standby; `floatingips`:
    floating IP id -> ACTIVE/DOWN/ERROR (in the kernel here, or not).
    """

    ports: Mapping[str, str] = field(default_factory=dict)
    dhcp_ready: frozenset[str] = frozenset()
    routers: Mapping[str, str] = field(default_factory=dict)
    floatingips: Mapping[str, str] = field(default_factory=dict)

    def since(self, sent: Status) -> Status:
        """What differs from what the server was last told (ready ports only grow)."""
        return Status(
            ports={k: v for k, v in self.ports.items() if sent.ports.get(k) != v},
            dhcp_ready=self.dhcp_ready - sent.dhcp_ready,
            routers={k: v for k, v in self.routers.items() if sent.routers.get(k) != v},
            floatingips={k: v for k, v in self.floatingips.items()
                         if sent.floatingips.get(k) != v})

    def within(self, current: Status) -> Status:
        """This report less the entries `current` no longer has (so that one coming back
        is sent again)."""
        return Status({k: v for k, v in self.ports.items() if k in current.ports},
                      self.dhcp_ready & current.dhcp_ready,
                      {k: v for k, v in self.routers.items() if k in current.routers},
                      {k: v for k, v in self.floatingips.items() if k in current.floatingips})

    def merged(self, newer: Status) -> Status:
        """This report with `newer`'s values on top (what the server knows after both)."""
        return Status({**self.ports, **newer.ports}, self.dhcp_ready | newer.dhcp_ready,
                      {**self.routers, **newer.routers},
                      {**self.floatingips, **newer.floatingips})

    def __bool__(self) -> bool:
        return bool(self.ports or self.dhcp_ready or self.routers or self.floatingips)

    def body(self, host: str) -> dict[str, Any]:
        """The channel's status body."""
        return {"host": host, "dhcp_ready": sorted(self.dhcp_ready),
                "ports": [{"id": p, "status": s} for p, s in sorted(self.ports.items())],
                "routers": [{"id": r, "ha_state": s} for r, s in sorted(self.routers.items())],
                "floatingips": [{"id": f, "status": s}
                                for f, s in sorted(self.floatingips.items())]}

    def count(self) -> int:
        """How many entries the report carries."""
        return len(self.ports) + len(self.dhcp_ready) + len(self.routers) + \
            len(self.floatingips)


class Driver(Protocol):
    """What an agent does on its host (see the module's docstring)."""

    kind: AgentKind
    key_kinds: frozenset[str]

    def configurations(self) -> dict[str, Any]:
        """The `configurations` the agent reports."""

    def apply(self, key: Key, state: dict[str, Any] | None) -> bool:
        """Make the host match `state` for a key (None: remove it); True if it changed."""

    def present(self) -> set[Key]:
        """Keys the host has now."""

    def status(self) -> Status:
        """What the server should know of this host's resources."""

    def drifted(self) -> set[Key]:
        """Keys whose host state went wrong since they were applied."""


Notify = Callable[[set[Key]], None]


class EventSource(Protocol):
    """A driver that also reports drift as it happens."""

    def events(self, notify: Notify, stop: threading.Event) -> None:
        """Watch the host until `stop` is set; `notify` keys that need applying."""
