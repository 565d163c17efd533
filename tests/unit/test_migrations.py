"""Migrations build exactly the schema the models describe, and go down again."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from neutrino.db import migration
from neutrino.db.api import Database
from neutrino.db.models import Base


def test_upgrade_matches_models_and_downgrade_empties(tmp_path: Path) -> None:
    """`upgrade head` leaves no difference from the models; `downgrade base` drops it all."""
    db = Database(f"sqlite:///{tmp_path / 'm.sqlite'}")
    migration.upgrade(db.engine)
    assert migration.current(db.engine) == migration.head()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    migration.downgrade(db.engine, "base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    db.dispose()
