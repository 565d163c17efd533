"""Engines and transactions.

`Database.write` runs a function in one transaction and runs it again when the transaction
lost a race (a duplicate key from a concurrent allocation, a deadlock, a busy SQLite file):
the function re-reads what it needs each time, so a retry sees the winner's rows. Only the
integrity errors that mean a race are retried: a duplicate key, and a missing referenced row
once (a concurrent delete; the retry then finds it gone and says so). A NOT NULL or CHECK
violation, or a foreign key failing again, is a bug: it propagates at once (the API answers
a generic 500 and logs the traceback) instead of turning into ten retries and a 409.
On SQLite, writers take the lock when they begin (`BEGIN IMMEDIATE`) and queue on a
process-wide lock first, since SQLite serialises writers anyway and spinning on
`SQLITE_BUSY` wastes the CPU the other writer needs.

A revision constraint (`If-Match: revision_number=N`, set for the request with
`constrained`) is checked inside the request's first write: the row's revision is read (and
locked) when the transaction begins, the write runs, and it is rolled back with a 412 if the
revision was not N. Checked after the write, so that a caller who may not see the resource
gets its NotFound, not a 412 that would tell it exists.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from neutrino.exceptions import ConcurrentChange, RevisionNumberConstraintFailed

LOG = logging.getLogger(__name__)
T = TypeVar("T")

# Error codes meaning "the transaction lost a race; run it again".
_MYSQL_RETRY_CODES = {1205, 1213}  # lock wait timeout, deadlock
_PG_RETRY_STATES = {"40001", "40P01"}  # serialization failure, deadlock
# Integrity errors: a duplicate key (a concurrent insert won) and a missing referenced row
# (a concurrent delete won), per backend.
_PG_DUPLICATE, _PG_FOREIGN_KEY = {"23505"}, {"23503"}
_MYSQL_DUPLICATE, _MYSQL_FOREIGN_KEY = {1062, 1586}, {1451, 1452}
_SQLITE_DUPLICATE = {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}
_SQLITE_FOREIGN_KEY = {"SQLITE_CONSTRAINT_FOREIGNKEY"}


@dataclass(frozen=True)
class RevisionConstraint:
    """A write must find the row at this revision (Neutron's `revision-if-match`)."""

    table: Table
    resource_id: str
    revision: int


_CONSTRAINT: ContextVar[RevisionConstraint | None] = ContextVar("neutrino_revision_constraint",
                                                                default=None)


@contextmanager
def constrained(constraint: RevisionConstraint | None) -> Iterator[None]:
    """Constrain the block's first write (the worker thread it runs in inherits it)."""
    token = _CONSTRAINT.set(constraint)
    try:
        yield
    finally:
        _CONSTRAINT.reset(token)


def _checked(fn: Callable[[Connection], T], constraint: RevisionConstraint,
             conn: Connection) -> T:
    table = constraint.table
    stmt = select(table.c.revision_number).where(table.c.id == constraint.resource_id)
    if conn.dialect.name != "sqlite":  # SQLite's writer already holds the database
        stmt = stmt.with_for_update()
    current = conn.execute(stmt).scalar()
    result = fn(conn)
    if current is not None and current != constraint.revision:
        raise RevisionNumberConstraintFailed(expected=constraint.revision, current=current)
    return result


def normalize_url(url: str) -> str:
    """Map driver-less URLs (as in Neutron configs) to the drivers neutrino ships."""
    parsed = make_url(url)
    driver = {"mysql": "mysql+pymysql", "postgresql": "postgresql+psycopg"}.get(
        parsed.drivername, parsed.drivername
    )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def integrity_kind(exc: IntegrityError) -> str:
    """What an integrity error means: `duplicate`, `foreign_key`, or `other` (a bug)."""
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None)
    code = getattr(orig, "args", [None])[0] if orig is not None else None
    name = getattr(orig, "sqlite_errorname", None)
    if sqlstate in _PG_DUPLICATE or code in _MYSQL_DUPLICATE or name in _SQLITE_DUPLICATE:
        return "duplicate"
    if sqlstate in _PG_FOREIGN_KEY or code in _MYSQL_FOREIGN_KEY or name in _SQLITE_FOREIGN_KEY:
        return "foreign_key"
    return "other"


def _is_retryable(exc: DBAPIError, attempt: int) -> bool:
    if isinstance(exc, IntegrityError):
        kind = integrity_kind(exc)
        return kind == "duplicate" or (kind == "foreign_key" and attempt <= 1)
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    code = getattr(orig, "args", [None])[0] if orig is not None else None
    if code in _MYSQL_RETRY_CODES:
        return True
    if getattr(orig, "sqlstate", None) in _PG_RETRY_STATES:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc)


class Database:
    """One engine and the transaction helpers services use."""

    def __init__(self, url: str, *, pool_size: int = 20, max_overflow: int = 40,
                 max_retries: int = 10) -> None:
        self.url = normalize_url(url)
        self.max_retries = max_retries
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._write_lock = threading.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            connect_args = {"check_same_thread": False, "timeout": 30}
            if parsed.database in (None, "", ":memory:"):
                # One shared connection, or each would see its own empty database.
                self.engine: Engine = create_engine(self.url, connect_args=connect_args,
                                                    poolclass=StaticPool)
            else:
                os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
                self.engine = create_engine(self.url, connect_args=connect_args,
                                            pool_size=pool_size, max_overflow=max_overflow)
            _setup_sqlite(self.engine)
        else:
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=max_overflow,
                # No pre-ping (a round trip per checkout): a dropped connection makes a
                # write retry and a read answer 503, and idle ones are recycled.
                pool_recycle=1800, isolation_level="READ COMMITTED",
            )

    @property
    def dialect(self) -> str:
        """The backend's name: sqlite, postgresql or mysql."""
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read transaction (rolled back at the end)."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN")
            try:
                yield conn
            finally:
                conn.rollback()

    @contextmanager
    def _write_txn(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` in a write transaction, again if it lost a race."""
        constraint = _CONSTRAINT.get()
        if constraint is not None:
            _CONSTRAINT.set(None)  # the request's later writes see the revision it made
            return self.write(lambda conn: _checked(fn, constraint, conn))
        attempt = 0
        while True:
            try:
                if self._write_lock is not None:
                    with self._write_lock, self._write_txn() as conn:
                        return fn(conn)
                with self._write_txn() as conn:
                    return fn(conn)
            except DBAPIError as exc:
                attempt += 1
                if not _is_retryable(exc, attempt):
                    raise
                if attempt > self.max_retries:
                    LOG.warning("Giving up on %s after %d lost races: %s",
                                getattr(fn, "__qualname__", fn), attempt - 1, exc.orig)
                    raise ConcurrentChange() from exc
                LOG.debug("Retrying transaction %s after %s (attempt %d)",
                          getattr(fn, "__qualname__", fn), type(exc).__name__, attempt)
                time.sleep(random.uniform(0, 0.002 * attempt))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _setup_sqlite(engine: Engine) -> None:
    """WAL and foreign keys on every connection; let us issue BEGIN ourselves."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling would BEGIN lazily and break BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

