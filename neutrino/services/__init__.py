"""The services: the rules of each resource, called by the API and by tests directly."""

from __future__ import annotations

from dataclasses import dataclass

from oslo_config import cfg

from neutrino.api.policy import Enforcer
from neutrino.db.api import Database
from neutrino.services.common import Core
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

    @classmethod
    def build(cls, conf: cfg.ConfigOpts, db: Database) -> Services:
        """Wire the services for a configuration and a database."""
        core = Core(conf=conf, db=db, policy=Enforcer(conf))
        networks = NetworkService(core)
        return cls(core=core, networks=networks, subnets=SubnetService(core, networks),
                   ports=PortService(core, networks), tags=TagService(core))
