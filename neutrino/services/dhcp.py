"""The DHCP agent scheduler: which agents host a network, their DHCP ports, and failover.

A binding (network, agent) owns that agent's DHCP port on the network. When a binding goes
(removed, agent deleted, failed over) its port is kept in reserve with its addresses; the
next binding of the network takes the reserved port before making a new one. So a network
that moves keeps its DHCP server's address, and no two DHCP ports of a network ever serve
one agent (the binding's primary key and its unique port settle any race).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from neutrino import exceptions as exc
from neutrino.db.models import AGENTS, ALLOCS, DHCP_BINDINGS, LEASES, NETWORKS, PORTS, SUBNETS
from neutrino.schema.policy import Context
from neutrino.schema.request import parse_item
from neutrino.schema.resources import PORT
from neutrino.services import changes, ipam
from neutrino.services.agents import DHCP_AGENT, AgentService
from neutrino.services.common import Core, bump_revision, utcnow
from neutrino.services.networks import DHCP_OWNER, NetworkService

LOG = logging.getLogger(__name__)
RESERVED = "reserved_dhcp_port"
FAILOVER_LEASE = "dhcp-failover"
SCHEDULERS = {"chance": "chance", "chancescheduler": "chance", "weight": "weight",
              "weightscheduler": "weight", "azawareweightscheduler": "az", "az": "az"}


def dhcp_device_id(host: str, network_id: str) -> str:
    """The device_id of a host's DHCP port on a network, as Neutron makes it."""
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, host)}-{network_id}"


def scheduler_kind(driver: str) -> str:
    """chance, weight or az, from a Neutron class path or a short name."""
    name = driver.rsplit(".", 1)[-1].lower()
    if name not in SCHEDULERS:
        raise ValueError(f"Unknown network_scheduler_driver {driver!r}")
    return SCHEDULERS[name]


def choose(kind: str, candidates: Sequence[Row[Any]], load: Counter[str], count: int,
           hints: Sequence[str], hosting_zones: set[str], rng: random.Random) -> list[Row[Any]]:
    """Pick `count` agents among live, enabled candidates (pure: no I/O)."""
    pool = list(candidates)
    if hints:
        hinted = [a for a in pool if a.availability_zone in hints]
        pool = hinted or pool
    if kind == "chance":
        return rng.sample(pool, min(count, len(pool)))
    rng.shuffle(pool)  # ties between equally loaded agents go to chance
    pool.sort(key=lambda a: load[a.id])
    if kind == "weight":
        return pool[:count]
    chosen: list[Row[Any]] = []
    zones = set(hosting_zones)
    while pool and len(chosen) < count:
        fresh = [a for a in pool if a.availability_zone not in zones]
        pick = (fresh or pool)[0]
        chosen.append(pick)
        zones.add(pick.availability_zone)
        pool.remove(pick)
    return chosen


class DhcpScheduler:
    """Bindings of networks to DHCP agents."""

    def __init__(self, core: Core, agents: AgentService, networks: NetworkService,
                 create_port: Callable[[Connection, Context, dict[str, Any], str],
                                       dict[str, Any]]) -> None:
        self.core = core
        self.agents = agents
        self.networks = networks
        self.create_port = create_port
        self.kind = scheduler_kind(core.conf.network_scheduler_driver)
        self.rng = random.SystemRandom()
        self.holder = f"{core.conf.host}:{uuid.uuid4().hex[:8]}"
        # Live, enabled DHCP agents as of the last pass (or registration): a hint that
        # lets the create path skip scheduling when nobody could host anything.
        self.live_agents: set[str] = set()

    # -- pieces used inside other transactions --------------------------------------------

    def dhcp_subnets(self, conn: Connection, network_id: str) -> list[str]:
        """The network's subnets with DHCP enabled."""
        return list(conn.execute(select(SUBNETS.c.id).where(
            SUBNETS.c.network_id == network_id, SUBNETS.c.enable_dhcp.is_(True))
            .order_by(SUBNETS.c.created_at, SUBNETS.c.id)).scalars())

    def on_dhcp_needed(self, conn: Connection, network_id: str) -> None:
        """A network gained a DHCP subnet or a port on one: schedule it if nobody hosts it.

        Called on every port create: with no live DHCP agent known (refreshed each pass),
        it costs nothing, and the next pass schedules the network once an agent appears.
        """
        if not self.live_agents:
            return
        bound = conn.execute(select(DHCP_BINDINGS.c.agent_id).where(
            DHCP_BINDINGS.c.network_id == network_id).limit(1)).first()
        if bound is None:
            self.schedule(conn, network_id, time.time())

    def on_dhcp_subnet(self, conn: Connection, network_id: str, subnet_id: str) -> None:
        """A DHCP subnet was added: existing DHCP ports get an address on it; schedule."""
        ports = conn.execute(select(PORTS.c.id).where(
            PORTS.c.network_id == network_id, PORTS.c.device_owner == DHCP_OWNER)).scalars()
        for port_id in list(ports):
            self.add_address(conn, network_id, port_id, subnet_id)
        self.on_dhcp_needed(conn, network_id)

    def add_address(self, conn: Connection, network_id: str, port_id: str,
                    subnet_id: str) -> None:
        """Give a DHCP port an address on a subnet, if the pool has one."""
        subnet = conn.execute(select(SUBNETS).where(SUBNETS.c.id == subnet_id)).one()
        address = ipam.pick_address(conn, dict(subnet._mapping), self.rng)
        if address is None:
            LOG.warning("No address left on subnet %s for DHCP port %s", subnet_id, port_id)
            return
        conn.execute(insert(ALLOCS).values(subnet_id=subnet_id, ip_address=address,
                                           ip_key=ipam.ip_key(address), port_id=port_id,
                                           network_id=network_id))
        bump_revision(conn, PORTS, port_id, utcnow())

    def schedule(self, conn: Connection, network_id: str, now: float) -> list[str]:
        """Bind the network to live agents up to dhcp_agents_per_network; return new hosts."""
        network = conn.execute(select(NETWORKS).where(NETWORKS.c.id == network_id)).first()
        if network is None or not self.dhcp_subnets(conn, network_id):
            return []
        bound = conn.execute(select(AGENTS).join(
            DHCP_BINDINGS, DHCP_BINDINGS.c.agent_id == AGENTS.c.id).where(
            DHCP_BINDINGS.c.network_id == network_id)).all()
        wanted = self.core.conf.dhcp_agents_per_network - len(bound)
        if wanted <= 0:
            return []
        candidates = self.candidates(conn, network_id, now)
        chosen = choose(self.kind, candidates, self.load(conn), wanted,
                        list(network.availability_zone_hints or []),
                        {a.availability_zone for a in bound}, self.rng)
        for agent in chosen:
            self.bind(conn, network_id, agent)
        return [a.host for a in chosen]

    def candidates(self, conn: Connection, network_id: str, now: float) -> list[Row[Any]]:
        """Live, enabled DHCP agents not hosting the network yet."""
        hosting = select(DHCP_BINDINGS.c.agent_id).where(
            DHCP_BINDINGS.c.network_id == network_id)
        rows = conn.execute(select(AGENTS).where(
            AGENTS.c.agent_type == DHCP_AGENT, AGENTS.c.admin_state_up.is_(True),
            AGENTS.c.id.not_in(hosting))).all()
        return [r for r in rows if self.agents.is_alive(r._mapping, now)]

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
        changes.record(conn, "binding", network_id, network_id, hosts=[agent.host])
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
            changes.record(conn, "port", reserved.id, network_id, hosts=[host])
            return str(reserved.id)
        network = conn.execute(select(NETWORKS.c.project_id).where(
            NETWORKS.c.id == network_id)).one()
        body = parse_item(PORT, {
            "network_id": network_id, "device_owner": DHCP_OWNER, "device_id": device_id,
            "binding:host_id": host, "project_id": network.project_id,
            "fixed_ips": [{"subnet_id": s} for s in self.dhcp_subnets(conn, network_id)]},
            create=True)
        port = self.create_port(conn, Context.admin(), body, utcnow())
        return str(port["id"])

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
            changes.record(conn, "port", binding.port_id, network_id, hosts=[agent.host])
        changes.record(conn, "binding", network_id, network_id, hosts=[agent.host])
        LOG.info("Network %s removed from DHCP agent %s on %s", network_id, agent.id,
                 agent.host)

    # -- the scheduler API ----------------------------------------------------------------

    def _agent(self, conn: Connection, ctx: Context, agent_id: str) -> Row[Any]:
        return self.agents.fetch(conn, ctx, agent_id)

    def networks_of(self, ctx: Context, agent_id: str) -> list[dict[str, Any]]:
        """The networks an agent hosts."""
        self.core.policy.enforce(ctx, "get_dhcp-networks", {})
        with self.core.db.read() as conn:
            self._agent(conn, ctx, agent_id)
            ids = list(conn.execute(select(DHCP_BINDINGS.c.network_id).where(
                DHCP_BINDINGS.c.agent_id == agent_id)).scalars())
        return [self.networks.get(ctx, network_id) for network_id in ids]

    def agents_of(self, ctx: Context, network_id: str) -> list[dict[str, Any]]:
        """The DHCP agents hosting a network."""
        self.core.policy.enforce(ctx, "get_dhcp-agents", {})
        with self.core.db.read() as conn:
            self.networks.fetch(conn, ctx, network_id)
            rows = conn.execute(select(AGENTS).join(
                DHCP_BINDINGS, DHCP_BINDINGS.c.agent_id == AGENTS.c.id).where(
                DHCP_BINDINGS.c.network_id == network_id).order_by(AGENTS.c.host)).all()
        now = time.time()
        return [self.agents.render(r._mapping, now) for r in rows]

    def add(self, ctx: Context, agent_id: str, network_id: str) -> None:
        """Host a network on an agent (Neutron's order of checks and errors)."""
        self.core.policy.enforce(ctx, "create_dhcp-network", {})

        def txn(conn: Connection) -> None:
            self.networks.fetch(conn, ctx, network_id)
            agent = self._agent(conn, ctx, agent_id)
            if agent.agent_type != DHCP_AGENT or not agent.admin_state_up:
                raise exc.InvalidDHCPAgent(id=agent_id)
            hosted = conn.execute(select(DHCP_BINDINGS.c.agent_id).where(
                DHCP_BINDINGS.c.network_id == network_id,
                DHCP_BINDINGS.c.agent_id == agent_id)).first()
            if hosted is not None:
                raise exc.NetworkHostedByDHCPAgent(network_id=network_id, agent_id=agent_id)
            self.bind(conn, network_id, agent)

        self.core.db.write(txn)
        self.core.notify()

    def remove(self, ctx: Context, agent_id: str, network_id: str) -> None:
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
            self.release(conn, network_id, agent)

        self.core.db.write(txn)
        self.core.notify()

    # -- the periodic pass ----------------------------------------------------------------

    def take_lease(self, now: float, duration: float) -> bool:
        """Hold the failover lease (one server process at a time); renew it if ours."""

        def txn(conn: Connection) -> bool:
            taken = conn.execute(update(LEASES).where(
                LEASES.c.name == FAILOVER_LEASE,
                (LEASES.c.holder == self.holder) | (LEASES.c.expires_at < now))
                .values(holder=self.holder, expires_at=now + duration))
            if taken.rowcount:
                return True
            exists = conn.execute(select(LEASES.c.holder).where(
                LEASES.c.name == FAILOVER_LEASE)).first()
            if exists is not None:
                return False
            conn.execute(insert(LEASES).values(name=FAILOVER_LEASE, holder=self.holder,
                                               expires_at=now + duration))
            return True

        return self.core.db.write(txn)

    def periodic(self, now: float) -> int:
        """One pass: move networks off dead agents, fill networks short of agents.

        Returns how many bindings were made. Runs only in the process holding the lease.
        """
        conf = self.core.conf
        with self.core.db.read() as conn:
            self.live_agents = self._live_agents(conn, now)
        if not self.take_lease(now, max(10.0, 5 * conf.failover_check_interval)):
            return 0
        made = 0
        if conf.allow_automatic_dhcp_failover:
            made += self._failover(now)
        if conf.network_auto_schedule:
            made += self._fill(now)
        if made:
            self.core.notify()
        return made

    def _live_agents(self, conn: Connection, now: float) -> set[str]:
        rows = conn.execute(select(AGENTS.c.id, AGENTS.c.heartbeat_timestamp).where(
            AGENTS.c.agent_type == DHCP_AGENT, AGENTS.c.admin_state_up.is_(True))).all()
        return {agent_id for agent_id, heartbeat in rows
                if self.agents.is_alive({"id": agent_id, "heartbeat_timestamp": heartbeat},
                                        now)}

    def _bindings(self, conn: Connection) -> dict[str, set[str]]:
        bound: dict[str, set[str]] = {}
        for network_id, agent_id in conn.execute(select(DHCP_BINDINGS.c.network_id,
                                                        DHCP_BINDINGS.c.agent_id)):
            bound.setdefault(network_id, set()).add(agent_id)
        return bound

    def _failover(self, now: float) -> int:
        grace = self.core.conf.dhcp_failover_grace or self.core.conf.agent_down_time
        deadline = now - self.core.conf.agent_down_time - grace
        with self.core.db.read() as conn:
            stranded = conn.execute(
                select(DHCP_BINDINGS.c.network_id, AGENTS.c.id)
                .join(AGENTS, AGENTS.c.id == DHCP_BINDINGS.c.agent_id)
                .where(AGENTS.c.heartbeat_timestamp < deadline)).all()
            if not stranded:
                return 0
            live, bound = self._live_agents(conn, now), self._bindings(conn)
        moved = 0
        for network_id, agent_id in stranded:
            if not live - bound.get(network_id, set()):
                continue  # nobody could take it: it stays where it is
            moved += self.core.db.write(partial(self._move, network_id=network_id,
                                                agent_id=agent_id, now=now,
                                                deadline=deadline))
        return moved

    def _move(self, conn: Connection, network_id: str, agent_id: str, now: float,
              deadline: float) -> int:
        """Move one network off a dead agent, if a live one can take it (else leave it)."""
        agent = conn.execute(select(AGENTS).where(AGENTS.c.id == agent_id)).first()
        if agent is None or self.agents.heartbeat(agent._mapping) >= deadline:
            return 0  # deleted, or came back meanwhile
        if not self.candidates(conn, network_id, now):
            return 0
        self.release(conn, network_id, agent)
        hosts = self.schedule(conn, network_id, now)
        LOG.warning("Failover: network %s moved from dead DHCP agent %s on %s to %s",
                    network_id, agent_id, agent.host, hosts)
        return len(hosts)

    def _fill(self, now: float) -> int:
        wanted = self.core.conf.dhcp_agents_per_network
        with self.core.db.read() as conn:
            needing = conn.execute(select(SUBNETS.c.network_id).distinct().where(
                SUBNETS.c.enable_dhcp.is_(True))).scalars().all()
            if not needing:
                return 0
            bound = self._bindings(conn)
            if all(len(bound.get(n, ())) >= wanted for n in needing):
                return 0
            live = self._live_agents(conn, now)
        made = 0
        for network_id in needing:
            agents = bound.get(network_id, set())
            if len(agents) >= wanted or not live - agents:
                continue
            made += len(self.core.db.write(partial(self.schedule, network_id=network_id,
                                                   now=now)))
        return made
