"""Agents: registration and heartbeats, liveness, and the agent API.

A report from an agent the process already knows, with nothing new in it, only records the
time in memory; a flusher writes the batch every half second. A thousand agents reporting
every two seconds thus cost one UPDATE statement per flush, not five hundred transactions a
second. Anything else (a first report, a restart, new configurations, an agent deleted
meanwhile) takes the slow path and writes at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Connection, Row, bindparam, delete, insert, select, update

from neutrino import exceptions as exc
from neutrino.db.models import AGENTS
from neutrino.schema.policy import Context
from neutrino.schema.resources import AGENT
from neutrino.services import changes
from neutrino.services.common import Core, new_id

if TYPE_CHECKING:
    from neutrino.services.scheduler import Placement

LOG = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.5
FILTERS = tuple(a.name for a in AGENT.attrs if a.filter)


def agent_time(seconds: float) -> str:
    """An agent timestamp as Neutron renders it: `2017-09-12 19:40:38`."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class Report:
    """What an agent says of itself in a report."""

    agent_type: str
    host: str
    binary: str
    topic: str
    configurations: dict[str, Any]
    availability_zone: str | None
    start_flag: bool
    applied_revision: int
    resources_synced: bool | None = None


@dataclass
class _Known:
    id: str
    fingerprint: bytes


def _wiring(configurations: dict[str, Any] | None) -> tuple[Any, Any]:
    """What of an agent's configurations other agents' desired states depend on: where its
    tunnels end and which physical networks it reaches. Counters (ports, devices, networks)
    change with every port and must not make every agent recompute every network."""
    conf = configurations or {}
    return conf.get("tunneling_ip"), conf.get("interface_mappings")


class AgentService:
    """The agent registry and the agent API."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._known: dict[tuple[str, str], _Known] = {}
        self._pending: dict[str, tuple[float, int]] = {}  # id -> (heartbeat, revision)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        # The revision of the newest change that concerned each agent (set by the watch
        # service as it answers): what `revision_lag` compares the agent's applied one with.
        self.relevant_revision: dict[str, int] = {}

    # -- liveness -------------------------------------------------------------------------

    def down_time(self) -> float:
        """Seconds without a report after which an agent is dead."""
        return float(self.core.conf.agent_down_time)

    def heartbeat(self, row: Mapping[Any, Any]) -> float:
        """The newest heartbeat of an agent, counting one not yet flushed."""
        pending = self._pending.get(row["id"])
        db_value = float(row["heartbeat_timestamp"])
        return max(db_value, pending[0]) if pending else db_value

    def is_alive(self, row: Mapping[Any, Any], now: float | None = None) -> bool:
        """Whether the agent reported within agent_down_time."""
        return (now or time.time()) - self.heartbeat(row) <= self.down_time()

    # -- reports --------------------------------------------------------------------------

    @staticmethod
    def _fingerprint(report: Report) -> bytes:
        return orjson.dumps([report.binary, report.topic, report.configurations,
                             report.availability_zone, report.resources_synced],
                            option=orjson.OPT_SORT_KEYS)

    def report_fast(self, report: Report, fingerprint: bytes | None = None) -> str | None:
        """Record a heartbeat in memory if nothing else is new; the agent's id, or None.

        Cheap enough to run on the event loop: no I/O, one lock.
        """
        if report.start_flag:
            return None
        fingerprint = fingerprint or self._fingerprint(report)
        with self._lock:
            known = self._known.get((report.agent_type, report.host))
            if known is None or known.fingerprint != fingerprint:
                return None
            self._pending[known.id] = (time.time(), report.applied_revision)
            return known.id

    def report(self, report: Report) -> tuple[str, bool]:
        """Register or refresh an agent; return its id and whether this was the slow path."""
        fingerprint = self._fingerprint(report)
        fast = self.report_fast(report, fingerprint)
        if fast is not None:
            return fast, False
        key = (report.agent_type, report.host)
        now = time.time()
        agent_id, created = self.core.db.write(lambda conn: self._upsert(conn, report, now))
        with self._lock:
            self._known[key] = _Known(agent_id, fingerprint)
            self._pending.pop(agent_id, None)
        if created or report.start_flag:
            LOG.info("Agent %s (%s on %s) %s", agent_id, report.agent_type, report.host,
                     "registered" if created else "restarted")
        return agent_id, True

    def _upsert(self, conn: Connection, report: Report, now: float) -> tuple[str, bool]:
        row = conn.execute(select(AGENTS).where(AGENTS.c.agent_type == report.agent_type,
                                                AGENTS.c.host == report.host)).first()
        values = {"binary": report.binary, "topic": report.topic,
                  "configurations": report.configurations,
                  "availability_zone": report.availability_zone,
                  "resources_synced": report.resources_synced,
                  "heartbeat_timestamp": now, "applied_revision": report.applied_revision}
        if row is None:
            agent_id = new_id()
            conn.execute(insert(AGENTS).values(
                id=agent_id, agent_type=report.agent_type, host=report.host,
                admin_state_up=True, description="", created_at=now, started_at=now,
                **values))
            changes.record(conn, "agent", agent_id, hosts=[report.host])
            return agent_id, True
        if report.start_flag:
            values["started_at"] = now
        conn.execute(update(AGENTS).where(AGENTS.c.id == row.id).values(**values))
        if report.start_flag or _wiring(row.configurations) != _wiring(report.configurations):
            changes.record(conn, "agent", row.id, hosts=[report.host])
        return str(row.id), False

    def start_flusher(self) -> None:
        """Write batched heartbeats every FLUSH_INTERVAL seconds, in a daemon thread."""
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="heartbeats",
                                             daemon=True)
            self._flusher.start()

    def stop(self) -> None:
        """Stop the flusher after a last flush."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush()

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL):
            try:
                self.flush()
            except Exception:  # the next flush retries what this one held
                LOG.warning("Could not write agent heartbeats", exc_info=True)

    def flush(self) -> None:
        """Write pending heartbeats; forget agents that no longer exist (deleted)."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        params = [{"agent_id": agent_id, "hb": hb, "rev": rev}
                  for agent_id, (hb, rev) in batch.items()]

        def txn(conn: Connection) -> set[str]:
            stmt = (update(AGENTS).where(AGENTS.c.id == bindparam("agent_id"))
                    .values(heartbeat_timestamp=bindparam("hb"),
                            applied_revision=bindparam("rev")))
            conn.execute(stmt, params)
            existing = set(conn.execute(select(AGENTS.c.id).where(
                AGENTS.c.id.in_(list(batch)))).scalars())
            return set(batch) - existing

        for agent_id in self.core.db.write(txn):
            self.forget(agent_id)

    def forget(self, agent_id: str) -> None:
        """Drop an agent from the fast path: its next report registers it again."""
        with self._lock:
            for key, known in list(self._known.items()):
                if known.id == agent_id:
                    del self._known[key]
            self._pending.pop(agent_id, None)

    # -- the agent API --------------------------------------------------------------------

    def applied(self, row: Mapping[Any, Any]) -> int:
        """The revision the agent last said it applied, counting one not yet flushed."""
        pending = self._pending.get(row["id"])
        return pending[1] if pending else int(row["applied_revision"])

    def render(self, row: Mapping[Any, Any], now: float | None = None) -> dict[str, Any]:
        """An agent as the API shows it.

        Besides Neutron's attributes: `applied_revision`, the change-log revision the agent
        says it has applied, and `revision_lag`, how many revisions the newest change that
        concerns it is ahead of that (0: in sync; null: this server has not watched it)."""
        applied = self.applied(row)
        relevant = self.relevant_revision.get(row["id"])
        return AGENT.render(
            row, alive=self.is_alive(row, now), created_at=agent_time(row["created_at"]),
            started_at=agent_time(row["started_at"]),
            heartbeat_timestamp=agent_time(self.heartbeat(row)), applied_revision=applied,
            revision_lag=None if relevant is None else max(0, relevant - applied))

    def fetch(self, conn: Connection, ctx: Context, agent_id: str) -> Row[Any]:
        """The agent row, or AgentNotFound (also for non-admins: agents are the admin's)."""
        row = conn.execute(select(AGENTS).where(AGENTS.c.id == agent_id)).first()
        if row is None or not self.core.policy.check(ctx, "get_agent", {}):
            raise exc.AgentNotFound(id=agent_id)
        return row

    def get(self, ctx: Context, agent_id: str) -> dict[str, Any]:
        """One agent."""
        with self.core.db.read() as conn:
            return self.render(self.fetch(conn, ctx, agent_id)._mapping)

    def list_agents(self, ctx: Context,
                    filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Agents matching Neutron's agent filters; nothing for non-admins."""
        if not self.core.policy.check(ctx, "get_agent", {}):
            return []
        with self.core.db.read() as conn:
            rows = conn.execute(select(AGENTS).order_by(AGENTS.c.host,
                                                        AGENTS.c.agent_type)).all()
        now = time.time()
        agents = [self.render(r._mapping, now) for r in rows]
        return [a for a in agents if matches(a, filters)]

    def update(self, ctx: Context, agent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change admin_state_up or description."""
        self.core.policy.enforce(ctx, "update_agent", {})

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, agent_id)
            conn.execute(update(AGENTS).where(AGENTS.c.id == agent_id).values(**body))
            changes.record(conn, "agent", agent_id, hosts=[row.host])
            fresh = conn.execute(select(AGENTS).where(AGENTS.c.id == agent_id)).one()
            return self.render(fresh._mapping)

        agent = self.core.db.write(txn)
        LOG.info("Updated agent %s (%s on %s): %s", agent_id, agent["agent_type"],
                 agent["host"], body)
        return agent

    def delete(self, ctx: Context, agent_id: str, placements: Sequence[Placement]) -> None:
        """Delete an agent; its bindings go, each released by its placement (a DHCP port is
        kept in reserve)."""
        self.core.policy.enforce(ctx, "delete_agent", {})

        def txn(conn: Connection) -> Row[Any]:
            row = self.fetch(conn, ctx, agent_id)
            for placement in placements:
                table = placement.bindings
                column = table.c[placement.resource_column]
                for resource_id in conn.execute(select(column).where(
                        table.c.agent_id == agent_id)).scalars().all():
                    placement.release(conn, resource_id, row)
            conn.execute(delete(AGENTS).where(AGENTS.c.id == agent_id))
            changes.record(conn, "agent", agent_id, hosts=[row.host])
            return row

        row = self.core.db.write(txn)
        self.forget(agent_id)
        LOG.info("Deleted agent %s (%s on %s)", agent_id, row.agent_type, row.host)


def matches(agent: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Neutron's agent filters: any value of a key, every key; agent_type ignores case."""
    for key, wanted in filters.items():
        value = agent.get(key)
        if key == "agent_type" or isinstance(value, bool):
            if str(value).lower() not in {w.lower() for w in wanted}:
                return False
        elif str(value if value is not None else "") not in wanted:
            return False
    return True
