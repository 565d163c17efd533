"""What every neutrino command does first: options, configuration files, logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from oslo_config import cfg
from oslo_log import log

from neutrino import conf as neutrino_conf
from neutrino.db.api import Database

LOG = logging.getLogger(__name__)


def load_config(argv: Sequence[str] | None, prog: str, *,
                cli_opts: Sequence[cfg.Opt] = ()) -> cfg.ConfigOpts:
    """A fresh ConfigOpts with neutrino's options, parsed from `argv` and its config files."""
    conf = cfg.ConfigOpts()
    neutrino_conf.register_opts(conf)
    log.register_options(conf)
    # The HTTP client would log every heartbeat at INFO; pyroute2 every netlink message at
    # DEBUG (a debug agent's log grew by 60 MB in a two-minute cold start).
    log.set_defaults(default_log_levels=[*log.get_default_log_levels(), "httpx=WARN",
                                         "httpcore=WARN", "pyroute2=INFO",
                                         "asyncio=INFO"])
    if cli_opts:
        conf.register_cli_opts(list(cli_opts))
    conf(list(sys.argv[1:] if argv is None else argv), project="neutrino", prog=prog,
         default_config_files=[])
    log.setup(conf, "neutrino")
    neutrino_conf.log_unused_options(conf, conf.config_file)
    return conf


def database(conf: cfg.ConfigOpts) -> Database:
    """The database the configuration names."""
    return Database(conf.database.connection, pool_size=conf.database.max_pool_size,
                    max_overflow=conf.database.max_overflow,
                    max_retries=conf.database.max_retries)
