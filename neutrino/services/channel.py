"""The agent channel's report and status, as the server answers them (the watch is in
`watch.py`).

A report registers or refreshes an agent; one with nothing new in it is answered from
memory. A status report carries what an agent knows of its host's resources, one typed
report for every kind (`agent.contract.Status`): ports up or down and ports DHCP answers
for are handled here; other kinds register a handler (`status_handlers`) for their field.

Bodies are validated by `agent_reports`. A port's up or down is taken only from its own
host (the host it is bound to), and its DHCP readiness only from a host whose DHCP agent
hosts its network; anything else is ignored, with a log line, rather than refused, so that
one stale entry (a port migrated meanwhile) does not make the agent resend its whole report
forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Row, select

from neutrino.db.models import AGENTS, ALLOCS, DHCP_BINDINGS, PORTS, SUBNETS
from neutrino.registry import BY_TYPE, DHCP
from neutrino.services import changes
from neutrino.services.agent_reports import parse_report, parse_status
from neutrino.services.agents import AgentService, Report
from neutrino.services.changes import ChangeFeed
from neutrino.services.common import Core, bump_revision, utcnow
from neutrino.services.networks import DHCP_OWNER

LOG = logging.getLogger(__name__)
# A handler takes the transaction, the reporting host and its entries; how many it changed.
StatusHandler = Callable[[Connection, str, list[Any]], int]


class AgentChannel:
    """Report and status for agents."""

    def __init__(self, core: Core, agents: AgentService, feed: ChangeFeed) -> None:
        self.core = core
        self.agents = agents
        self.feed = feed
        self.wake_scheduler: Any = lambda: None  # set by the server's periodic task
        self.on_registered: list[Callable[[str, Report], None]] = []
        self.status_handlers: dict[str, StatusHandler] = {}

    @staticmethod
    def parse_report(body: dict[str, Any]) -> Report:
        """An agent's report from its JSON body, validated as strictly as an API body."""
        return parse_report(body)

    def report_fast(self, report: Report) -> dict[str, Any] | None:
        """The answer to a report with nothing new in it (no I/O), or None."""
        agent_id = self.agents.report_fast(report)
        if agent_id is None:
            return None
        return {"agent": {"id": agent_id}, "revision": self.feed.latest}

    def report(self, report: Report) -> dict[str, Any]:
        """Register or refresh an agent (writes to the database)."""
        agent_id, slow = self.agents.report(report)
        if slow:
            self.core.notify()
            for callback in self.on_registered:
                callback(agent_id, report)
            if report.agent_type in BY_TYPE:
                # A new or restarted agent takes resources short of agents at the next
                # pass, which this brings forward.
                self.wake_scheduler()
        return {"agent": {"id": agent_id}, "revision": self.feed.latest}

    def status(self, body: dict[str, Any]) -> dict[str, Any]:
        """What an agent reports of its host's resources; how many rows changed."""
        host, updates, ready, others = parse_status(body, self.status_handlers)

        def txn(conn: Connection) -> int:
            changed = self._ports(conn, host, updates, ready)
            for name, entries in others.items():
                if entries:
                    changed += self.status_handlers[name](conn, host, entries)
            return changed

        changed = self.core.db.write(txn)
        if changed:
            self.core.notify()
        return {"updated": changed}

    def _ports(self, conn: Connection, host: str, updates: dict[str, str],
               ready: set[str]) -> int:
        ids = set(updates) | ready
        if not ids:
            return 0
        changed = 0
        rows = conn.execute(select(PORTS).where(PORTS.c.id.in_(sorted(ids)))).all()
        served = self._dhcp_networks(conn, host) if ready else set()
        for row in rows:
            reported = updates.get(row.id)
            if reported is not None and row.binding_host_id != host:
                # Only the port's own host knows whether it is plugged: a report from
                # elsewhere (the old host after a migration, a confused agent) is ignored.
                LOG.info("Ignored status %s of port %s from %s: the port is bound to %r",
                         reported, row.id, host, row.binding_host_id)
                reported = None
            answered = row.id in ready and row.network_id in served
            if row.id in ready and not answered:
                LOG.info("Ignored DHCP readiness of port %s from %s: no DHCP agent there "
                         "hosts network %s", row.id, host, row.network_id)
            if reported is None and not answered:
                continue
            l2_up = reported == "ACTIVE" if reported is not None else row.l2_up
            dhcp_ready = row.dhcp_ready or answered
            status = "ACTIVE" if l2_up and (dhcp_ready or not self._needs_dhcp(
                conn, row)) else "DOWN"
            if (l2_up, dhcp_ready, status) != (row.l2_up, row.dhcp_ready, row.status):
                bump_revision(conn, PORTS, row.id, utcnow(), {
                    "l2_up": l2_up, "dhcp_ready": dhcp_ready, "status": status})
                changed += 1
                if status != row.status:
                    changes.record(conn, "port", row.id, changes.network(row.network_id),
                                   hosts=[row.binding_host_id])
                    LOG.info("Port %s is %s (reported by %s)", row.id, status, host)
        return changed

    @staticmethod
    def _dhcp_networks(conn: Connection, host: str) -> set[str]:
        """The networks a DHCP agent on `host` hosts."""
        return set(conn.execute(select(DHCP_BINDINGS.c.network_id).join(
            AGENTS, AGENTS.c.id == DHCP_BINDINGS.c.agent_id).where(
            AGENTS.c.host == host, AGENTS.c.agent_type == DHCP.agent_type)).scalars())

    @staticmethod
    def _needs_dhcp(conn: Connection, port: Row[Any]) -> bool:
        """A VM's port with an address on a DHCP subnet waits for a DHCP agent."""
        if port.device_owner.startswith("network:") or port.device_owner == DHCP_OWNER:
            return False
        found = conn.execute(select(ALLOCS.c.subnet_id).join(
            SUBNETS, SUBNETS.c.id == ALLOCS.c.subnet_id).where(
            ALLOCS.c.port_id == port.id, SUBNETS.c.enable_dhcp.is_(True)).limit(1)).first()
        return found is not None
