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


def test_one_default_security_group_per_project(tmp_path: Path) -> None:
    """The database itself refuses a second default group for a project (a race's loser
    retries), a binding to a missing group, and deleting a group that ports use."""
    import pytest
    from sqlalchemy import delete, insert
    from sqlalchemy.exc import IntegrityError

    from neutrino.db.models import (
        DEFAULT_SECURITY_GROUPS,
        NETWORKS,
        PORTS,
        SECURITY_GROUPS,
        SG_PORT_BINDINGS,
    )

    db = Database(f"sqlite:///{tmp_path / 'm.sqlite'}")
    migration.upgrade(db.engine)
    stamp = {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
             "revision_number": 0, "description": ""}
    with db.engine.begin() as conn:
        for group_id in ("g1", "g2"):
            conn.execute(insert(SECURITY_GROUPS).values(id=group_id, project_id="p",
                                                        name="default", **stamp))
        conn.execute(insert(DEFAULT_SECURITY_GROUPS).values(project_id="p",
                                                            security_group_id="g1"))
        conn.execute(insert(NETWORKS).values(id="n", project_id="p", name="", mtu=1450,
                                             network_type="vxlan", **stamp))
        conn.execute(insert(PORTS).values(id="port", project_id="p", name="", network_id="n",
                                          mac_address="fa:16:3e:00:00:01", **stamp))
        conn.execute(insert(SG_PORT_BINDINGS).values(port_id="port", security_group_id="g1"))
    for statement in (
            insert(DEFAULT_SECURITY_GROUPS).values(project_id="p", security_group_id="g2"),
            insert(SG_PORT_BINDINGS).values(port_id="port", security_group_id="nope"),
            delete(SECURITY_GROUPS).where(SECURITY_GROUPS.c.id == "g1")):
        with pytest.raises(IntegrityError), db.engine.begin() as conn:
            conn.execute(statement)
    with db.engine.begin() as conn:  # the port's bindings go with it
        conn.execute(delete(PORTS).where(PORTS.c.id == "port"))
        assert conn.execute(SG_PORT_BINDINGS.select()).all() == []
    db.dispose()


def test_shared_and_external_networks_get_their_grants(tmp_path: Path) -> None:
    """Networks made shared or external before RBAC policies existed are granted to every
    project by the migration that brings them, so that nobody loses access."""
    from sqlalchemy import insert, select

    from neutrino.db.models import NETWORK_RBACS, NETWORKS

    db = Database(f"sqlite:///{tmp_path / 'm.sqlite'}")
    migration.upgrade(db.engine, "5d2b8e71c0a4")
    stamp = {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
             "revision_number": 0, "description": "", "name": "", "mtu": 1450,
             "network_type": "vxlan", "admin_state_up": True, "status": "ACTIVE",
             "availability_zone_hints": [], "port_security_enabled": True}
    with db.engine.begin() as conn:
        for net_id, shared, external in (("plain", False, False), ("shared", True, False),
                                         ("ext", False, True), ("both", True, True)):
            conn.execute(insert(NETWORKS).values(id=net_id, project_id="p", shared=shared,
                                                 external=external, **stamp))
    migration.upgrade(db.engine)
    with db.engine.connect() as conn:
        grants = sorted(conn.execute(select(
            NETWORK_RBACS.c.object_id, NETWORK_RBACS.c.target_project,
            NETWORK_RBACS.c.action, NETWORK_RBACS.c.project_id)).all())
    assert [tuple(g) for g in grants] == [
        ("both", "*", "access_as_external", "p"), ("both", "*", "access_as_shared", "p"),
        ("ext", "*", "access_as_external", "p"), ("shared", "*", "access_as_shared", "p")]
    db.dispose()
