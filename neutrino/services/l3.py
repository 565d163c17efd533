"""Routers on L3 agents: the placement the generic scheduler runs, the L3 agent scheduler
API (`/agents/{id}/l3-routers`, `/routers/{id}/l3-agents`), and what an L3 agent is sent.

A legacy router is hosted by one L3 agent in mode `legacy` or `dvr_snat`; its ports are
bound to that agent's host. When the agent dies its routers move to a live one after the
same grace as DHCP networks (on by default, unlike Neutron's
`allow_automatic_l3agent_failover`), and the ports follow.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select

from neutrino import exceptions as exc
from neutrino.agent.contract import Key
from neutrino.db.models import (
    ALLOCS,
    FLOATINGIPS,
    L3_BINDINGS,
    NETWORKS,
    PORTS,
    ROUTERS,
    SUBNETS,
)
from neutrino.registry import L3
from neutrino.schema.policy import Context
from neutrino.services import changes
from neutrino.services.agents import AgentService
from neutrino.services.changes import Scope
from neutrino.services.common import Core
from neutrino.services.l3_ha import HA_INTERFACE, HaRouters, shown_states
from neutrino.services.routers import (
    INTERFACE_OWNERS,
    ROUTER_GATEWAY,
    RouterService,
    active_host,
    bind_ports,
    record,
)
from neutrino.services.scheduler import Scheduler, scheduler_kind

LOG = logging.getLogger(__name__)
ROUTER = "router"
HOSTING_MODES = ("legacy", "dvr_snat")
ALL_AGENTS = 1_000_000  # max_l3_agents_per_router = 0: as many as there are


def record_router_networks(conn: Connection, router_id: str, host: str) -> None:
    """An HA router came to or left a host: the L2 agents of its networks rewire (that
    host plugs or unplugs its ports, the others' flooding lists gain or lose the host)."""
    for port_id, network_id in conn.execute(select(PORTS.c.id, PORTS.c.network_id).where(
            PORTS.c.device_id == router_id,
            PORTS.c.device_owner.in_((*INTERFACE_OWNERS, ROUTER_GATEWAY)))).all():
        changes.record(conn, "port", port_id, changes.network(network_id), hosts=[host, None])


def agent_mode(agent: Row[Any]) -> str:
    """An L3 agent's mode, from its configurations (Neutron's default: legacy)."""
    return str((agent.configurations or {}).get("agent_mode", "legacy"))


class L3Placement:
    """Routers on L3 agents, as the generic scheduler sees them."""

    noun = "router"
    agent_type = L3.agent_type
    bindings = L3_BINDINGS
    resource_column = "router_id"

    def __init__(self, core: Core, ha: HaRouters) -> None:
        conf = core.conf
        self.core = core
        self.ha = ha
        self.kind = scheduler_kind(conf.router_scheduler_driver)
        self.auto_schedule = conf.router_auto_schedule
        self.fill_always = False
        self.failover = conf.allow_automatic_l3agent_failover
        self.grace = float(conf.dhcp_failover_grace)

    def _wants(self, ha: bool, status: str) -> int:
        if not ha:
            return 1
        if status == "ERROR":
            return 0  # an HA router without a VRID cannot run anywhere
        # 0: every eligible agent (the scheduler binds as many as there are).
        return self.core.conf.max_l3_agents_per_router or ALL_AGENTS

    def wanted(self, conn: Connection, resource_id: str) -> int:
        """A legacy router wants one agent; an HA router `max_l3_agents_per_router`."""
        row = conn.execute(select(ROUTERS.c.ha, ROUTERS.c.status).where(
            ROUTERS.c.id == resource_id)).first()
        return self._wants(row.ha, row.status) if row is not None else 0

    def needing(self, conn: Connection) -> dict[str, int]:
        """Every router, with how many agents it wants."""
        return {r.id: self._wants(r.ha, r.status) for r in conn.execute(
            select(ROUTERS.c.id, ROUTERS.c.ha, ROUTERS.c.status))}

    @staticmethod
    def movable(conn: Connection, resource_id: str) -> bool:
        """Whether failover moves the router off a dead agent: not an HA one, whose other
        agents take over by VRRP at once (a frozen agent's keepalived may still be
        serving: moving its share would make another copy)."""
        return not conn.execute(select(ROUTERS.c.ha).where(ROUTERS.c.id == resource_id)).scalar()

    def hints(self, conn: Connection, resource_id: str) -> list[str]:
        """The router's availability zone hints."""
        hints = conn.execute(select(ROUTERS.c.availability_zone_hints).where(
            ROUTERS.c.id == resource_id)).scalar()
        return list(hints or [])

    def eligible(self, conn: Connection, resource_id: str, agent: Row[Any]) -> bool:
        """Agents that host centralized routers; internal-only routers only on agents that
        take them."""
        if agent_mode(agent) not in HOSTING_MODES:
            return False
        if (agent.configurations or {}).get("handle_internal_only_routers", True):
            return True
        gateway = conn.execute(select(ROUTERS.c.gw_port_id).where(
            ROUTERS.c.id == resource_id)).scalar()
        return gateway is not None

    def load(self, conn: Connection) -> Counter[str]:
        """Routers per agent."""
        return Counter({agent_id: n for agent_id, n in conn.execute(
            select(L3_BINDINGS.c.agent_id, func.count()).group_by(L3_BINDINGS.c.agent_id))})

    def bind(self, conn: Connection, router_id: str, agent: Row[Any]) -> None:
        """Host a router on an agent; a legacy router's ports are bound to the agent's
        host, an HA router gets an HA port there (its ports follow the active host)."""
        router = conn.execute(select(ROUTERS).where(ROUTERS.c.id == router_id)).one()
        conn.execute(insert(L3_BINDINGS).values(router_id=router_id, agent_id=agent.id,
                                                created_at=time.time()))
        if router.ha:
            self.ha.add_port(conn, router, agent.host)
            record_router_networks(conn, router_id, agent.host)
            record(conn, router_id, "l3_binding")  # every host: its keepalived's peers
        else:
            bind_ports(conn, router_id, agent.host)
            record(conn, router_id, "l3_binding", hosts=[agent.host])
        LOG.info("Router %s scheduled to L3 agent %s on %s", router_id, agent.id, agent.host)

    def release(self, conn: Connection, router_id: str, agent: Row[Any]) -> None:
        """Stop hosting a router on an agent; its ports are unbound (an HA router's move to
        the host still active, if any)."""
        router = conn.execute(select(ROUTERS).where(ROUTERS.c.id == router_id)).first()
        gone = conn.execute(delete(L3_BINDINGS).where(L3_BINDINGS.c.router_id == router_id,
                                                      L3_BINDINGS.c.agent_id == agent.id))
        if not gone.rowcount or router is None:
            return
        if router.ha:
            self.ha.remove_port(conn, router_id, agent.host)
            record_router_networks(conn, router_id, agent.host)
            bind_ports(conn, router_id, active_host(conn, router_id) or "")
            record(conn, router_id, "l3_binding")  # the others' peers change
        else:
            bind_ports(conn, router_id, "")
        record(conn, router_id, "l3_binding", hosts=[agent.host])
        LOG.info("Router %s removed from L3 agent %s on %s", router_id, agent.id, agent.host)


class L3Scheduler:
    """The L3 agent scheduler API, and scheduling on router create."""

    def __init__(self, core: Core, agents: AgentService, routers: RouterService) -> None:
        self.core = core
        self.agents = agents
        self.routers = routers
        self.placement = L3Placement(core, routers.ha)
        self.scheduler = Scheduler(core, agents, self.placement)
        routers.schedule = self.on_router_created
        routers.unschedule = self.unschedule

    def on_router_created(self, conn: Connection, router_id: str) -> None:
        """A new router goes to an agent at once, if one is alive (else the fill pass)."""
        if self.placement.auto_schedule:
            self.scheduler.schedule(conn, router_id, time.time())

    def unschedule(self, conn: Connection, router_id: str) -> None:
        """Take a router off every agent (before it changes kind)."""
        for agent in self.scheduler.bound(conn, router_id):
            self.placement.release(conn, router_id, agent)

    def list_l3_routers(self, ctx: Context, agent_id: str) -> list[dict[str, Any]]:
        """The routers an agent hosts."""
        self.core.policy.enforce(ctx, "get_l3-routers", {})
        with self.core.db.read() as conn:
            self.agents.fetch(conn, ctx, agent_id)
            ids = list(conn.execute(select(L3_BINDINGS.c.router_id).where(
                L3_BINDINGS.c.agent_id == agent_id).order_by(L3_BINDINGS.c.router_id))
                .scalars())
        return [self.routers.get(ctx, router_id) for router_id in ids]

    def list_l3_agents(self, ctx: Context, router_id: str) -> list[dict[str, Any]]:
        """The L3 agents hosting a router, with `ha_state` (null: not an HA router)."""
        self.core.policy.enforce(ctx, "get_l3-agents", {})
        with self.core.db.read() as conn:
            self.routers.fetch(conn, ctx, router_id)
            rows = self.scheduler.bound(conn, router_id)
            router = conn.execute(select(ROUTERS.c.ha).where(ROUTERS.c.id == router_id)).one()
            states = {r.agent_id: (r.ha_state, r.ha_state_changed_at) for r in conn.execute(
                select(L3_BINDINGS.c.agent_id, L3_BINDINGS.c.ha_state,
                       L3_BINDINGS.c.ha_state_changed_at)
                .where(L3_BINDINGS.c.router_id == router_id))}
        now = time.time()
        agents = [self.agents.render(r._mapping, now) for r in rows]
        if not router.ha:
            return [{**a, "ha_state": None} for a in agents]
        reported = [states.get(a["id"], ("standby", None)) for a in agents]
        shown = shown_states([(state, a["alive"], at)
                              for a, (state, at) in zip(agents, reported, strict=True)])
        return [{**a, "ha_state": state} for a, state in zip(agents, shown, strict=True)]

    def add_l3_routers(self, ctx: Context, agent_id: str, router_id: str) -> None:
        """Host a router on an agent (Neutron's checks, in Neutron's order)."""
        self.core.policy.enforce(ctx, "create_l3-router", {})

        def txn(conn: Connection) -> None:
            self.routers.fetch(conn, ctx, router_id)
            agent = self.agents.fetch(conn, ctx, agent_id)
            if agent.agent_type != L3.agent_type:
                raise exc.InvalidL3Agent(id=agent_id)
            if agent_mode(agent) in ("dvr", "dvr_no_external"):
                raise exc.DVRL3CannotAssignToDvrAgent()
            if not agent.admin_state_up or not self.placement.eligible(conn, router_id,
                                                                       agent):
                raise exc.InvalidL3Agent(id=agent_id)
            for bound in self.scheduler.bound(conn, router_id):
                if bound.id == agent_id:
                    return  # hosted there already: nothing to do, as Neutron answers
                raise exc.RouterHostedByL3Agent(router_id=router_id, agent_id=bound.id)
            self.placement.bind(conn, router_id, agent)

        self.core.db.write(txn)
        self.core.notify()

    def remove_l3_routers(self, ctx: Context, agent_id: str, router_id: str) -> None:
        """Stop hosting a router on an agent (nothing if it does not host it)."""
        self.core.policy.enforce(ctx, "delete_l3-router", {})

        def txn(conn: Connection) -> None:
            agent = self.agents.fetch(conn, ctx, agent_id)
            if agent_mode(agent) in ("dvr", "dvr_no_external"):
                raise exc.DVRL3CannotRemoveFromDvrAgent()
            self.placement.release(conn, router_id, agent)

        self.core.db.write(txn)
        self.core.notify()


def _port_state(conn: Connection, port: Row[Any]) -> dict[str, Any]:
    fixed = conn.execute(select(ALLOCS.c.subnet_id, ALLOCS.c.ip_address, SUBNETS.c.cidr,
                                SUBNETS.c.gateway_ip)
                         .join(SUBNETS, SUBNETS.c.id == ALLOCS.c.subnet_id)
                         .where(ALLOCS.c.port_id == port.id).order_by(ALLOCS.c.ip_key)).all()
    mtu = conn.execute(select(NETWORKS.c.mtu).where(NETWORKS.c.id == port.network_id)).scalar()
    return {"id": port.id, "mac_address": port.mac_address, "network_id": port.network_id,
            "mtu": mtu, "fixed_ips": [{"subnet_id": s, "ip_address": a, "cidr": c,
                                       "gateway_ip": g} for s, a, c, g in fixed]}


class L3Projection:
    """An L3 agent: the routers it hosts, each with its ports, routes and floating IPs."""

    agent_type = L3.agent_type
    key_kinds = frozenset({ROUTER})
    broad: frozenset[str] = frozenset()
    shaping: frozenset[str] = frozenset()  # a placement is logged on the agent's host

    def related(self, conn: Connection, key: Key) -> set[Key]:
        """Nothing travels with a router."""
        return set()

    def scopes(self, conn: Connection, agent: Row[Any]) -> dict[Scope, set[Key]]:
        """The routers bound to the agent (every change a router's agent must see is logged
        in the router's scope)."""
        return {(ROUTER, r): {(ROUTER, r)} for r in conn.execute(
            select(L3_BINDINGS.c.router_id).where(L3_BINDINGS.c.agent_id == agent.id))
            .scalars()}

    def state(self, conn: Connection, key: Key, agent: Row[Any]) -> dict[str, Any] | None:
        """What the agent should make of a router it hosts (None if it does not)."""
        router_id = key[1]
        bound = conn.execute(select(L3_BINDINGS.c.router_id).where(
            L3_BINDINGS.c.router_id == router_id, L3_BINDINGS.c.agent_id == agent.id)).first()
        router = conn.execute(select(ROUTERS).where(ROUTERS.c.id == router_id)).first() \
            if bound is not None else None
        if router is None:
            return None
        ports = conn.execute(select(PORTS).where(PORTS.c.device_id == router_id).where(
            PORTS.c.device_owner.in_((*INTERFACE_OWNERS, ROUTER_GATEWAY)))
            .order_by(PORTS.c.id)).all()
        interfaces = [_port_state(conn, p) for p in ports if p.device_owner != ROUTER_GATEWAY]
        gateway = None
        gw_port = next((p for p in ports if p.id == router.gw_port_id), None)
        if gw_port is not None:
            gateway = {**_port_state(conn, gw_port), "enable_snat": router.enable_snat}
        fips = [dict(f._mapping) for f in conn.execute(
            select(FLOATINGIPS.c.id, FLOATINGIPS.c.floating_ip_address,
                   FLOATINGIPS.c.fixed_ip_address).where(
                FLOATINGIPS.c.router_id == router_id,
                FLOATINGIPS.c.fixed_ip_address.is_not(None)).order_by(FLOATINGIPS.c.id))]
        ha = None
        if router.ha:
            ha_port = conn.execute(select(PORTS).where(
                PORTS.c.device_id == router_id, PORTS.c.device_owner == HA_INTERFACE,
                PORTS.c.binding_host_id == agent.host)).first()
            peers = sorted(conn.execute(select(ALLOCS.c.ip_address).join(
                PORTS, PORTS.c.id == ALLOCS.c.port_id).where(
                PORTS.c.device_id == router_id, PORTS.c.device_owner == HA_INTERFACE,
                PORTS.c.binding_host_id != agent.host)).scalars())
            ha = {"vr_id": router.ha_vr_id, "peers": peers,
                  "port": _port_state(conn, ha_port) if ha_port is not None else None}
        return {"id": router.id, "name": router.name, "admin_state_up": router.admin_state_up,
                "revision_number": router.revision_number, "interfaces": interfaces,
                "gateway": gateway, "routes": list(router.routes or []), "floatingips": fips,
                "ha": ha}
