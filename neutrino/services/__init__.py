"""The services: the rules of each resource, called by the API and by tests directly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oslo_config import cfg

from neutrino.db.api import Database
from neutrino.registry import DHCP
from neutrino.schema.policy import Enforcer
from neutrino.services import projections
from neutrino.services.address_groups import AddressGroupService
from neutrino.services.address_scopes import AddressScopeService
from neutrino.services.agents import AgentService, Report
from neutrino.services.changes import ChangeFeed
from neutrino.services.channel import AgentChannel
from neutrino.services.common import Core
from neutrino.services.dhcp import DhcpScheduler
from neutrino.services.floatingips import FloatingIPService, report_statuses
from neutrino.services.ip_availability import IpAvailabilityService
from neutrino.services.l3 import L3Projection, L3Scheduler
from neutrino.services.l3_ha import HaRouters
from neutrino.services.networks import NetworkService
from neutrino.services.ports import PortService
from neutrino.services.quotas import QuotaService
from neutrino.services.rbac import RbacPolicyService
from neutrino.services.router_interfaces import RouterInterfaces
from neutrino.services.routers import RouterService
from neutrino.services.scheduler import Periodic, Placement
from neutrino.services.security_group_rules import SecurityGroupRuleService
from neutrino.services.security_groups import SecurityGroupService
from neutrino.services.subnetpools import SubnetPoolService
from neutrino.services.subnets import SubnetService
from neutrino.services.tags import TagService
from neutrino.services.watch import WatchService


@dataclass
class Services:
    """Every service, sharing one database and one policy enforcer."""

    core: Core
    networks: NetworkService
    subnets: SubnetService
    subnetpools: SubnetPoolService
    address_scopes: AddressScopeService
    rbac_policies: RbacPolicyService
    ports: PortService
    routers: RouterService
    interfaces: RouterInterfaces
    floatingips: FloatingIPService
    security_groups: SecurityGroupService
    security_group_rules: SecurityGroupRuleService
    address_groups: AddressGroupService
    tags: TagService
    agents: AgentService
    dhcp: DhcpScheduler
    l3: L3Scheduler
    feed: ChangeFeed
    channel: AgentChannel
    watch: WatchService
    periodic: Periodic
    quotas: QuotaService
    ip_availability: IpAvailabilityService

    @property
    def providers(self) -> dict[tuple[str, str], Any]:
        """Who answers each sub-collection: (collection, name) -> provider."""
        return {("agents", "dhcp-networks"): self.dhcp, ("networks", "dhcp-agents"): self.dhcp,
                ("agents", "l3-routers"): self.l3, ("routers", "l3-agents"): self.l3}

    @property
    def actions(self) -> dict[tuple[str, str], Any]:
        """Who answers each member action: (collection, action) -> provider."""
        return {("routers", "add_router_interface"): self.interfaces,
                ("routers", "remove_router_interface"): self.interfaces,
                ("routers", "add_extraroutes"): self.routers,
                ("routers", "remove_extraroutes"): self.routers,
                ("address_groups", "add_addresses"): self.address_groups,
                ("address_groups", "remove_addresses"): self.address_groups,
                ("subnetpools", "add_prefixes"): self.subnetpools,
                ("subnetpools", "remove_prefixes"): self.subnetpools}

    @property
    def placements(self) -> list[Placement]:
        """What the scheduler places on agents (an agent deleted releases its share)."""
        return [s.placement for s in self.periodic.schedulers]

    @classmethod
    def build(cls, conf: cfg.ConfigOpts, db: Database) -> Services:
        """Wire the services for a configuration and a database."""
        core = Core(conf=conf, db=db, policy=Enforcer(conf))
        networks = NetworkService(core)
        security_groups = SecurityGroupService(core)
        ports = PortService(core, networks, security_groups)
        agents = AgentService(core)
        dhcp = DhcpScheduler(core, agents, networks, ports.insert)
        feed = ChangeFeed(db)
        core.notify = feed.nudge
        core.dhcp_needed = dhcp.on_dhcp_needed
        core.dhcp_subnet = dhcp.on_dhcp_subnet
        quotas = QuotaService(core)
        core.quota_check = quotas.check
        channel = AgentChannel(core, agents, feed)
        channel.status_handlers["floatingips"] = report_statuses
        address_scopes = AddressScopeService(core)
        subnetpools = SubnetPoolService(core, address_scopes)
        subnets = SubnetService(core, networks, subnetpools)
        routers = RouterService(core, networks, ports.insert)
        routers.ha = HaRouters(core, networks.insert, subnets.insert, ports.insert)
        l3 = L3Scheduler(core, agents, routers)
        channel.status_handlers["routers"] = routers.ha.report_states
        views = {**projections.builtin(), L3Projection.agent_type: L3Projection()}

        def dhcp_agent_registered(agent_id: str, report: Report) -> None:
            if report.agent_type == DHCP.agent_type:
                dhcp.live_agents.add(agent_id)

        channel.on_registered.append(dhcp_agent_registered)
        periodic = Periodic(core, [dhcp.scheduler, l3.scheduler])

        def agent_started(_agent_id: str, report: Report) -> None:
            if report.start_flag:  # an agent that starts syncs: routers short of one go
                periodic.registered.add(report.agent_type)

        channel.on_registered.append(agent_started)
        return cls(core=core, networks=networks, subnets=subnets, subnetpools=subnetpools,
                   address_scopes=address_scopes,
                   rbac_policies=RbacPolicyService(core, networks), ports=ports,
                   routers=routers, interfaces=RouterInterfaces(routers, subnets, ports),
                   floatingips=FloatingIPService(core, networks, ports),
                   security_groups=security_groups,
                   security_group_rules=SecurityGroupRuleService(security_groups),
                   address_groups=AddressGroupService(core),
                   tags=TagService(core), agents=agents, dhcp=dhcp, l3=l3, feed=feed,
                   channel=channel, watch=WatchService(core, agents, feed, views),
                   periodic=periodic, quotas=quotas,
                   ip_availability=IpAvailabilityService(core))
