"""The agent channel: report, watch and status, as the server answers them.

A watch returns, for one agent, the full desired state of every network whose state may
have changed for it since the revision it gives, and the networks it should drop. It is
level-triggered: the agent replaces what it has for those networks, so a change delivered
twice does no harm, and a snapshot (every network, `snapshot: true`) replaces everything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select

from neutrino import exceptions as exc
from neutrino.db.listing import Page
from neutrino.db.models import AGENTS, ALLOCS, DHCP_BINDINGS, NETWORKS, PORTS, SUBNETS
from neutrino.services import changes
from neutrino.services.agents import DHCP_AGENT, L2_AGENT, AgentService, Report
from neutrino.services.changes import Change, ChangeFeed
from neutrino.services.common import Core, bump_revision, utcnow
from neutrino.services.dhcp import DhcpScheduler
from neutrino.services.networks import DHCP_OWNER
from neutrino.services.ports import fixed_ips_of

LOG = logging.getLogger(__name__)


@dataclass
class Interest:
    """What one agent cares about: its networks, and its host."""

    agent_id: str
    agent_type: str
    host: str
    networks: set[str]

    def wants(self, change: Change) -> bool:
        """Whether a change may alter this agent's desired state."""
        if change.network_id in self.networks or change.host == self.host:
            return True
        if change.kind == "agent":
            # A DHCP agent cares about itself; an L2 agent about every tunnel endpoint.
            return self.agent_type == L2_AGENT or change.object_id == self.agent_id
        return False


def _ports(conn: Connection, where: Any) -> list[dict[str, Any]]:
    rows = conn.execute(select(PORTS.c.id, PORTS.c.name, PORTS.c.network_id,
                               PORTS.c.mac_address, PORTS.c.device_owner, PORTS.c.device_id,
                               PORTS.c.admin_state_up, PORTS.c.binding_host_id,
                               PORTS.c.status, PORTS.c.revision_number)
                        .where(where).order_by(PORTS.c.id)).all()
    ports = [dict(r._mapping) for r in rows]
    if not ports:
        return []
    fixed = fixed_ips_of(conn, Page(ports, False))
    for port in ports:
        port["binding:host_id"] = port.pop("binding_host_id")
        port["fixed_ips"] = fixed.get(port["id"], [])
    return ports


def _network(conn: Connection, network_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(NETWORKS.c.id, NETWORKS.c.name, NETWORKS.c.admin_state_up,
                              NETWORKS.c.mtu, NETWORKS.c.network_type,
                              NETWORKS.c.physical_network, NETWORKS.c.segmentation_id,
                              NETWORKS.c.revision_number)
                       .where(NETWORKS.c.id == network_id)).first()
    return dict(row._mapping) if row is not None else None


def dhcp_state(conn: Connection, network_id: str, agent_id: str) -> dict[str, Any] | None:
    """What a DHCP agent should serve on a network it hosts (None if it does not)."""
    binding = conn.execute(select(DHCP_BINDINGS.c.port_id).where(
        DHCP_BINDINGS.c.network_id == network_id,
        DHCP_BINDINGS.c.agent_id == agent_id)).first()
    network = _network(conn, network_id) if binding is not None else None
    if network is None or binding is None:
        return None
    subnets = conn.execute(select(
        SUBNETS.c.id, SUBNETS.c.cidr, SUBNETS.c.ip_version, SUBNETS.c.gateway_ip,
        SUBNETS.c.enable_dhcp, SUBNETS.c.dns_nameservers, SUBNETS.c.host_routes,
        SUBNETS.c.allocation_pools, SUBNETS.c.ipv6_address_mode, SUBNETS.c.ipv6_ra_mode)
        .where(SUBNETS.c.network_id == network_id).order_by(SUBNETS.c.id)).all()
    network["subnets"] = [dict(s._mapping) for s in subnets]
    network["ports"] = _ports(conn, PORTS.c.network_id == network_id)
    network["dhcp_port_id"] = binding.port_id
    return network


def l2_state(conn: Connection, network_id: str, host: str) -> dict[str, Any] | None:
    """What an L2 agent should wire for a network with ports on its host (None if none)."""
    local = _ports(conn, (PORTS.c.network_id == network_id) & (PORTS.c.binding_host_id == host))
    network = _network(conn, network_id) if local else None
    if network is None:
        return None
    hosts = conn.execute(select(PORTS.c.binding_host_id).distinct().where(
        PORTS.c.network_id == network_id, PORTS.c.binding_host_id != "",
        PORTS.c.binding_host_id != host)).scalars().all()
    endpoints = []
    if hosts:
        for agent_host, configurations in conn.execute(
                select(AGENTS.c.host, AGENTS.c.configurations).where(
                    AGENTS.c.agent_type == L2_AGENT, AGENTS.c.host.in_(hosts))
                .order_by(AGENTS.c.host)):
            address = (configurations or {}).get("tunneling_ip")
            if address:
                endpoints.append({"host": agent_host, "ip_address": address})
    network["ports"] = local
    network["remote_endpoints"] = endpoints
    return network


class AgentChannel:
    """Report, watch and status for agents."""

    def __init__(self, core: Core, agents: AgentService, scheduler: DhcpScheduler,
                 feed: ChangeFeed) -> None:
        self.core = core
        self.agents = agents
        self.scheduler = scheduler
        self.feed = feed
        self.wake_scheduler: Any = lambda: None  # set by the server's periodic task

    @staticmethod
    def parse_report(body: dict[str, Any]) -> Report:
        """An agent's report from its JSON body."""
        try:
            return Report(
                agent_type=str(body["agent_type"]), host=str(body["host"]),
                binary=str(body.get("binary", "")), topic=str(body.get("topic", "")),
                configurations=dict(body.get("configurations") or {}),
                availability_zone=body.get("availability_zone"),
                start_flag=bool(body.get("start_flag", False)),
                applied_revision=int(body.get("applied_revision", 0)),
                resources_synced=body.get("resources_synced"))
        except (KeyError, TypeError, ValueError) as err:
            raise exc.BadRequest(resource="agent", msg=f"Invalid report: {err}") from None

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
            if report.agent_type == DHCP_AGENT:
                self.scheduler.live_agents.add(agent_id)
                # A new or restarted agent takes networks short of agents at the next pass,
                # which this brings forward.
                self.wake_scheduler()
        return {"agent": {"id": agent_id}, "revision": self.feed.latest}

    def _agent(self, conn: Connection, agent_type: str, host: str) -> Row[Any]:
        row = conn.execute(select(AGENTS).where(AGENTS.c.agent_type == agent_type,
                                                AGENTS.c.host == host)).first()
        if row is None:
            raise exc.AgentNotFound(id=f"{agent_type}@{host}")
        return row

    def interest(self, agent_type: str, host: str) -> Interest:
        """The networks an agent cares about now."""
        with self.core.db.read() as conn:
            agent = self._agent(conn, agent_type, host)
            if agent_type == DHCP_AGENT:
                networks = set(conn.execute(select(DHCP_BINDINGS.c.network_id).where(
                    DHCP_BINDINGS.c.agent_id == agent.id)).scalars())
            else:
                networks = set(conn.execute(select(PORTS.c.network_id).distinct().where(
                    PORTS.c.binding_host_id == host)).scalars())
        return Interest(agent.id, agent_type, host, networks)

    def states(self, interest: Interest, network_ids: set[str] | None,
               revision: int) -> dict[str, Any]:
        """Desired states of the given networks (None: all of the agent's: a snapshot)."""
        with self.core.db.read() as conn:
            snapshot = network_ids is None
            if network_ids is None:
                network_ids = set(interest.networks)
            networks, removed = [], []
            for network_id in sorted(network_ids):
                if interest.agent_type == DHCP_AGENT:
                    state = dhcp_state(conn, network_id, interest.agent_id)
                else:
                    state = l2_state(conn, network_id, interest.host)
                if state is None:
                    removed.append(network_id)
                else:
                    networks.append(state)
        return {"revision": revision, "snapshot": snapshot, "networks": networks,
                "removed": removed}

    def affected(self, interest: Interest, entries: list[Change]) -> set[str] | None:
        """Networks whose state may have changed for the agent; None if none did."""
        relevant = [c for c in entries if interest.wants(c)]
        if not relevant:
            return None
        networks = {c.network_id for c in relevant if c.network_id}
        if any(c.kind == "agent" for c in relevant):
            networks |= interest.networks
        return networks

    def status(self, body: dict[str, Any]) -> dict[str, Any]:
        """Ports up or down on a host, and ports a DHCP agent answers for."""
        try:
            host = str(body["host"])
            updates = {str(p["id"]): str(p["status"]).upper() for p in body.get("ports", [])}
            ready = {str(p) for p in body.get("dhcp_ready", [])}
        except (KeyError, TypeError) as err:
            raise exc.BadRequest(resource="status", msg=f"Invalid status: {err}") from None
        if any(s not in ("ACTIVE", "DOWN") for s in updates.values()):
            raise exc.BadRequest(resource="status", msg="status must be ACTIVE or DOWN")

        def txn(conn: Connection) -> int:
            changed = 0
            ids = set(updates) | ready
            if not ids:
                return 0
            rows = conn.execute(select(PORTS).where(PORTS.c.id.in_(sorted(ids)))).all()
            for row in rows:
                l2_up = updates[row.id] == "ACTIVE" if row.id in updates else row.l2_up
                dhcp_ready = row.dhcp_ready or row.id in ready
                status = "ACTIVE" if l2_up and (dhcp_ready or not self._needs_dhcp(
                    conn, row)) else "DOWN"
                if (l2_up, dhcp_ready, status) != (row.l2_up, row.dhcp_ready, row.status):
                    bump_revision(conn, PORTS, row.id, utcnow(), {
                        "l2_up": l2_up, "dhcp_ready": dhcp_ready, "status": status})
                    changed += 1
                    if status != row.status:
                        changes.record(conn, "port", row.id, row.network_id,
                                       hosts=[row.binding_host_id])
                        LOG.info("Port %s is %s (reported by %s)", row.id, status, host)
            return changed

        changed = self.core.db.write(txn)
        if changed:
            self.core.notify()
        return {"updated": changed}

    @staticmethod
    def _needs_dhcp(conn: Connection, port: Row[Any]) -> bool:
        """A VM's port with an address on a DHCP subnet waits for a DHCP agent."""
        if port.device_owner.startswith("network:") or port.device_owner == DHCP_OWNER:
            return False
        found = conn.execute(select(ALLOCS.c.subnet_id).join(
            SUBNETS, SUBNETS.c.id == ALLOCS.c.subnet_id).where(
            ALLOCS.c.port_id == port.id, SUBNETS.c.enable_dhcp.is_(True)).limit(1)).first()
        return found is not None

