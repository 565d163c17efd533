"""The services: the rules of each resource, called by the API and by tests directly."""

from __future__ import annotations

from dataclasses import dataclass

from oslo_config import cfg

from neutrino.db.api import Database
from neutrino.schema.policy import Enforcer
from neutrino.services.agents import AgentService
from neutrino.services.changes import ChangeFeed
from neutrino.services.channel import AgentChannel
from neutrino.services.common import Core
from neutrino.services.dhcp import DhcpScheduler
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService
from neutrino.services.subnets import SubnetService
from neutrino.services.tags import TagService


@dataclass
class Services:
    """Every service, sharing one database and one policy enforcer."""

    core: Core
    networks: NetworkService
    subnets: SubnetService
    ports: PortService
    tags: TagService
    agents: AgentService
    dhcp: DhcpScheduler
    feed: ChangeFeed
    channel: AgentChannel

    @classmethod
    def build(cls, conf: cfg.ConfigOpts, db: Database) -> Services:
        """Wire the services for a configuration and a database."""
        core = Core(conf=conf, db=db, policy=Enforcer(conf))
        networks = NetworkService(core)
        ports = PortService(core, networks)
        agents = AgentService(core)
        dhcp = DhcpScheduler(core, agents, networks, ports.insert)
        feed = ChangeFeed(db)
        core.notify = feed.nudge
        core.dhcp_needed = dhcp.on_dhcp_needed
        core.dhcp_subnet = dhcp.on_dhcp_subnet
        return cls(core=core, networks=networks, subnets=SubnetService(core, networks),
                   ports=ports, tags=TagService(core), agents=agents, dhcp=dhcp, feed=feed,
                   channel=AgentChannel(core, agents, dhcp, feed))
