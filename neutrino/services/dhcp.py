"""The DHCP agent scheduler: which agents host a network, their DHCP ports, and failover.

Networks are one client of the generic scheduler (`scheduler.py`): `DhcpPlacement` says
that a network with a DHCP-enabled subnet wants `dhcp_agents_per_network` DHCP agents and
how a binding is made and released. A binding (network, agent) owns that agent's DHCP port
on the network. When a binding goes (removed, agent deleted, failed over) its port is kept
in reserve with its addresses; the next binding of the network takes the reserved port
before making a new one. So a network that moves keeps its DHCP server's address, and no
two DHCP ports of a network ever serve one agent (the binding's primary key and its unique
port settle any race).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from neutrino import exceptions as exc
from neutrino.db.models import (
    AGENTS,
    ALLOCS,
    DHCP_BINDINGS,
    NETWORKS,
    PORTS,
    SUBNET_CREATION_ORDER,
    SUBNETS,
)
from neutrino.registry import DHCP
from neutrino.schema.policy import Context
from neutrino.schema.request import parse_item
from neutrino.schema.resources import PORT
from neutrino.services import changes, ipam
from neutrino.services.agents import AgentService
from neutrino.services.common import Core, bump_revision, utcnow
from neutrino.services.networks import DHCP_OWNER, NetworkService
from neutrino.services.scheduler import Scheduler, scheduler_kind

LOG = logging.getLogger(__name__)
RESERVED = "reserved_dhcp_port"


def dhcp_device_id(host: str, network_id: str) -> str:
    """The device_id of a host's DHCP port on a network, as Neutron makes it."""
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{network_id}"


def dhcp_subnets(conn: Connection, network_id: str) -> list[str]:
    """The network's subnets with DHCP enabled."""
    return list(conn.execute(select(SUBNETS.c.id).where(
        SUBNETS.c.network_id == network_id, SUBNETS.c.enable_dhcp.is_(True))
        .order_by(*SUBNET_CREATION_ORDER)).scalars())


class DhcpPlacement:
    """Networks on DHCP agents, as the generic scheduler sees them."""

    noun = "network"
    agent_type = DHCP.agent_type
    bindings = DHCP_BINDINGS
    resource_column = "network_id"

    def __init__(self, core: Core,
                 create_port: Callable[[Connection, Context, dict[str, Any], str],
                                       dict[str, Any]]) -> None:
        conf = core.conf
        self.core = core
        self.create_port = create_port
        self.kind = scheduler_kind(conf.network_scheduler_driver)
        self.auto_schedule = conf.network_auto_schedule
        self.fill_always = True
        self.failover = conf.allow_automatic_dhcp_failover
        self.grace = float(conf.dhcp_failover_grace)
        self.rng = random.SystemRandom()

    def wanted(self, conn: Connection, resource_id: str) -> int:
        """dhcp_agents_per_network for a network with a DHCP subnet, else none."""
        exists = conn.execute(select(NETWORKS.c.id).where(NETWORKS.c.id == resource_id)).first()
        if exists is None or not dhcp_subnets(conn, resource_id):
            return 0
        return int(self.core.conf.dhcp_agents_per_network)

    def needing(self, conn: Connection) -> dict[str, int]:
        """Networks with a DHCP-enabled subnet, each wanting dhcp_agents_per_network."""
        per_network = int(self.core.conf.dhcp_agents_per_network)
        return dict.fromkeys(conn.execute(select(SUBNETS.c.network_id).distinct().where(
            SUBNETS.c.enable_dhcp.is_(True))).scalars(), per_network)

    def hints(self, conn: Connection, resource_id: str) -> list[str]:
        """The network's availability zone hints."""
        hints = conn.execute(select(NETWORKS.c.availability_zone_hints).where(
            NETWORKS.c.id == resource_id)).scalar()
        return list(hints or [])

    def eligible(self, conn: Connection, resource_id: str, agent: Row[Any]) -> bool:
        """Any alive, enabled DHCP agent may host any network."""
        return True

    def load(self, conn: Connection) -> Counter[str]:
        """Each agent's load by dhcp_load_type."""
        kind = self.core.conf.dhcp_load_type
        if kind == "networks":
            stmt = select(DHCP_BINDINGS.c.agent_id, func.count()).group_by(
                DHCP_BINDINGS.c.agent_id)
        else:
            table = SUBNETS if kind == "subnets" else PORTS
            stmt = (select(DHCP_BINDINGS.c.agent_id, func.count())
                    .join(table, table.c.network_id == DHCP_BINDINGS.c.network_id)
                    .group_by(DHCP_BINDINGS.c.agent_id))
        return Counter({agent_id: n for agent_id, n in conn.execute(stmt)})

    def bind(self, conn: Connection, network_id: str, agent: Row[Any]) -> None:
        """Bind a network to an agent, with the agent's DHCP port (reserved one first)."""
        conn.execute(insert(DHCP_BINDINGS).values(network_id=network_id, agent_id=agent.id,
                                                  port_id=None, created_at=time.time()))
        port_id = self._claim_port(conn, network_id, agent.host)
        conn.execute(update(DHCP_BINDINGS).where(
            DHCP_BINDINGS.c.network_id == network_id, DHCP_BINDINGS.c.agent_id == agent.id)
            .values(port_id=port_id))
        changes.record(conn, "binding", network_id, changes.network(network_id),
                       hosts=[agent.host])
        LOG.info("Network %s scheduled to DHCP agent %s on %s (port %s)", network_id, agent.id,
                 agent.host, port_id)

    def _claim_port(self, conn: Connection, network_id: str, host: str) -> str:
        device_id = dhcp_device_id(host, network_id)
        mine = conn.execute(select(PORTS.c.id).where(
            PORTS.c.network_id == network_id, PORTS.c.device_owner == DHCP_OWNER,
            PORTS.c.device_id == device_id)).first()
        if mine is not None:
            return str(mine.id)
        reserved = conn.execute(select(PORTS.c.id).where(
            PORTS.c.network_id == network_id, PORTS.c.device_owner == DHCP_OWNER,
            PORTS.c.device_id == RESERVED).order_by(PORTS.c.created_at, PORTS.c.id)
            .limit(1)).first()
        if reserved is not None:
            bump_revision(conn, PORTS, reserved.id, utcnow(), {
                "device_id": device_id, "binding_host_id": host,
                "binding_vif_type": "bridge",
                "binding_vif_details": {"connectivity": "l2", "port_filter": False}})
            changes.record(conn, "port", reserved.id, changes.network(network_id),
                           hosts=[host])
            return str(reserved.id)
        network = conn.execute(select(NETWORKS.c.project_id).where(
            NETWORKS.c.id == network_id)).one()
        body = parse_item(PORT, {
            "network_id": network_id, "device_owner": DHCP_OWNER, "device_id": device_id,
            "binding:host_id": host, "project_id": network.project_id,
            "fixed_ips": [{"subnet_id": s} for s in dhcp_subnets(conn, network_id)]},
            create=True)
        port = self.create_port(conn, Context.admin(), body, utcnow())
        return str(port["id"])

    @staticmethod
    def movable(conn: Connection, network_id: str) -> bool:
        """Every network moves off a dead agent."""
        return True

    def release(self, conn: Connection, network_id: str, agent: Row[Any]) -> None:
        """Unbind a network from an agent; its DHCP port is kept in reserve."""
        binding = conn.execute(select(DHCP_BINDINGS).where(
            DHCP_BINDINGS.c.network_id == network_id,
            DHCP_BINDINGS.c.agent_id == agent.id)).first()
        if binding is None:
            return
        conn.execute(delete(DHCP_BINDINGS).where(DHCP_BINDINGS.c.network_id == network_id,
                                                 DHCP_BINDINGS.c.agent_id == agent.id))
        if binding.port_id is not None:
            bump_revision(conn, PORTS, binding.port_id, utcnow(), {
                "device_id": RESERVED, "binding_host_id": "", "binding_vif_type": "unbound",
                "binding_vif_details": {}, "status": "DOWN"})
            changes.record(conn, "port", binding.port_id, changes.network(network_id),
                           hosts=[agent.host])
        changes.record(conn, "binding", network_id, changes.network(network_id),
                       hosts=[agent.host])
        LOG.info("Network %s removed from DHCP agent %s on %s", network_id, agent.id,
                 agent.host)


class DhcpScheduler:
    """The DHCP scheduler API and the hooks of the resource services."""

    def __init__(self, core: Core, agents: AgentService, networks: NetworkService,
                 create_port: Callable[[Connection, Context, dict[str, Any], str],
                                       dict[str, Any]]) -> None:
        self.core = core
        self.agents = agents
        self.networks = networks
        self.placement = DhcpPlacement(core, create_port)
        self.scheduler = Scheduler(core, agents, self.placement)
        self.rng = random.SystemRandom()

    @property
    def live_agents(self) -> set[str]:
        """Live, enabled DHCP agents as last seen (a hint for the create path)."""
        return self.scheduler.live_agents

    def release(self, conn: Connection, network_id: str, agent: Row[Any]) -> None:
        """Unbind a network from an agent (its DHCP port kept in reserve)."""
        self.placement.release(conn, network_id, agent)

    # -- pieces used inside other transactions --------------------------------------------

    def on_dhcp_needed(self, conn: Connection, network_id: str) -> None:
        """A network gained a DHCP subnet or a port on one: schedule it if nobody hosts it.

        Called on every port create: with no live DHCP agent known (refreshed each pass),
        it costs nothing, and the next pass schedules the network once an agent appears.
        """
        if not self.scheduler.live_agents:
            return
        bound = conn.execute(select(DHCP_BINDINGS.c.agent_id).where(
            DHCP_BINDINGS.c.network_id == network_id).limit(1)).first()
        if bound is None:
            self.scheduler.schedule(conn, network_id, time.time())

    def on_dhcp_subnet(self, conn: Connection, network_id: str, subnet_id: str) -> None:
        """A DHCP subnet was added: existing DHCP ports get an address on it; schedule."""
        ports = conn.execute(select(PORTS.c.id).where(
            PORTS.c.network_id == network_id, PORTS.c.device_owner == DHCP_OWNER)).scalars()
        for port_id in list(ports):
            self.add_address(conn, network_id, port_id, subnet_id)
        self.on_dhcp_needed(conn, network_id)

    def add_address(self, conn: Connection, network_id: str, port_id: str,
                    subnet_id: str) -> None:
        """Give a DHCP port an address on a subnet: its EUI-64 one on an auto-addressed
        (SLAAC) subnet, else one from the pool if it has one."""
        subnet = dict(conn.execute(select(SUBNETS).where(SUBNETS.c.id == subnet_id)).one()
                      ._mapping)
        if ipam.is_auto_address(subnet):
            mac = conn.execute(select(PORTS.c.mac_address).where(PORTS.c.id == port_id)).scalar()
            address: str | None = ipam.eui64_address(subnet, str(mac))
        else:
            address = ipam.pick_address(conn, subnet, self.rng)
        if address is None:
            LOG.warning("No address left on subnet %s for DHCP port %s", subnet_id, port_id)
            return
        conn.execute(insert(ALLOCS).values(ipam.allocation(subnet_id, address, port_id,
                                                           network_id)))
        bump_revision(conn, PORTS, port_id, utcnow())

    # -- the scheduler API ----------------------------------------------------------------

    def _agent(self, conn: Connection, ctx: Context, agent_id: str) -> Row[Any]:
        return self.agents.fetch(conn, ctx, agent_id)

    def list_dhcp_networks(self, ctx: Context, agent_id: str) -> list[dict[str, Any]]:
        """The networks an agent hosts."""
        self.core.policy.enforce(ctx, "get_dhcp-networks", {})
        with self.core.db.read() as conn:
            self._agent(conn, ctx, agent_id)
            ids = list(conn.execute(select(DHCP_BINDINGS.c.network_id).where(
                DHCP_BINDINGS.c.agent_id == agent_id)).scalars())
        return [self.networks.get(ctx, network_id) for network_id in ids]

    def list_dhcp_agents(self, ctx: Context, network_id: str) -> list[dict[str, Any]]:
        """The DHCP agents hosting a network."""
        self.core.policy.enforce(ctx, "get_dhcp-agents", {})
        with self.core.db.read() as conn:
            self.networks.fetch(conn, ctx, network_id)
            rows = conn.execute(select(AGENTS).join(
                DHCP_BINDINGS, DHCP_BINDINGS.c.agent_id == AGENTS.c.id).where(
                DHCP_BINDINGS.c.network_id == network_id).order_by(AGENTS.c.host)).all()
        now = time.time()
        return [self.agents.render(r._mapping, now) for r in rows]

    def add_dhcp_networks(self, ctx: Context, agent_id: str, network_id: str) -> None:
        """Host a network on an agent (Neutron's order of checks and errors)."""
        self.core.policy.enforce(ctx, "create_dhcp-network", {})

        def txn(conn: Connection) -> None:
            self.networks.fetch(conn, ctx, network_id)
            agent = self._agent(conn, ctx, agent_id)
            if agent.agent_type != DHCP.agent_type or not agent.admin_state_up:
                raise exc.InvalidDHCPAgent(id=agent_id)
            hosted = conn.execute(select(DHCP_BINDINGS.c.agent_id).where(
                DHCP_BINDINGS.c.network_id == network_id,
                DHCP_BINDINGS.c.agent_id == agent_id)).first()
            if hosted is not None:
                raise exc.NetworkHostedByDHCPAgent(network_id=network_id, agent_id=agent_id)
            self.placement.bind(conn, network_id, agent)

        self.core.db.write(txn)
        self.core.notify()

    def remove_dhcp_networks(self, ctx: Context, agent_id: str, network_id: str) -> None:
        """Stop hosting a network on an agent."""
        self.core.policy.enforce(ctx, "delete_dhcp-network", {})

        def txn(conn: Connection) -> None:
            self.networks.fetch(conn, ctx, network_id)
            agent = self._agent(conn, ctx, agent_id)
            hosted = conn.execute(select(DHCP_BINDINGS.c.agent_id).where(
                DHCP_BINDINGS.c.network_id == network_id,
                DHCP_BINDINGS.c.agent_id == agent_id)).first()
            if hosted is None:
                raise exc.NetworkNotHostedByDhcpAgent(network_id=network_id, agent_id=agent_id)
            self.placement.release(conn, network_id, agent)

        self.core.db.write(txn)
        self.core.notify()
