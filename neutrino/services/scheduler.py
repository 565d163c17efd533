"""The generic scheduler: which agents host a resource, and moving resources off dead ones.

A `Placement` says what is scheduled (DHCP networks, routers): the agent type that hosts
it, its bindings table, how many agents a resource wants, how to bind and release one.
`Scheduler` does the rest for any placement: candidates (alive, enabled, eligible, not
hosting it yet), load, the choice (chance, least loaded, availability-zone aware), the
failover pass (resources of agents dead for longer than the grace move to live ones) and
the fill pass (resources short of agents get more). `Periodic` runs those passes for every
placement in the one server process holding the scheduling lease.

No agent is declared dead by a process that has not itself watched it long enough: a
process counts silence only from the moment it holds the lease, plus `agent_down_time`
and a report interval. A server restarted after an outage therefore reads old heartbeats
without moving anything off agents that are alive and about to report again.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Connection, Row, Table, insert, select, update

from neutrino.db.models import AGENTS, LEASES
from neutrino.services.agents import AgentService
from neutrino.services.common import Core

LOG = logging.getLogger(__name__)
LEASE = "scheduler"
KINDS = {"chance": "chance", "chancescheduler": "chance", "weight": "weight",
         "weightscheduler": "weight", "azawareweightscheduler": "az", "az": "az",
         "leastroutersscheduler": "weight", "azleastroutersscheduler": "az"}


def scheduler_kind(driver: str) -> str:
    """chance, weight (least loaded) or az, from a Neutron class path or a short name."""
    name = driver.rsplit(".", 1)[-1].lower()
    if name not in KINDS:
        raise ValueError(f"Unknown scheduler driver {driver!r}")
    return KINDS[name]


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


class Placement(Protocol):
    """What one kind of scheduled resource needs of the scheduler."""

    noun: str  # "network", "router": for the logs
    agent_type: str
    bindings: Table  # with `agent_id` and the resource's column
    resource_column: str
    kind: str  # chance, weight or az
    auto_schedule: bool
    # Fill on every pass (DHCP: a network short of agents gets one as soon as one lives), or
    # only when an agent of the type registers or restarts (routers, as Neutron's agents
    # sync: a router an admin took off an agent stays off until then).
    fill_always: bool
    failover: bool
    grace: float  # seconds an agent must have been dead before its resources move

    def wanted(self, conn: Connection, resource_id: str) -> int:
        """How many agents the resource should have (0: it needs none)."""

    def needing(self, conn: Connection) -> dict[str, int]:
        """Every resource that needs agents, with how many it wants (one read for all, as
        the fill pass runs every few seconds over every resource)."""

    def hints(self, conn: Connection, resource_id: str) -> list[str]:
        """The resource's availability zone hints."""

    def eligible(self, conn: Connection, resource_id: str, agent: Row[Any]) -> bool:
        """Whether an alive, enabled agent of the type may host the resource."""

    def load(self, conn: Connection) -> Counter[str]:
        """Each agent's load."""

    def bind(self, conn: Connection, resource_id: str, agent: Row[Any]) -> None:
        """Bind the resource to an agent (within the caller's transaction)."""

    def release(self, conn: Connection, resource_id: str, agent: Row[Any]) -> None:
        """Unbind the resource from an agent."""

    def movable(self, conn: Connection, resource_id: str) -> bool:
        """Whether failover moves the resource off a dead agent."""


class Scheduler:
    """Scheduling, failover and fill for one placement."""

    def __init__(self, core: Core, agents: AgentService, placement: Placement) -> None:
        self.core = core
        self.agents = agents
        self.placement = placement
        self.rng = random.SystemRandom()
        # Live, enabled agents as of the last pass (or registration): a hint that lets the
        # create path skip scheduling when nobody could host anything.
        self.live_agents: set[str] = set()

    @property
    def _column(self) -> Any:
        return self.placement.bindings.c[self.placement.resource_column]

    def bound(self, conn: Connection, resource_id: str) -> list[Row[Any]]:
        """Agents hosting a resource."""
        table = self.placement.bindings
        return list(conn.execute(select(AGENTS).join(table, table.c.agent_id == AGENTS.c.id)
                                 .where(self._column == resource_id)
                                 .order_by(AGENTS.c.host)).all())

    def candidates(self, conn: Connection, resource_id: str, now: float) -> list[Row[Any]]:
        """Live, enabled, eligible agents not hosting the resource yet."""
        table = self.placement.bindings
        hosting = select(table.c.agent_id).where(self._column == resource_id)
        rows = conn.execute(select(AGENTS).where(
            AGENTS.c.agent_type == self.placement.agent_type,
            AGENTS.c.admin_state_up.is_(True), AGENTS.c.id.not_in(hosting))).all()
        return [r for r in rows if self.agents.is_alive(r._mapping, now)
                and self.placement.eligible(conn, resource_id, r)]

    def schedule(self, conn: Connection, resource_id: str, now: float) -> list[str]:
        """Bind the resource to live agents up to what it wants; return the new hosts."""
        bound = self.bound(conn, resource_id)
        wanted = self.placement.wanted(conn, resource_id) - len(bound)
        if wanted <= 0:
            return []
        candidates = self.candidates(conn, resource_id, now)
        chosen = choose(self.placement.kind, candidates, self.placement.load(conn), wanted,
                        self.placement.hints(conn, resource_id),
                        {a.availability_zone for a in bound}, self.rng)
        for agent in chosen:
            self.placement.bind(conn, resource_id, agent)
        return [a.host for a in chosen]

    def live(self, conn: Connection, now: float) -> set[str]:
        """Live, enabled agents of the placement's type."""
        rows = conn.execute(select(AGENTS.c.id, AGENTS.c.heartbeat_timestamp).where(
            AGENTS.c.agent_type == self.placement.agent_type,
            AGENTS.c.admin_state_up.is_(True))).all()
        return {agent_id for agent_id, heartbeat in rows
                if self.agents.is_alive({"id": agent_id, "heartbeat_timestamp": heartbeat},
                                        now)}

    def bindings(self, conn: Connection) -> dict[str, set[str]]:
        """resource -> agents hosting it."""
        out: dict[str, set[str]] = {}
        table = self.placement.bindings
        for resource_id, agent_id in conn.execute(select(self._column, table.c.agent_id)):
            out.setdefault(resource_id, set()).add(agent_id)
        return out

    # -- the periodic passes --------------------------------------------------------------

    def refresh(self, now: float) -> None:
        """Remember which agents are alive (the create path's hint)."""
        with self.core.db.read() as conn:
            self.live_agents = self.live(conn, now)

    def failover(self, now: float) -> int:
        """Move resources off agents dead for longer than agent_down_time plus the grace."""
        deadline = now - self.core.conf.agent_down_time - self.placement.grace
        table = self.placement.bindings
        with self.core.db.read() as conn:
            stranded = conn.execute(
                select(self._column, AGENTS.c.id)
                .join(AGENTS, AGENTS.c.id == table.c.agent_id)
                .where(AGENTS.c.heartbeat_timestamp < deadline)).all()
            if not stranded:
                return 0
            live, bound = self.live(conn, now), self.bindings(conn)
        moved = 0
        for resource_id, agent_id in stranded:
            if not live - bound.get(resource_id, set()):
                continue  # nobody could take it: it stays where it is
            moved += self.core.db.write(partial(self._move, resource_id=resource_id,
                                                agent_id=agent_id, now=now,
                                                deadline=deadline))
        return moved

    def _move(self, conn: Connection, resource_id: str, agent_id: str, now: float,
              deadline: float) -> int:
        """Move one resource off a dead agent, if a live one can take it (else leave it)."""
        agent = conn.execute(select(AGENTS).where(AGENTS.c.id == agent_id)).first()
        if agent is None or self.agents.heartbeat(agent._mapping) >= deadline:
            return 0  # deleted, or came back meanwhile
        if not self.placement.movable(conn, resource_id):
            return 0
        if not self.candidates(conn, resource_id, now):
            return 0
        self.placement.release(conn, resource_id, agent)
        hosts = self.schedule(conn, resource_id, now)
        LOG.warning("Failover: %s %s moved from dead %s %s on %s to %s", self.placement.noun,
                    resource_id, self.placement.agent_type, agent_id, agent.host, hosts)
        return len(hosts)

    def fill(self, now: float) -> int:
        """Give resources short of agents more, from the live ones."""
        with self.core.db.read() as conn:
            wanted = self.placement.needing(conn)
            if not wanted:
                return 0
            bound = self.bindings(conn)
            if all(len(bound.get(r, ())) >= n for r, n in wanted.items()):
                return 0
            live = self.live(conn, now)
        made = 0
        for resource_id in wanted:
            agents = bound.get(resource_id, set())
            if len(agents) >= wanted[resource_id] or not live - agents:
                continue
            made += len(self.core.db.write(partial(self.schedule, resource_id=resource_id,
                                                   now=now)))
        return made


class Periodic:
    """The failover and fill passes of every placement, in one process at a time."""

    def __init__(self, core: Core, schedulers: Sequence[Scheduler],
                 clock: Any = time.time) -> None:
        self.core = core
        self.schedulers = list(schedulers)
        self.holder = f"{core.conf.host}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.holding_since: float | None = None  # when this process took the lease
        self.registered: set[str] = set()  # agent types that registered since the last pass

    def take_lease(self, now: float, duration: float) -> bool:
        """Hold the scheduling lease (one server process at a time); renew it if ours."""

        def txn(conn: Connection) -> bool:
            taken = conn.execute(update(LEASES).where(
                LEASES.c.name == LEASE,
                (LEASES.c.holder == self.holder) | (LEASES.c.expires_at < now))
                .values(holder=self.holder, expires_at=now + duration))
            if taken.rowcount:
                return True
            exists = conn.execute(select(LEASES.c.holder).where(
                LEASES.c.name == LEASE)).first()
            if exists is not None:
                return False
            conn.execute(insert(LEASES).values(name=LEASE, holder=self.holder,
                                               expires_at=now + duration))
            return True

        held = self.core.db.write(txn)
        if not held:
            self.holding_since = None
        elif self.holding_since is None:
            self.holding_since = now
            LOG.info("This server runs the scheduling passes (lease %s); agents are judged "
                     "dead only after it has watched them for %.0f s", self.holder,
                     self.watch_period())
        return held

    def watch_period(self) -> float:
        """How long this process must hold the lease before it may declare agents dead."""
        return float(self.core.conf.agent_down_time) + float(self.core.conf.AGENT.report_interval)

    def may_fail_over(self, now: float) -> bool:
        """Whether this process has watched the agents long enough to call them dead."""
        return self.holding_since is not None and now - self.holding_since >= self.watch_period()

    def run(self, now: float | None = None) -> int:
        """One pass over every placement; how many bindings were made."""
        now = self.clock() if now is None else now
        for scheduler in self.schedulers:
            scheduler.refresh(now)
        if not self.take_lease(now, max(10.0, 5 * self.core.conf.failover_check_interval)):
            return 0
        made = 0
        registered, self.registered = self.registered, set()
        for scheduler in self.schedulers:
            placement = scheduler.placement
            if placement.failover and self.may_fail_over(now):
                made += scheduler.failover(now)
            if placement.auto_schedule and (placement.fill_always
                                            or placement.agent_type in registered):
                made += scheduler.fill(now)
        if made:
            self.core.notify()
        return made
