"""Each API resource described once, as data (Neutron's attribute maps).

An `Attr` says how an attribute is validated, defaulted, stored, filtered, sorted and guarded
by policy. The request parser, the query builder, the renderer (`Resource.render`), the
policy defaults and the OpenAPI document all read these tables; nothing else lists a
resource's attributes. A resource also names its member actions (`PUT
/v2.0/routers/{id}/add_router_interface`) and its sub-collections (`/v2.0/agents/{id}/
dhcp-networks`), from which the API makes its routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from neutrino.schema import validators as v

MISSING: Any = object()

VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical",
              "virtio-forwarder", "smart-nic", "remote-managed", "vdpa")
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
NETWORK_TYPES = ("local", "flat", "vxlan")


@dataclass(frozen=True)
class Attr:
    """One attribute of a resource."""

    name: str
    column: str | None = None  # the table column; None for computed attributes
    validator: v.Validator | None = None
    default: Any = MISSING  # MISSING on a POST-able attribute makes it required
    post: bool = False
    put: bool = False
    filter: bool = True
    sort: bool = True
    policy: bool = False  # guarded by create_/get_/update_<resource>:<name> rules
    # Computed by the service when absent from a POST (e.g. a network's MTU).
    computed_default: bool = False
    visible: bool = True
    doc: str = ""

    @property
    def required(self) -> bool:
        """Whether a POST must carry this attribute."""
        return self.post and self.default is MISSING and not self.computed_default


@dataclass(frozen=True)
class Action:
    """A member action: `METHOD /v2.0/<collection>/{id}/<name>` with a bare body, answered
    by the service method of the same name (dashes as underscores)."""

    name: str
    method: str = "PUT"
    doc: str = ""

    @property
    def handler(self) -> str:
        """The service method that answers it."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class SubCollection:
    """`/v2.0/<collection>/{id}/<name>`: what one member hosts or is hosted by, listed as
    `lists` (a collection's name), added with POST `{"<key>": id}` (201, body `null`) and
    removed with DELETE `.../<name>/{id}`, as Neutron's scheduler extensions do."""

    name: str
    lists: str
    key: str | None = None  # the POST body's key; None: read only
    doc: str = ""

    @property
    def handler(self) -> str:
        """The stem of the service methods that answer it (`list_`, `add_`, `remove_`)."""
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Resource:
    """A resource: its names, its attributes, its member actions and sub-collections.

    `collection` names the list in bodies (`security_groups`); `path` the URL segment when
    it differs (`security-groups`). A resource that is not `updatable` answers PUT with 405
    (security group rules are immutable)."""

    name: str
    collection: str
    attrs: tuple[Attr, ...]
    tags: bool = True
    actions: tuple[Action, ...] = ()
    subcollections: tuple[SubCollection, ...] = ()
    path: str = ""
    updatable: bool = True
    attr_map: dict[str, Attr] = field(init=False, repr=False, compare=False)
    _stored: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _computed: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", self.path or self.collection)
        object.__setattr__(self, "attr_map", {a.name: a for a in self.attrs})
        object.__setattr__(self, "_stored", tuple(
            (a.name, a.column) for a in self.attrs if a.visible and a.column is not None))
        object.__setattr__(self, "_computed", tuple(
            a.name for a in self.attrs if a.visible and a.column is None))

    def render(self, row: Mapping[str, Any], **computed: Any) -> dict[str, Any]:
        """The API view of a row: stored attributes from their columns, computed ones as
        given (None when not given)."""
        out = {name: row[column] for name, column in self._stored}
        for name in self._computed:
            out[name] = computed.get(name)
        return out


def _standard(project: bool = True, name: bool = True, tags: bool = True,
              name_validator: v.Validator | None = None,
              description_put: bool = True, tags_on_create: bool = False,
              name_required: bool = False) -> tuple[Attr, ...]:
    """The attributes every resource with standard attributes has. Tags are set through
    `/tags`; only a port takes them in its create body, as in Neutron (Nova tags ports)."""
    attrs = [Attr("id", "id", v.uuid_(), doc="The resource's UUID.")]
    if name:
        attrs.append(Attr("name", "name", name_validator or v.string(255),
                          default=MISSING if name_required else "", post=True, put=True))
    attrs += [
        Attr("description", "description", v.string(255), default="", post=True,
             put=description_put),
        Attr("created_at", "created_at", filter=False),
        Attr("updated_at", "updated_at", filter=False),
        Attr("revision_number", "revision_number", v.integer(), sort=True),
    ]
    if tags:
        attrs.append(Attr("tags", None, v.list_of_strings(255), default=[],
                          post=tags_on_create, sort=False, filter=False))
    if project:
        attrs += [
            Attr("project_id", "project_id", v.project_id(), post=True, computed_default=True),
            Attr("tenant_id", "project_id", v.project_id(), post=True, computed_default=True),
        ]
    return tuple(attrs)


DHCP_AGENTS = SubCollection("dhcp-agents", "agents", doc="The DHCP agents hosting a network.")
DHCP_NETWORKS = SubCollection("dhcp-networks", "networks", "network_id",
                              doc="The networks a DHCP agent hosts.")

NETWORK = Resource("network", "networks", _standard() + (
    Attr("admin_state_up", "admin_state_up", v.boolean(), default=True, post=True, put=True),
    Attr("status", "status"),
    Attr("subnets", None, filter=False, sort=False),
    Attr("shared", "shared", v.boolean(), default=False, post=True, put=True, policy=True),
    Attr("router:external", "external", v.boolean(), default=False, post=True, put=True,
         policy=True),
    Attr("mtu", "mtu", v.integer(0, 65535), post=True, put=True, computed_default=True),
    Attr("provider:network_type", "network_type", v.one_of(*NETWORK_TYPES), post=True,
         policy=True, computed_default=True),
    Attr("provider:physical_network", "physical_network", v.string(64, nullable=True),
         post=True, policy=True, computed_default=True),
    Attr("provider:segmentation_id", "segmentation_id", v.integer(0, 16777215, nullable=True),
         post=True, policy=True, computed_default=True),
    Attr("availability_zone_hints", "availability_zone_hints", v.list_of_strings(255),
         default=[], post=True, filter=False, sort=False),
    Attr("availability_zones", None, filter=False, sort=False),
    Attr("port_security_enabled", "port_security_enabled", v.boolean(), default=True,
         post=True, put=True),
    Attr("ipv4_address_scope", None, filter=False, sort=False),
    Attr("ipv6_address_scope", None, filter=False, sort=False),
), subcollections=(DHCP_AGENTS,))

SUBNET = Resource("subnet", "subnets", _standard() + (
    Attr("network_id", "network_id", v.uuid_(), post=True),
    Attr("ip_version", "ip_version", v.ip_version(), post=True),
    Attr("cidr", "cidr", v.cidr(), post=True, computed_default=True,
         doc="Required unless the subnet is taken from a subnet pool."),
    Attr("prefixlen", None, v.integer(0, 128), post=True, visible=False, filter=False,
         sort=False, computed_default=True,
         doc="With a subnet pool and no cidr: the size asked for (the pool's default)."),
    Attr("gateway_ip", "gateway_ip", v.ip_address(nullable=True), post=True, put=True,
         computed_default=True),
    Attr("allocation_pools", "allocation_pools", v.allocation_pools(), post=True, put=True,
         computed_default=True, filter=False, sort=False),
    Attr("dns_nameservers", "dns_nameservers", v.list_of_ips(), default=[], post=True,
         put=True, filter=False, sort=False),
    Attr("host_routes", "host_routes", v.host_routes(), default=[], post=True, put=True,
         filter=False, sort=False),
    Attr("enable_dhcp", "enable_dhcp", v.boolean(), default=True, post=True, put=True),
    Attr("ipv6_ra_mode", "ipv6_ra_mode", v.one_of(*IPV6_MODES, nullable=True), default=None,
         post=True),
    Attr("ipv6_address_mode", "ipv6_address_mode", v.one_of(*IPV6_MODES, nullable=True),
         default=None, post=True),
    Attr("subnetpool_id", "subnetpool_id", v.uuid_(nullable=True), default=None,
         post=True),
    Attr("use_default_subnetpool", None, v.boolean(), default=False, post=True,
         visible=False, filter=False, sort=False,
         doc="Take the subnet from the default subnet pool of its IP version."),
    Attr("segment_id", "segment_id", v.one_of(None, nullable=True), default=None, post=True),
    Attr("service_types", "service_types", v.list_of_strings(255), default=[], post=True,
         put=True, filter=False, sort=False),
))

PORT = Resource("port", "ports", _standard(tags_on_create=True) + (
    Attr("network_id", "network_id", v.uuid_(), post=True),
    Attr("admin_state_up", "admin_state_up", v.boolean(), default=True, post=True, put=True),
    Attr("mac_address", "mac_address", v.mac_address(), post=True, put=True, policy=True,
         computed_default=True),
    Attr("fixed_ips", None, v.fixed_ips(), post=True, put=True, policy=True,
         computed_default=True, sort=False),
    Attr("device_id", "device_id", v.string(255), default="", post=True, put=True),
    Attr("device_owner", "device_owner", v.string(255), default="", post=True, put=True,
         policy=True),
    Attr("status", "status"),
    Attr("binding:host_id", "binding_host_id", v.string(255), default="", post=True,
         put=True, policy=True),
    Attr("binding:vif_type", "binding_vif_type", policy=True),
    Attr("binding:vif_details", "binding_vif_details", policy=True, filter=False, sort=False),
    Attr("binding:vnic_type", "binding_vnic_type", v.one_of(*VNIC_TYPES), default="normal",
         post=True, put=True, policy=True),
    Attr("binding:profile", "binding_profile", v.any_dict(), default={}, post=True, put=True,
         policy=True, filter=False, sort=False),
    Attr("port_security_enabled", "port_security_enabled", v.boolean(), post=True,
         put=True, policy=True, computed_default=True,
         doc="Anti-spoofing and security groups; the network's value when not given "
             "(false for network:* ports)."),
    Attr("security_groups", None, v.uuid_list(), post=True, put=True, computed_default=True,
         filter=False, sort=False,
         doc="Security group ids; the project's default group when not given."),
    Attr("allowed_address_pairs", None, v.allowed_address_pairs(), post=True, put=True,
         policy=True, computed_default=True, filter=False, sort=False,
         doc="[{ip_address: IP or CIDR, mac_address: default the port's}]."),
    Attr("extra_dhcp_opts", None, v.extra_dhcp_opts(), default=[], post=True, put=True,
         filter=False, sort=False,
         doc="[{opt_name, opt_value, ip_version: 4}]: DHCP options for this port alone; "
             "an update merges them (a null opt_value removes one)."),
))

SUBNETPOOL = Resource("subnetpool", "subnetpools", _standard(
    name_validator=v.not_empty_name(), name_required=True) + (
    Attr("prefixes", None, v.cidr_list(), post=True, put=True, filter=False, sort=False,
         doc="CIDRs subnets are taken from; they can grow, never shrink, by an update."),
    Attr("ip_version", "ip_version"),
    Attr("default_prefixlen", "default_prefixlen", v.integer(0, 128), post=True, put=True,
         computed_default=True),
    Attr("min_prefixlen", "min_prefixlen", v.integer(0, 128), post=True, put=True,
         computed_default=True),
    Attr("max_prefixlen", "max_prefixlen", v.integer(0, 128), post=True, put=True,
         computed_default=True),
    Attr("default_quota", "default_quota", v.integer(0, nullable=True), default=None,
         post=True, put=True,
         doc="Addresses a project may take (in /32s for IPv4, /64s for IPv6)."),
    Attr("shared", "shared", v.boolean(), default=False, post=True, policy=True),
    Attr("is_default", "is_default", v.boolean(), default=False, post=True, put=True,
         policy=True),
    Attr("address_scope_id", "address_scope_id", v.uuid_(nullable=True), default=None,
         post=True, put=True),
), actions=(
    Action("add_prefixes", doc="{prefixes: [CIDR, ...]}; answers {prefixes: [...]}."),
    Action("remove_prefixes", doc="{prefixes: [CIDR, ...]}; answers {prefixes: [...]}."),
))

ADDRESS_SCOPE = Resource("address_scope", "address_scopes", (
    Attr("id", "id", v.uuid_(), doc="The resource's UUID."),
    Attr("name", "name", v.string(255), default="", post=True, put=True),
    Attr("project_id", "project_id", v.project_id(), post=True, computed_default=True),
    Attr("tenant_id", "project_id", v.project_id(), post=True, computed_default=True),
    Attr("shared", "shared", v.boolean(), default=False, post=True, put=True, policy=True),
    Attr("ip_version", "ip_version", v.ip_version(), post=True),
), tags=False, path="address-scopes")

RBAC_POLICY = Resource("rbac_policy", "rbac_policies", (
    Attr("id", "id", v.uuid_(), doc="The resource's UUID."),
    Attr("project_id", "project_id", v.project_id(), post=True, computed_default=True),
    Attr("tenant_id", "project_id", v.project_id(), post=True, computed_default=True),
    Attr("object_type", "object_type", v.rbac_object_type(), post=True,
         doc="What is granted: `network` (other types are not implemented)."),
    Attr("object_id", "object_id", v.uuid_(), post=True),
    Attr("target_tenant", "target_project", v.target_project(), post=True, put=True,
         doc="The project granted access, or `*` for every project."),
    Attr("action", "action", v.string(255), post=True,
         doc="`access_as_shared` or `access_as_external`."),
), tags=False, path="rbac-policies")

L3_AGENTS = SubCollection("l3-agents", "agents", doc="The L3 agents hosting a router.")
L3_ROUTERS = SubCollection("l3-routers", "routers", "router_id",
                           doc="The routers an L3 agent hosts.")

ROUTER = Resource("router", "routers", _standard() + (
    Attr("admin_state_up", "admin_state_up", v.boolean(), default=True, post=True, put=True),
    Attr("status", "status"),
    Attr("external_gateway_info", None, v.external_gateway_info(), default=None, post=True,
         put=True, policy=True, filter=False, sort=False,
         doc="{network_id, enable_snat, external_fixed_ips}; {} or null remove the gateway."),
    Attr("routes", "routes", v.host_routes(null_is_empty_list=True), put=True, filter=False,
         sort=False,
         doc="Extra routes: [{destination, nexthop}]."),
    Attr("distributed", "distributed", v.optional_bool(), post=True, put=True, policy=True,
         computed_default=True),
    Attr("ha", "ha", v.optional_bool(), post=True, put=True, policy=True,
         computed_default=True),
    Attr("availability_zone_hints", "availability_zone_hints", v.list_of_strings(255),
         default=[], post=True, filter=False, sort=False),
    Attr("availability_zones", None, filter=False, sort=False),
), actions=(
    Action("add_router_interface", doc="Attach a subnet or a port: {subnet_id} or {port_id}."),
    Action("remove_router_interface", doc="Detach a subnet or a port."),
    Action("add_extraroutes", doc="{router: {routes: [...]}}, merged into the routes."),
    Action("remove_extraroutes", doc="{router: {routes: [...]}}, taken out of the routes."),
), subcollections=(L3_AGENTS,))

FLOATINGIP = Resource("floatingip", "floatingips", _standard(name=False) + (
    Attr("floating_ip_address", "floating_ip_address", v.ip_address(nullable=True),
         post=True, policy=True, computed_default=True),
    Attr("subnet_id", None, v.uuid_(nullable=True), post=True, visible=False, filter=False,
         sort=False, computed_default=True),
    Attr("floating_network_id", "floating_network_id", v.uuid_(), post=True),
    Attr("router_id", "router_id"),
    Attr("port_id", "fixed_port_id", v.uuid_(nullable=True), default=None, post=True,
         put=True, sort=False),
    Attr("fixed_ip_address", "fixed_ip_address", v.ip_address(nullable=True), default=None,
         post=True, put=True),
    Attr("status", "status"),
    Attr("port_details", None, filter=False, sort=False),
))

SECURITY_GROUP = Resource("security_group", "security_groups", _standard(
    name_validator=v.name_not_default()) + (
    Attr("stateful", "stateful", v.boolean(), default=True, post=True, put=True),
    Attr("shared", None, v.boolean(), sort=False,
         doc="Always false: groups are not shared between projects (yet)."),
    Attr("security_group_rules", None, filter=False, sort=False),
), path="security-groups")

SECURITY_GROUP_RULE = Resource("security_group_rule", "security_group_rules", _standard(
    name=False, tags=False, description_put=False) + (
    Attr("security_group_id", "security_group_id", v.string(36), post=True),
    Attr("direction", "direction", v.one_of("ingress", "egress"), post=True),
    Attr("ethertype", "ethertype", v.sg_ethertype(), default="IPv4", post=True),
    Attr("protocol", "protocol", v.sg_protocol(), default=None, post=True,
         doc="A name, a number 0-255, or null/any for every protocol."),
    Attr("port_range_min", "port_range_min", v.sg_port(), default=None, post=True,
         doc="The first port, or the ICMP type."),
    Attr("port_range_max", "port_range_max", v.sg_port(), default=None, post=True,
         doc="The last port, or the ICMP code."),
    Attr("remote_ip_prefix", "remote_ip_prefix", v.remote_ip_prefix(), default=None,
         post=True),
    Attr("remote_group_id", "remote_group_id", v.string(36, nullable=True), default=None,
         post=True),
    Attr("remote_address_group_id", "remote_address_group_id", v.string(36, nullable=True),
         default=None, post=True),
    Attr("normalized_cidr", "normalized_cidr"),
    Attr("belongs_to_default_sg", None, v.boolean(), sort=False),
), tags=False, path="security-group-rules", updatable=False)

ADDRESS_GROUP = Resource("address_group", "address_groups", _standard(tags=False) + (
    Attr("addresses", None, v.cidr_list(), default=[], post=True, filter=False, sort=False,
         doc="CIDRs; change them with add_addresses and remove_addresses."),
), tags=False, path="address-groups", actions=(
    Action("add_addresses", doc="{addresses: [CIDR, ...]}; answers {address_group: {...}}."),
    Action("remove_addresses", doc="{addresses: [CIDR, ...]}; answers {address_group: {...}}."),
))

AGENT = Resource("agent", "agents", (
    Attr("id", "id", v.uuid_()),
    Attr("agent_type", "agent_type"),
    Attr("binary", "binary"),
    Attr("topic", "topic"),
    Attr("host", "host"),
    Attr("admin_state_up", "admin_state_up", v.boolean(), put=True),
    Attr("alive", None),
    Attr("description", "description", v.string(255), put=True),
    Attr("availability_zone", "availability_zone"),
    Attr("created_at", None, filter=False),
    Attr("started_at", None, filter=False),
    Attr("heartbeat_timestamp", None, filter=False),
    Attr("configurations", "configurations", filter=False),
    Attr("resources_synced", "resources_synced", filter=False),
    Attr("applied_revision", None, filter=False,
         doc="The change-log revision the agent says it has applied."),
    Attr("revision_lag", None, filter=False,
         doc="How far the newest change that concerns the agent is ahead of what it "
             "applied (0: in sync)."),
), tags=False, subcollections=(DHCP_NETWORKS, L3_ROUTERS))

# The collections served by the generic create/list/show/update/delete routes.
RESOURCES: dict[str, Resource] = {r.collection: r for r in (
    NETWORK, SUBNET, SUBNETPOOL, ADDRESS_SCOPE, PORT, ROUTER, FLOATINGIP, SECURITY_GROUP,
    SECURITY_GROUP_RULE, ADDRESS_GROUP, RBAC_POLICY)}
# What `GET /v2.0/` lists: Neutron's core resources only (its v2 root names networks,
# subnets, subnet pools and ports; extensions' collections are found through
# `/v2.0/extensions`).
CORE_RESOURCES: tuple[Resource, ...] = (NETWORK, SUBNET, SUBNETPOOL, PORT)
# Every resource the API knows, by collection (sub-collection routes are made from these).
ALL_RESOURCES: dict[str, Resource] = {**RESOURCES, AGENT.collection: AGENT}
