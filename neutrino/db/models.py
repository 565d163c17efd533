"""The schema: one table per resource, standard attributes as columns.

Uniqueness that matters is a constraint here rather than a check in Python: one address per
subnet (`ipallocations` primary key), one MAC per network (`ports`), one network per VXLAN VNI
or flat physical network (`segment_allocations`). Services rely on the database refusing a
duplicate and retry the transaction that lost the race.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class JSONText(TypeDecorator[Any]):
    """JSON kept as text, decoded with orjson; an empty object skips the decoder.

    Lists read these columns for every row, and most hold `{}` or `[]`.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str:
        return orjson.dumps(value).decode()

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value == "{}":
            return {}
        if value == "[]":
            return []
        return orjson.loads(value) if value is not None else None


class Base(DeclarativeBase):
    """Declarative base with stable constraint names (Alembic needs them)."""

    metadata = MetaData(naming_convention=NAMING)


class StandardAttrs:
    """Columns every API resource carries (Neutron's standard attributes)."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    # Stored as rendered (`2026-11-20T23:22:01Z`): it sorts chronologically on every backend
    # and a list of 10,000 rows needs no conversion at all.
    created_at: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[str] = mapped_column(String(20))
    revision_number: Mapped[int] = mapped_column(BigInteger, default=0)


class Network(StandardAttrs, Base):
    """A layer-2 network."""

    __tablename__ = "networks"

    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer)
    network_type: Mapped[str] = mapped_column(String(32))
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    availability_zone_hints: Mapped[list[Any]] = mapped_column(JSONText, default=list)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True,
                                                        server_default=true())


class ExtraDhcpOpt(Base):
    """A DHCP option dnsmasq gives one port (`extra_dhcp_opt`), per IP version."""

    __tablename__ = "extradhcpopts"

    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    opt_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ip_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    opt_value: Mapped[str] = mapped_column(String(255))


class NetworkRBAC(Base):
    """A grant of a network to a project, or to every project (`*`): `access_as_shared`
    (ports on it) or `access_as_external` (router gateways and floating IPs on it).

    The network's `shared` column mirrors its `*` shared grant and `external` its having
    any external grant, so that the common lists need no join.
    """

    __tablename__ = "networkrbacs"
    __table_args__ = (UniqueConstraint("object_id", "target_project", "action"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    object_type: Mapped[str] = mapped_column(String(64), default="network")
    object_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    target_project: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(64))


class SegmentAllocation(Base):
    """A segment owned by one network: the key is the whole segment, so no two networks share it.

    `physical_network` is '' and `segmentation_id` 0 where a type has none, because NULLs
    would not collide in a unique key.
    """

    __tablename__ = "segment_allocations"

    network_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    physical_network: Mapped[str] = mapped_column(String(64), primary_key=True)
    segmentation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )


class Subnet(StandardAttrs, Base):
    """An IP range on a network."""

    __tablename__ = "subnets"

    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(16), nullable=True)
    allocation_pools: Mapped[list[Any]] = mapped_column(JSONText, default=list)
    dns_nameservers: Mapped[list[Any]] = mapped_column(JSONText, default=list)
    host_routes: Mapped[list[Any]] = mapped_column(JSONText, default=list)
    service_types: Mapped[list[Any]] = mapped_column(JSONText, default=list)
    subnetpool_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    segment_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # Nanoseconds at creation: orders subnets made within one second of `created_at`
    # (a port without fixed_ips takes its address from the first subnets made).
    created_order: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class AddressScope(Base):
    """A set of subnet pools whose addresses do not overlap (Neutron's address scopes have
    no standard attributes: no description, tags, revisions or timestamps)."""

    __tablename__ = "address_scopes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    ip_version: Mapped[int] = mapped_column(Integer)


class SubnetPool(StandardAttrs, Base):
    """Prefixes that subnets are carved from, with bounds on their prefix lengths."""

    __tablename__ = "subnetpools"

    ip_version: Mapped[int] = mapped_column(Integer)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    # Addresses a project may take from the pool (in /32s or /64s); NULL: no limit.
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    address_scope_id: Mapped[str | None] = mapped_column(String(36), nullable=True,
                                                         index=True)


class SubnetPoolPrefix(Base):
    """A prefix of a subnet pool (the pool's prefixes are kept compacted)."""

    __tablename__ = "subnetpool_prefixes"

    subnetpool_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnetpools.id", ondelete="CASCADE"), primary_key=True)
    cidr: Mapped[str] = mapped_column(String(64), primary_key=True)


class Port(StandardAttrs, Base):
    """A port on a network: a MAC and its fixed IPs."""

    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("network_id", "mac_address"),)

    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_owner: Mapped[str] = mapped_column(String(255), default="", index=True)
    binding_host_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    binding_vif_type: Mapped[str] = mapped_column(String(64), default="unbound")
    binding_vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    binding_vif_details: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True,
                                                        server_default=true())
    # Provisioning, as agents report it: the port is ACTIVE once it is up on its host and,
    # if it needs DHCP, a DHCP agent will answer for it.
    l2_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    dhcp_ready: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class IPAllocation(Base):
    """An address of a port on a subnet. The primary key makes each address unique per subnet.

    `ip_key` is the address as 32 hex digits, so that addresses of either family sort and
    compare as strings and the allocator can look for gaps with an index range scan.
    """

    __tablename__ = "ipallocations"
    __table_args__ = (Index("ix_ipallocations_subnet_key", "subnet_id", "ip_key", unique=True),)

    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True
    )
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    ip_key: Mapped[str] = mapped_column(String(32))
    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="CASCADE"), index=True
    )
    network_id: Mapped[str] = mapped_column(String(36), index=True)


class Tag(Base):
    """A tag on any resource (ids are UUIDs, so unique across resource types)."""

    __tablename__ = "tags"

    resource_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)



class Agent(Base):
    """An agent process on a host, as it registered. One per (agent_type, host)."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("agent_type", "host"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255), index=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    configurations: Mapped[dict[str, Any]] = mapped_column(JSONText, default=dict)
    resources_synced: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # Seconds since the epoch (server clock): liveness is a comparison, rendering is rare.
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_timestamp: Mapped[float] = mapped_column(Float, index=True)
    applied_revision: Mapped[int] = mapped_column(BigInteger, default=0)


class DhcpAgentBinding(Base):
    """A network hosted by a DHCP agent, and that agent's DHCP port on it.

    The key makes a network bound at most once to an agent, whatever the concurrency; the
    unique port makes a DHCP port serve one binding only.
    """

    __tablename__ = "dhcp_agent_bindings"

    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True)
    port_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="SET NULL"), nullable=True, unique=True)
    created_at: Mapped[float] = mapped_column(Float)


class Router(StandardAttrs, Base):
    """A router: its interfaces are ports (device_id = the router), its gateway one more."""

    __tablename__ = "routers"

    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="SET NULL"), nullable=True, unique=True)
    gw_network_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    routes: Mapped[list[Any]] = mapped_column(JSONText, default=list)
    distributed: Mapped[bool] = mapped_column(Boolean, default=False)
    ha: Mapped[bool] = mapped_column(Boolean, default=False)
    # An HA router's VRRP router id on its project's HA network (unique there: see
    # HaRouterVrid); None for others, or when none was free (the router is then ERROR).
    ha_vr_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    availability_zone_hints: Mapped[list[Any]] = mapped_column(JSONText, default=list)


class RouterL3AgentBinding(Base):
    """A router hosted by an L3 agent. The key binds a router at most once to an agent."""

    __tablename__ = "router_l3_agent_bindings"

    router_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[float] = mapped_column(Float)
    # An HA router's VRRP state on that agent's host, as the agent last reported it
    # (active, standby, fault); legacy routers keep 'standby', never shown.
    ha_state: Mapped[str] = mapped_column(String(16), default="standby",
                                          server_default="standby")
    # When the agent reported the state last changed (server time): of two agents that
    # both say active, the API believes the later (see l3_ha.shown_states).
    ha_state_changed_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class HaRouterNetwork(Base):
    """A project's HA network: the hidden network its HA routers' VRRP runs on (one per
    project: the key absorbs concurrent first HA routers)."""

    __tablename__ = "ha_router_networks"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), unique=True)


class HaRouterVrid(Base):
    """A VRRP router id taken on an HA network (1-254: VRRP's 255 is the address owner)."""

    __tablename__ = "ha_router_vrid_allocations"

    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True)
    vr_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class FloatingIP(Base):
    """A floating IP: an address on an external network (its own port), and the fixed IP
    of a port it forwards to, through the router joining the two.

    The unique key makes a fixed IP carry at most one floating IP per external network."""

    __tablename__ = "floatingips"
    __table_args__ = (UniqueConstraint("floating_network_id", "fixed_port_id",
                                       "fixed_ip_address",
                                       name="uq_floatingips_fixed_ip_per_network"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[str] = mapped_column(String(20))
    revision_number: Mapped[int] = mapped_column(BigInteger, default=0)
    floating_network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id"), index=True)
    floating_port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="CASCADE"), unique=True)
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    fixed_port_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="SET NULL"), nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("routers.id"), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")


class SecurityGroup(StandardAttrs, Base):
    """A security group: the rules of the ports bound to it."""

    __tablename__ = "securitygroups"

    stateful: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class DefaultSecurityGroup(Base):
    """The `default` group of a project. The key makes one per project, whatever the
    concurrency: the loser of a race retries and finds the winner's."""

    __tablename__ = "default_security_groups"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("securitygroups.id", ondelete="CASCADE"), unique=True)


class AddressGroup(StandardAttrs, Base):
    """A named set of CIDRs that security group rules may name as their remote."""

    __tablename__ = "addressgroups"


class AddressGroupAddress(Base):
    """A CIDR of an address group (in network form: 10.0.0.0/24, 10.0.0.5/32)."""

    __tablename__ = "addressgroup_addresses"

    address_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("addressgroups.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)


class SecurityGroupRule(Base):
    """A rule of a security group, stored as the API renders it (`protocol` as given or
    normalised, NULL for any; port ranges NULL for all ports)."""

    __tablename__ = "securitygrouprules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("securitygroups.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(40))
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(255), nullable=True)
    normalized_cidr: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("securitygroups.id", ondelete="CASCADE"), nullable=True,
        index=True)
    remote_address_group_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("addressgroups.id", ondelete="CASCADE"), nullable=True,
        index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[str] = mapped_column(String(20))
    updated_at: Mapped[str] = mapped_column(String(20))
    revision_number: Mapped[int] = mapped_column(BigInteger, default=0)


class SecurityGroupPortBinding(Base):
    """A port in a security group. No cascade from the group: a group with ports cannot
    be deleted, and a binding made concurrently with the delete makes the delete fail."""

    __tablename__ = "securitygroupportbindings"

    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("securitygroups.id"), primary_key=True, index=True)
    # changes.member_bucket(port_id): a host is sent a group's members bucket by bucket,
    # and one bucket is read without reading the whole group.
    member_bucket: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (Index("ix_securitygroupportbindings_group_bucket",
                            "security_group_id", "member_bucket"),)


class AllowedAddressPair(Base):
    """A MAC and an IP (or CIDR) a port may send from besides its own."""

    __tablename__ = "allowedaddresspairs"

    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    mac_address: Mapped[str] = mapped_column(String(32), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)


class Change(Base):
    """One entry of the change log agents watch: what changed, within which scope (the
    network of a port, the router of an interface: a kind and an id), on which host.

    `seq` is the revision agents report and resume from; the log is pruned from the oldest
    end, and an agent further behind than what is kept gets a snapshot.
    """

    __tablename__ = "changelog"
    __table_args__ = (Index("ix_changelog_scope", "scope_kind", "scope_id"),)

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                     primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(36))
    scope_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Up to 64: a security group's member bucket is "<group id>:<bucket>".
    scope_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class Quota(Base):
    """A project's limit for one resource, where it differs from the default."""

    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)


class QuotaLock(Base):
    """One row per project and resource that creates lock (`SELECT ... FOR UPDATE`) while
    they count, so that two concurrent creates cannot both take the last unit."""

    __tablename__ = "quota_locks"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)


class Lease(Base):
    """A named lease held by one server process at a time (e.g. the failover pass)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[float] = mapped_column(Float)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


NETWORKS = _table(Network)
SEGMENTS = _table(SegmentAllocation)
SUBNETS = _table(Subnet)
# The order subnets were made in (rows from before `created_order` tie on it: id order).
SUBNET_CREATION_ORDER = (SUBNETS.c.created_at, SUBNETS.c.created_order, SUBNETS.c.id)
PORTS = _table(Port)
NETWORK_RBACS = _table(NetworkRBAC)
EXTRA_DHCP_OPTS = _table(ExtraDhcpOpt)
ADDRESS_SCOPES = _table(AddressScope)
SUBNETPOOLS = _table(SubnetPool)
SUBNETPOOL_PREFIXES = _table(SubnetPoolPrefix)
ALLOCS = _table(IPAllocation)
TAGS = _table(Tag)
AGENTS = _table(Agent)
DHCP_BINDINGS = _table(DhcpAgentBinding)
ROUTERS = _table(Router)
L3_BINDINGS = _table(RouterL3AgentBinding)
HA_NETWORKS = _table(HaRouterNetwork)
HA_VRIDS = _table(HaRouterVrid)
FLOATINGIPS = _table(FloatingIP)
SECURITY_GROUPS = _table(SecurityGroup)
DEFAULT_SECURITY_GROUPS = _table(DefaultSecurityGroup)
SECURITY_GROUP_RULES = _table(SecurityGroupRule)
SG_PORT_BINDINGS = _table(SecurityGroupPortBinding)
ADDRESS_GROUPS = _table(AddressGroup)
ADDRESS_GROUP_ADDRESSES = _table(AddressGroupAddress)
ALLOWED_ADDRESS_PAIRS = _table(AllowedAddressPair)
CHANGES = _table(Change)
LEASES = _table(Lease)
QUOTAS = _table(Quota)
QUOTA_LOCKS = _table(QuotaLock)
