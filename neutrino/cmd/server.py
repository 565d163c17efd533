"""`neutrino-server`: the Networking API on its database."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Sequence

import uvicorn
from oslo_config import cfg
from starlette.applications import Starlette

from neutrino.api.app import create_app
from neutrino.cmd.common import database, load_config
from neutrino.db import migration
from neutrino.db.api import Database
from neutrino.services import Services

LOG = logging.getLogger(__name__)
CONFIG_ENV = "NEUTRINO_CONFIG_FILES"


class SchemaOutOfDate(RuntimeError):
    """The database is not at the schema this server needs."""


def prepare_database(conf: cfg.ConfigOpts) -> Database:
    """Open the database; the embedded SQLite one migrates itself, others must be current."""
    db = database(conf)
    head = migration.head()
    if db.is_sqlite:
        if migration.current(db.engine) != head:
            LOG.info("Migrating the embedded database %s to %s", db.url, head)
            migration.upgrade(db.engine)
    elif migration.current(db.engine) != head:
        raise SchemaOutOfDate(f"The database is at revision {migration.current(db.engine)}, "
                              f"not {head}: run `neutrino-db-manage upgrade head`")
    return db


def tune_gc() -> None:
    """Collect garbage less often than Python's default.

    A list of 10,000 ports allocates hundreds of thousands of short-lived objects; with the
    default thresholds the collector runs hundreds of times during one response, rescanning
    everything the server loaded at start. Freezing the start-up objects and raising the
    young generation's threshold keeps collections rare and cheap.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)


def build_app(conf: cfg.ConfigOpts) -> Starlette:
    """The application for a parsed configuration."""
    os.makedirs(conf.state_path, exist_ok=True)
    db = prepare_database(conf)
    app = create_app(conf, Services.build(conf, db))
    tune_gc()
    return app


def app_factory() -> Starlette:
    """Entry point for each worker process when api_workers > 1."""
    files = [f for f in os.environ.get(CONFIG_ENV, "").split(os.pathsep) if f]
    args = [arg for f in files for arg in ("--config-file", f)]
    return build_app(load_config(args, "neutrino-server"))


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the API until interrupted."""
    conf = load_config(argv, "neutrino-server")
    try:
        app = build_app(conf)
    except SchemaOutOfDate as err:
        LOG.error("%s", err)
        return 2
    LOG.info("neutrino-server listening on %s:%s (auth %s, database %s)", conf.bind_host,
             conf.bind_port, conf.auth_strategy, app.state.api.services.core.db.dialect)
    options = {"host": conf.bind_host, "port": conf.bind_port, "log_level": "warning",
               "access_log": False, "timeout_keep_alive": 30}
    if conf.api_workers > 1:
        os.environ[CONFIG_ENV] = os.pathsep.join(conf.config_file)
        uvicorn.run("neutrino.cmd.server:app_factory", factory=True,
                    workers=conf.api_workers, **options)
    else:
        uvicorn.run(app, **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
