"""`neutrino-db-manage`: migrate the database schema."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from oslo_config import cfg

from neutrino.cmd.common import database, load_config
from neutrino.db import migration


def _add_commands(subparsers: Any) -> None:
    up = subparsers.add_parser("upgrade", help="Migrate up to a revision (default head).")
    up.add_argument("revision", nargs="?", default="head")
    down = subparsers.add_parser("downgrade", help="Migrate down to a revision.")
    down.add_argument("revision")
    subparsers.add_parser("current", help="Show the database's revision.")
    new = subparsers.add_parser("revision", help="Write a new migration (developers).")
    new.add_argument("-m", "--message", required=True)
    new.add_argument("--autogenerate", action="store_true")


COMMAND = cfg.SubCommandOpt("command", title="Commands", handler=_add_commands)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one migration command."""
    conf = load_config(argv, "neutrino-db-manage", cli_opts=[COMMAND])
    db = database(conf)
    name = conf.command.name
    if name == "upgrade":
        migration.upgrade(db.engine, conf.command.revision)
        print(f"Database at revision {migration.current(db.engine)}")
    elif name == "downgrade":
        migration.downgrade(db.engine, conf.command.revision)
        print(f"Database at revision {migration.current(db.engine)}")
    elif name == "current":
        print(migration.current(db.engine) or "(empty database)")
    elif name == "revision":
        migration.revision(db.engine, conf.command.message, conf.command.autogenerate)
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
