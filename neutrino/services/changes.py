"""The change log that agents watch, and the in-memory feed that wakes their watches.

Every write that changes what an agent should do appends a row to `changelog` in the same
transaction: the kind of thing, its id, the scope it belongs to (a kind and an id: the
network of a port or subnet, the router of an interface or a floating IP) and, for
host-bound things, its host.
Each server process keeps the most recent entries in memory, refreshed from the database,
so that thousands of waiting watches can tell whether a change concerns them without a
query each; the database stays the one source, so a watch may resume on any server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from neutrino.db.api import Database
from neutrino.db.models import CHANGES

LOG = logging.getLogger(__name__)


Scope = tuple[str, str]  # (kind, id): ("network", <id>), ("router", <id>)
SECURITY_GROUP, MEMBERS, ADDRESS_GROUP = "security_group", "sg_members", "address_group"
MEMBER_BUCKETS = 64
_INSERT_CHANGES = insert(CHANGES)  # prepared once: every write logs through it
COLUMNS = (CHANGES.c.seq, CHANGES.c.kind, CHANGES.c.object_id, CHANGES.c.scope_kind,
           CHANGES.c.scope_id, CHANGES.c.host)


@dataclass(frozen=True)
class Change:
    """One entry of the log."""

    seq: int
    kind: str
    object_id: str
    scope_kind: str | None
    scope_id: str | None
    host: str | None

    @property
    def scope(self) -> Scope | None:
        """(kind, id) of the scope, if the change has one."""
        if self.scope_kind is None or self.scope_id is None:
            return None
        return (self.scope_kind, self.scope_id)


def network(network_id: str) -> Scope:
    """The scope of a network."""
    return ("network", network_id)


def member_bucket(port_id: str) -> int:
    """Which of a group's `MEMBER_BUCKETS` buckets a member port is in."""
    return zlib.crc32(port_id.encode()) % MEMBER_BUCKETS


def member_scope(group_id: str, port_id: str) -> Scope:
    """The scope of a port's membership of a security group: one of `MEMBER_BUCKETS`
    buckets of the group, so that a member joining a group of ten thousand sends hosts the
    addresses of a bucket, not of the whole group."""
    return (MEMBERS, f"{group_id}:{member_bucket(port_id):02x}")


def record_group(conn: Connection, group_id: str) -> None:
    """A security group or one of its rules changed (created, updated, deleted)."""
    record(conn, "security_group", group_id, (SECURITY_GROUP, group_id))


def record_address_group(conn: Connection, address_group_id: str) -> None:
    """An address group's addresses changed."""
    record(conn, "address_group", address_group_id, (ADDRESS_GROUP, address_group_id))


def record_port_groups(conn: Connection, port_id: str, group_ids: Iterable[str],
                       hosts: Iterable[str | None] = (None,),
                       also: Iterable[dict[str, Any]] = ()) -> None:
    """A port's part in its security groups changed: it was created, deleted or bound, or
    its groups, addresses, MAC, port security or allowed address pairs changed. Give every
    group it had before and has now, and the hosts it was and is bound to: hosts with the
    port get its groups' rules, hosts whose rules name a group get its members."""
    hosts, now = tuple(hosts), time.time()
    rows = list(also)  # the caller's own rows (`rows_of`), written in the same statement
    for group_id in sorted(set(group_ids)):
        for (scope_kind, scope_id), where in (((SECURITY_GROUP, group_id), hosts),
                                              (member_scope(group_id, port_id), (None,))):
            rows += [{"kind": "port", "object_id": port_id, "scope_kind": scope_kind,
                      "scope_id": scope_id, "host": host or None, "created_at": now}
                     for host in dict.fromkeys(where)]
    if rows:
        conn.execute(_INSERT_CHANGES, rows)  # one statement for every row


def rows_of(kind: str, object_id: str, scope: Scope | None = None,
            hosts: Iterable[str | None] = (None,)) -> list[dict[str, Any]]:
    """The log rows of a change (one per host concerned)."""
    now = time.time()
    scope_kind, scope_id = scope if scope is not None else (None, None)
    return [{"kind": kind, "object_id": object_id, "scope_kind": scope_kind,
             "scope_id": scope_id, "host": host or None, "created_at": now}
            for host in dict.fromkeys(hosts)]


def record(conn: Connection, kind: str, object_id: str, scope: Scope | None = None,
           hosts: Iterable[str | None] = (None,)) -> None:
    """Log a change within the writer's transaction (one entry per host concerned)."""
    conn.execute(_INSERT_CHANGES, rows_of(kind, object_id, scope, hosts))


def latest_seq(conn: Connection) -> int:
    """The newest revision of the log (0 when empty)."""
    return int(conn.execute(select(func.max(CHANGES.c.seq))).scalar() or 0)


class ChangeFeed:
    """Recent changes, in memory, and an event loop wake-up when new ones arrive."""

    def __init__(self, db: Database, keep: int = 50_000) -> None:
        self.db = db
        self._entries: deque[Change] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self.latest = 0
        # Entries after this seq are all in memory; a watch from before it needs a snapshot.
        self._floor = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._refresh_lock = threading.Lock()
        self._refresh_due = False
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Load the newest entries, bound to the server's event loop."""
        self._loop = loop
        self._event = asyncio.Event()
        keep = self._entries.maxlen or 0
        with self.db.read() as conn:
            rows = conn.execute(select(*COLUMNS).order_by(CHANGES.c.seq.desc())
                                .limit(keep)).all()
        with self._lock:
            self._entries.extend(Change(*row) for row in reversed(rows))
            self.latest = rows[0][0] if rows else 0
            self._floor = rows[-1][0] - 1 if rows else 0

    def refresh(self) -> bool:
        """Read new entries from the database; True if there were any."""
        with self._refresh_lock, self.db.read() as conn:
            rows = conn.execute(select(*COLUMNS).where(CHANGES.c.seq > self.latest)
                                .order_by(CHANGES.c.seq)).all()
        if not rows:
            return False
        with self._lock:
            for row in rows:
                if len(self._entries) == self._entries.maxlen:
                    self._floor = self._entries[0].seq
                self._entries.append(Change(*row))
            self.latest = rows[-1][0]
        self._wake()
        return True

    def nudge(self) -> None:
        """Called from any thread after a local write: refresh soon and wake watchers.

        The refresh runs off the writer's path, and nudges arriving while one is pending
        share it: a burst of writes costs one read of the log.
        """
        loop = self._loop
        if loop is None:
            return
        with self._lock:
            if self._refresh_due:
                return
            self._refresh_due = True
        loop.call_soon_threadsafe(self._spawn_refresh)

    def _spawn_refresh(self) -> None:
        # The loop keeps only weak references to tasks: hold this one until it is done.
        task = asyncio.get_running_loop().create_task(self._refresh_soon())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh_soon(self) -> None:
        # A short pause gathers a burst of writes into one read of the log.
        await asyncio.sleep(0.02)
        with self._lock:
            self._refresh_due = False
        try:
            await asyncio.to_thread(self.refresh)
        except Exception:  # the poller reads the log again shortly
            LOG.warning("Could not read the change log", exc_info=True)

    def _wake(self) -> None:
        loop, event = self._loop, self._event
        if loop is None or event is None:
            return

        def swap() -> None:
            assert self._event is not None
            self._event.set()
            self._event = asyncio.Event()

        loop.call_soon_threadsafe(swap)

    async def wait(self, timeout: float) -> None:
        """Wait until new entries arrive or `timeout` passes (in the event loop)."""
        event = self._event
        if event is None:
            await asyncio.sleep(timeout)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def since(self, seq: int) -> list[Change] | None:
        """Entries after `seq`, or None if they are no longer all known (a snapshot is due)."""
        with self._lock:
            if seq < self._floor or seq > self.latest:
                return None
            # From the newest back to the cursor: a wake-up costs the new entries only,
            # not the whole window, for each of thousands of waiting watches.
            newer = []
            for change in reversed(self._entries):
                if change.seq <= seq:
                    break
                newer.append(change)
            newer.reverse()
            return newer

    async def poll_forever(self, interval: float = 0.2) -> None:
        """Pick up other server processes' writes (the database is the one source)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # keep polling through a database outage
                LOG.warning("Could not read the change log", exc_info=True)


def prune(conn: Connection, keep: int) -> int:
    """Delete all but the newest `keep` entries; return how many went."""
    head = latest_seq(conn)
    result = conn.execute(delete(CHANGES).where(CHANGES.c.seq <= head - keep))
    return int(result.rowcount or 0)
