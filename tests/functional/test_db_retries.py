"""Which integrity errors the database layer retries: races yes, bugs no (every backend)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError

from neutrino.db.api import Database
from neutrino.exceptions import ConcurrentChange
from tests.support import database_url

META = MetaData()
PARENT = Table("retry_parent", META, Column("id", Integer, primary_key=True))
CHILD = Table("retry_child", META, Column("id", Integer, primary_key=True),
              Column("parent_id", Integer, ForeignKey("retry_parent.id"), nullable=False),
              Column("name", String(20), nullable=False))


@pytest.fixture
def db(backend: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    with database_url(backend, tmp_path) as url:
        database = Database(url, max_retries=4)
        META.create_all(database.engine)
        database.write(lambda conn: conn.execute(insert(PARENT).values(id=1)))
        try:
            yield database
        finally:
            database.dispose()


def attempts(db: Database, row: dict[str, object]) -> tuple[int, BaseException | None]:
    """How many times a write ran before it succeeded or gave up, and how it ended."""
    calls = [0]

    def txn(conn):  # type: ignore[no-untyped-def]
        calls[0] += 1
        conn.execute(insert(CHILD).values(**row))

    try:
        db.write(txn)
    except (IntegrityError, ConcurrentChange) as err:
        return calls[0], err
    return calls[0], None


def test_duplicates_are_races_and_retried(db: Database) -> None:
    """A duplicate key (a concurrent insert won) is retried, then answered 409."""
    db.write(lambda conn: conn.execute(insert(CHILD).values(id=1, parent_id=1, name="a")))
    count, err = attempts(db, {"id": 1, "parent_id": 1, "name": "b"})
    assert count == 5 and isinstance(err, ConcurrentChange)


def test_not_null_is_a_bug_and_not_retried(db: Database) -> None:
    """A NOT NULL violation propagates at once (the API makes it a generic 500)."""
    count, err = attempts(db, {"id": 2, "parent_id": 1, "name": None})
    assert count == 1 and isinstance(err, IntegrityError)


def test_a_missing_referenced_row_is_retried_once(db: Database) -> None:
    """A foreign key failing may be a concurrent delete: one retry, then it is a bug."""
    count, err = attempts(db, {"id": 3, "parent_id": 999, "name": "c"})
    assert count == 2 and isinstance(err, IntegrityError)
