"""`neutrino-dhcp-agent`, `neutrino-linuxbridge-agent` and `neutrino-l3-agent`."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from oslo_config import cfg

from neutrino import registry
from neutrino.agent.client import ServerClient, channel_auth
from neutrino.agent.contract import Driver
from neutrino.agent.dhcp.driver import DnsmasqDriver
from neutrino.agent.fake import FakeDhcp, FakeL2, FakeL3
from neutrino.agent.l3.driver import RouterDriver
from neutrino.agent.linux.l2 import LinuxBridgeDriver
from neutrino.agent.linux.process import DaemonError
from neutrino.agent.runner import AgentRunner
from neutrino.cmd.common import load_config

LOG = logging.getLogger(__name__)
# Data planes per agent kind: `noop` records plans (the fake data plane), `linux` acts.
DRIVERS: dict[str, dict[str, Callable[[cfg.ConfigOpts], Any]]] = {
    registry.DHCP.name: {"noop": FakeDhcp, "linux": DnsmasqDriver},
    registry.L2.name: {"noop": FakeL2, "linux": LinuxBridgeDriver},
    registry.L3.name: {"noop": FakeL3, "linux": RouterDriver},
}


def run(kind: registry.AgentKind, argv: Sequence[str] | None) -> int:
    """Run an agent until SIGTERM or SIGINT (0), or until it cannot go on (1); its host
    keeps what it made."""
    conf = load_config(argv, kind.binary)
    if kind is registry.L3 and conf.agent_mode != "legacy":
        LOG.error("%s: agent_mode %s comes with distributed routers; only legacy is "
                  "supported yet", kind.binary, conf.agent_mode)
        return 2
    if conf.AGENT.dataplane not in DRIVERS[kind.name]:
        LOG.error("%s has no %s data plane yet", kind.binary, conf.AGENT.dataplane)
        return 2
    try:
        driver: Driver = DRIVERS[kind.name][conf.AGENT.dataplane](conf)
    except DaemonError as error:
        LOG.error("%s on %s cannot start: %s", kind.binary, conf.host, error)
        return 2
    client = ServerClient(conf.AGENT.server_url, channel_auth(conf))
    agent = conf.AGENT
    runner = AgentRunner(conf.host, driver, client, report_interval=agent.report_interval,
                         availability_zone=agent.availability_zone,
                         watch_timeout=agent.watch_timeout,
                         resync_interval=agent.resync_interval,
                         polling_interval=agent.polling_interval,
                         workers=agent.reconcile_workers,
                         failure_limit=agent.loop_failure_limit,
                         stall_timeout=agent.stall_timeout)

    def stop(signum: int, _frame: FrameType | None) -> None:
        LOG.info("%s on %s stopping (signal %d)", kind.binary, conf.host, signum)
        runner.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("%s on %s starting (server %s, data plane %s)", kind.binary, conf.host,
             agent.server_url, agent.dataplane)
    runner.start()
    runner.wait()
    runner.stop()
    client.close()
    if runner.fatal:
        LOG.error("%s on %s exits: %s", kind.binary, conf.host, runner.fatal)
        return 1
    return 0


def dhcp_main(argv: Sequence[str] | None = None) -> int:
    """The DHCP agent."""
    return run(registry.DHCP, argv)


def l2_main(argv: Sequence[str] | None = None) -> int:
    """The Linux bridge agent."""
    return run(registry.L2, argv)


def l3_main(argv: Sequence[str] | None = None) -> int:
    """The L3 agent."""
    return run(registry.L3, argv)


if __name__ == "__main__":
    sys.exit(dhcp_main())
