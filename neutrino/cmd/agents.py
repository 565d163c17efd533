"""`neutrino-dhcp-agent` and `neutrino-linuxbridge-agent`."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from oslo_config import cfg

from neutrino.agent.client import ServerClient
from neutrino.agent.dhcp.driver import DnsmasqDriver
from neutrino.agent.linux.l2 import LinuxBridgeDriver
from neutrino.agent.noop import NoopDhcpDriver, NoopL2Driver
from neutrino.agent.runner import AgentRunner, Driver
from neutrino.cmd.common import load_config

LOG = logging.getLogger(__name__)
DRIVERS: dict[str, dict[str, Callable[[cfg.ConfigOpts], Any]]] = {
    "dhcp": {"noop": NoopDhcpDriver, "linux": DnsmasqDriver},
    "l2": {"noop": NoopL2Driver, "linux": LinuxBridgeDriver},
}


def run(kind: str, prog: str, argv: Sequence[str] | None) -> int:
    """Run an agent until SIGTERM or SIGINT; its host keeps what it made."""
    conf = load_config(argv, prog)
    if conf.AGENT.dataplane not in DRIVERS[kind]:
        LOG.error("%s has no %s data plane yet", prog, conf.AGENT.dataplane)
        return 2
    driver: Driver = DRIVERS[kind][conf.AGENT.dataplane](conf)
    client = ServerClient(conf.AGENT.server_url, conf.AGENT.server_username,
                          conf.AGENT.server_password)
    runner = AgentRunner(conf.host, driver, client, report_interval=conf.AGENT.report_interval,
                         availability_zone=conf.AGENT.availability_zone,
                         watch_timeout=conf.AGENT.watch_timeout,
                         resync_interval=conf.AGENT.resync_interval,
                         polling_interval=conf.AGENT.polling_interval,
                         workers=conf.AGENT.reconcile_workers)

    def stop(signum: int, _frame: FrameType | None) -> None:
        LOG.info("%s on %s stopping (signal %d)", driver.binary, conf.host, signum)
        runner.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("%s on %s starting (server %s, data plane %s)", driver.binary, conf.host,
             conf.AGENT.server_url, conf.AGENT.dataplane)
    runner.start()
    runner.wait()
    runner.stop()
    client.close()
    return 0


def dhcp_main(argv: Sequence[str] | None = None) -> int:
    """The DHCP agent."""
    return run("dhcp", "neutrino-dhcp-agent", argv)


def l2_main(argv: Sequence[str] | None = None) -> int:
    """The Linux bridge agent."""
    return run("l2", "neutrino-linuxbridge-agent", argv)


if __name__ == "__main__":
    sys.exit(dhcp_main())
