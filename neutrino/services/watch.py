"""The watch: what changed for one agent since the revision it gives, as a long poll.

An answer carries, for one agent, the full desired state of every key whose state may have
changed for it since its revision, and the keys it should drop. It is level-triggered: the
agent replaces what it has for those keys, so a change delivered twice does no harm, and a
snapshot (every key, `snapshot: true`) replaces everything — sent when the agent starts from
0 or from a revision the in-memory feed no longer covers.

The wait happens on the event loop (thousands of agents hold a watch open each); database
reads run in worker threads (anyio's pool, as the API's handlers).
"""

from __future__ import annotations

import random
import time
from typing import Any

from anyio import to_thread
from sqlalchemy import Connection, Row, select

from neutrino import exceptions as exc
from neutrino.agent.contract import Key
from neutrino.db.models import AGENTS
from neutrino.services.agents import AgentService
from neutrino.services.changes import ChangeFeed
from neutrino.services.common import Core
from neutrino.services.projections import Interest, Projection, interest

MAX_WATCH = 55.0


class WatchService:
    """Answers agents' watches from the change feed and the projections."""

    def __init__(self, core: Core, agents: AgentService, feed: ChangeFeed,
                 projections: dict[str, Projection]) -> None:
        self.core = core
        self.agents = agents
        self.feed = feed
        self.projections = projections
        # agent id -> (revision, keys): what the agent holds after the last answer it was
        # given at that revision. A watch resuming from exactly that revision is not sent
        # again the related keys it holds (a rule added to a group does not resend the
        # members of its remote groups); anything else (another server answered, a restart)
        # gets them all.
        self._held: dict[str, tuple[int, frozenset[Key]]] = {}
        # (agent type, host) -> (revision, interest): an agent's interest as of a revision
        # of the log, kept while the entries after it leave it as it is (`reshaped`). A
        # host of a thousand ports otherwise reads them all at every watch it renews.
        self._interests: dict[tuple[str, str], tuple[int, Interest]] = {}

    def _agent(self, conn: Connection, agent_type: str, host: str) -> Row[Any]:
        row = conn.execute(select(AGENTS).where(AGENTS.c.agent_type == agent_type,
                                                AGENTS.c.host == host)).first()
        if row is None:
            raise exc.AgentNotFound(id=f"{agent_type}@{host}")
        return row

    def projection(self, agent_type: str) -> Projection:
        """The projection of an agent type (BadRequest for a type nobody watches)."""
        found = self.projections.get(agent_type)
        if found is None:
            raise exc.BadRequest(resource="watch",
                                 msg=f"agent type {agent_type!r} has nothing to watch")
        return found

    def interest(self, agent_type: str, host: str) -> Interest:
        """What an agent cares about now."""
        projection = self.projection(agent_type)
        self.feed.refresh()  # one indexed read, against a scan of the host's ports
        known = self._interests.get((agent_type, host))
        if known is not None:
            revision, found = known
            entries = self.feed.since(revision)
            if entries is not None and not found.reshaped(entries):
                if entries:
                    self._interests[(agent_type, host)] = (entries[-1].seq, found)
                return found
        # The revision is read before the rows: an entry that lands in between is looked
        # at again next time, so the interest kept is never older than its revision.
        revision = self.feed.latest
        with self.core.db.read() as conn:
            found = interest(projection, conn, self._agent(conn, agent_type, host))
        self._interests[(agent_type, host)] = (revision, found)
        return found

    def states(self, found: Interest, keys: set[Key] | None, revision: int,
               since: int = 0) -> dict[str, Any]:
        """The desired states of the given keys (None: every key of the agent: a snapshot)."""
        projection = self.projection(found.agent_type)
        snapshot = keys is None
        wanted = found.keys if keys is None else set(keys)
        states, removed = [], []
        held = self._holding(found.agent_id, since) if not snapshot else frozenset()
        with self.core.db.read() as conn:
            agent = self._agent(conn, found.agent_type, found.host)
            if not snapshot:
                for key in list(wanted):
                    wanted |= projection.related(conn, key) - held
            wanted = {k for k in wanted if k[0] in projection.key_kinds}
            batch = getattr(projection, "states_of", None)
            found_states = batch(conn, wanted, agent) if batch is not None else {
                key: projection.state(conn, key, agent) for key in wanted}
            for key in sorted(wanted):
                state = found_states[key]
                if state is None:
                    removed.append(list(key))
                else:
                    states.append({"kind": key[0], "id": key[1], "state": state})
        if states or removed or snapshot:
            relevant = self.agents.relevant_revision
            relevant[found.agent_id] = max(relevant.get(found.agent_id, 0), revision)
        gone: set[Key] = {(str(k[0]), str(k[1])) for k in removed}
        sent: set[Key] = {(str(s["kind"]), str(s["id"])) for s in states}
        self._held[found.agent_id] = (revision, frozenset((held | sent) - gone))
        return {"revision": revision, "snapshot": snapshot, "states": states,
                "removed": removed}

    def _holding(self, agent_id: str, since: int) -> frozenset[Key]:
        """The keys an agent holds, if the server knows them at the revision it gives."""
        known = self._held.get(agent_id)
        return known[1] if known is not None and known[0] == since else frozenset()

    def _moved(self, agent_id: str, since: int, revision: int) -> None:
        """An empty answer moved the agent from `since` to `revision`: what it holds stays."""
        known = self._held.get(agent_id)
        if known is not None and known[0] == since:
            self._held[agent_id] = (revision, known[1])

    async def watch(self, agent_type: str, host: str, since: int,
                    timeout: float) -> dict[str, Any]:
        """Wait up to `timeout` for a change that concerns the agent; the answer."""
        feed = self.feed
        found = await to_thread.run_sync(self.interest, agent_type, host)
        # Agents started together would otherwise renew their watches together, forever:
        # a quarter of jitter spreads them out.
        timeout = min(max(timeout, 0.0), MAX_WATCH)
        deadline = time.monotonic() + timeout * random.uniform(0.75, 1.0)
        cursor = since
        while True:
            if cursor > feed.latest:
                await to_thread.run_sync(feed.refresh)
            entries = None if cursor <= 0 else feed.since(cursor)
            if entries is None:
                return await to_thread.run_sync(self.states, found, None, feed.latest)
            head = entries[-1].seq if entries else cursor
            affected = found.affected(entries)
            if affected is not None:
                return await to_thread.run_sync(self.states, found, affected, head, since)
            cursor = head
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._moved(found.agent_id, since, cursor)
                return {"revision": cursor, "snapshot": False, "states": [], "removed": []}
            await feed.wait(remaining)
