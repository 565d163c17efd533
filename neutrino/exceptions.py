"""The errors neutrino answers with, each rendered as a Neutron `NeutronError` body.

    NeutronException                 500  (a bug: rendered with a generic message)
    ├── BadRequest                   400
    │   ├── HTTPBadRequest (the body's shape: unknown, read-only or missing attributes)
    │   └── InvalidInput (InvalidRoutes, SecurityGroup*: rule values,
    │       PortSecurityAndIPRequiredForSecurityGroups, AllowedAddressPairsMissingIP,
    │       DuplicateAddressPairInRequest, SubnetOverlap, InvalidSubnetServiceType),
    │       InvalidAllocationPool,
    │       OutOfBoundsAllocationPool, InvalidIpForSubnet, InvalidIpForNetwork,
    │       DNSNameServersExhausted, HostRoutesExhausted, AgentCreationNotSupported,
    │       SubnetMismatchForPort, InvalidCIDR, AllowedAddressPairExhausted,
    │       AddressesAlreadyExist, QuotaMissingTenant, SubnetPoolDeleteError,
    │       AddressScopeUpdateError, IllegalSubnetPool*, PrefixVersionMismatch,
    │       EmptySubnetPoolPrefixList, Min/MaxPrefixSubnetAllocationError,
    │       NetworkSubnetPoolAffinityError, InvalidActionForType (an InvalidInput)
    ├── Unauthenticated              401
    ├── NotAuthorized                403
    │   └── PolicyNotAuthorized
    ├── NotFound                     404
    │   └── NetworkNotFound, SubnetNotFound, PortNotFound, TagNotFound, AgentNotFound,
    │       InvalidDHCPAgent, InvalidL3Agent, MarkerNotFound, ExtensionNotFound,
    │       RouterNotFound, RouterInterfaceNotFound(ForSubnet), FloatingIPNotFound,
    │       ExternalGatewayForFloatingIPNotFound, SecurityGroupNotFound,
    │       SecurityGroupRuleNotFound, AddressGroupNotFound, AddressesNotFound,
    │       SubnetPoolNotFound, AddressScopeNotFound, RbacPolicyNotFound
    ├── Conflict                     409
    │   ├── InUse: NetworkInUse, SubnetInUse, MacAddressInUse, PortInUse, ServicePortInUse,
    │   │   GatewayConflictWithAllocationPools, GatewayIpInUse, RouterInUse,
    │   │   RouterInterfaceInUseBy*, RouterExternalGatewayInUseByFloatingIp, ExternalNetworkInUse,
    │   │   FloatingIPPortAlreadyAssociated, SecurityGroupInUse, SecurityGroupCannot*Default,
    │   │   SecurityGroupDefaultAlreadyExists, SecurityGroupRuleExists,
    │   │   DuplicateSecurityGroupRuleInPost, AddressGroupInUse, PortSecurityPortHasSecurityGroup,
    │   │   AddressScopeInUse
    │   └── IpAddressAlreadyAllocated, IpAddressGenerationFailure(NoMatchingSubnet),
    │       OverlappingAllocationPools,
    │       InvalidSharedSetting, SegmentationIdInUse, NetworkHostedByDHCPAgent,
    │       NetworkNotHostedByDhcpAgent, ConcurrentChange, OverQuota,
    │       RouterHostedByL3Agent, DVRL3CannotAssignToDvrAgent, DVRL3CannotRemoveFromDvrAgent,
    │       SecurityGroupConflict, AddressPairAndPortSecurityRequired, SubnetAllocationError,
    │       AddressScopePrefixConflict, SubnetPoolQuotaExceeded (an OverQuota),
    │       RbacPolicyInUse, DuplicateRbacPolicy, NetworkMTUSubnetConflict
    ├── HTTPMethodNotAllowed         405
    ├── RevisionNumberConstraintFailed 412 (If-Match: revision_number=N)
    ├── TooManyRequests              429  (failed logins throttled; with Retry-After)
    └── ServiceUnavailable           503
        └── NoNetworkAvailable, DatabaseUnavailable

The `type` of the body is the class name; the message is the class template filled with the
keyword arguments. The API layer turns anything else into a 500 with a generic message.
"""

from __future__ import annotations

from typing import Any, ClassVar


class NeutronException(Exception):
    """Base of every error that reaches an API caller."""

    status: ClassVar[int] = 500
    message: ClassVar[str] = "An unknown exception occurred."

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        try:
            self.msg = self.message % kwargs
        except (KeyError, TypeError):
            self.msg = self.message
        super().__init__(self.msg)

    @property
    def type(self) -> str:
        """The error's `type` in the NeutronError body."""
        return type(self).__name__


class BadRequest(NeutronException):
    """The request is malformed or violates a rule on its values."""

    status = 400
    message = "Bad %(resource)s request: %(msg)s."


class HTTPBadRequest(BadRequest):
    """A malformed body, as Neutron's WSGI layer words it (webob's HTTPBadRequest: the
    message alone, no resource prefix)."""

    message = "%(msg)s"


class QuotaMissingTenant(BadRequest):
    """`GET /v2.0/quotas/project` by a caller without a project."""

    message = "Tenant-id was missing from quota request."


class InvalidInput(BadRequest):
    """A value failed validation."""

    message = "Invalid input for operation: %(error_message)s."


class NotAuthorized(NeutronException):
    """The caller may not do this."""

    status = 403
    message = "Not authorized."


class PolicyNotAuthorized(NotAuthorized):
    """A policy rule refused the action."""

    message = "rule:%(action)s is disallowed by policy"


class NotFound(NeutronException):
    """The resource does not exist, or is hidden from the caller."""

    status = 404
    message = "An unknown exception occurred."



class NetworkNotFound(NotFound):
    """No such network."""

    message = "Network %(net_id)s could not be found."


class SubnetNotFound(NotFound):
    """No such subnet."""

    message = "Subnet %(subnet_id)s could not be found."


class PortNotFound(NotFound):
    """No such port."""

    message = "Port %(port_id)s could not be found."


class TagNotFound(NotFound):
    """The resource does not carry that tag."""

    message = "Tag %(tag)s could not be found for %(resource)s %(resource_id)s."


class MarkerNotFound(NotFound):
    """A pagination marker names no resource the caller can see."""

    message = "Marker %(marker)s could not be found."


class ExtensionNotFound(NotFound):
    """No such extension alias."""

    message = "Extension with alias %(alias)s does not exist."


class Conflict(NeutronException):
    """The request conflicts with the current state."""

    status = 409
    message = "An unknown exception occurred."


class ConcurrentChange(Conflict):
    """A transaction kept losing races with concurrent ones."""

    message = "The request conflicted with concurrent changes and was not applied; retry it."


class NetworkMTUSubnetConflict(Conflict):
    """A network's MTU is below what one of its subnets' IP versions needs."""

    message = "MTU of %(net_id)s is not valid, subnet requires a minimum of %(mtu)s"


class InUse(Conflict):
    """A resource is still used by others."""

    message = "The resource is in use."


class NetworkInUse(InUse):
    """A network still has ports (named, as Neutron names them, so a caller can remove
    them)."""

    message = (
        "Unable to complete operation on network %(net_id)s. "
        "There are one or more ports still in use on the network, "
        "id for these ports is: %(port_ids)s."
    )

    def __init__(self, *, net_id: str, port_ids: list[str]) -> None:
        super().__init__(net_id=net_id, port_ids=", ".join(port_ids))


class SubnetInUse(InUse):
    """A subnet still has ports with addresses on it."""

    message = (
        "Unable to complete operation on subnet %(subnet_id)s: "
        "One or more ports have an IP allocation from this subnet."
    )



class MacAddressInUse(InUse):
    """The MAC address is taken on the network."""

    message = (
        "Unable to complete operation for network %(net_id)s. "
        "The mac address %(mac)s is in use."
    )


class IpAddressAlreadyAllocated(Conflict):
    """The requested IP address is taken."""

    message = "IP address %(ip)s already allocated in subnet %(subnet_id)s"


class IpAddressGenerationFailure(Conflict):
    """The allocation pools of the network are exhausted."""

    message = "No more IP addresses available on network %(net_id)s."


class IpAddressGenerationFailureNoMatchingSubnet(IpAddressGenerationFailure):
    """No subnet of the network serves the port's device owner (subnet-service-types)."""

    message = ("No valid service subnet for the given device owner, network "
               "%(network_id)s, service type %(service_type)s.")


class ServiceUnavailable(NeutronException):
    """The service cannot do this now."""

    status = 503
    message = "The service is unavailable."



class DatabaseUnavailable(ServiceUnavailable):
    """The database did not answer or dropped the connection."""

    message = "The database is unavailable; retry the request."


class NoNetworkAvailable(ServiceUnavailable):
    """No segmentation ID is left for a project network."""

    message = "Unable to create the network. No tenant network is available for allocation."


class InvalidAllocationPool(BadRequest):
    """An allocation pool is malformed."""

    message = "The allocation pool %(pool)s is not valid."


class OverlappingAllocationPools(Conflict):
    """Two allocation pools of a subnet overlap."""

    message = (
        "Found overlapping allocation pools: %(pool_1)s %(pool_2)s for subnet %(subnet_cidr)s."
    )


class OutOfBoundsAllocationPool(BadRequest):
    """An allocation pool lies outside the subnet."""

    message = (
        "The allocation pool %(pool)s spans beyond the subnet cidr %(subnet_cidr)s."
    )


class GatewayIpInUse(InUse):
    """A router port holds the subnet's gateway address."""

    message = ("Current gateway ip %(ip_address)s already in use by port %(port_id)s. "
               "Unable to update.")


class GatewayConflictWithAllocationPools(InUse):
    """The gateway address is inside an allocation pool."""

    message = "Gateway ip %(ip_address)s conflicts with allocation pool %(pool)s."


class InvalidIpForSubnet(BadRequest):
    """The address is not within the subnet."""

    message = "IP address %(ip_address)s is not a valid IP for the specified subnet."


class InvalidIpForNetwork(BadRequest):
    """The address is in none of the network's subnets."""

    message = "IP address %(ip_address)s is not a valid IP for any of the subnets on the " \
        "specified network."


class SubnetOverlap(InvalidInput):
    """The CIDR overlaps another subnet where overlap is not allowed (Neutron answers it as
    `InvalidInput`)."""

    message = (
        "Invalid input for operation: Requested subnet with cidr: %(cidr)s for network: "
        "%(net_id)s overlaps with another subnet."
    )

    @property
    def type(self) -> str:
        """Neutron's type for it."""
        return "InvalidInput"


class InvalidSubnetServiceType(InvalidInput):
    """A subnet's service type is not a device owner."""

    message = ("Subnet service type %(service_type)s does not correspond to a valid device "
               "owner.")


class DNSNameServersExhausted(BadRequest):
    """Too many DNS nameservers."""

    message = (
        "Unable to complete operation for %(subnet_id)s. "
        "The number of DNS nameservers exceeds the limit %(quota)s."
    )


class HostRoutesExhausted(BadRequest):
    """Too many host routes."""

    message = (
        "Unable to complete operation for %(subnet_id)s. "
        "The number of host routes exceeds the limit %(quota)s."
    )


class InvalidSharedSetting(Conflict):
    """A network in use by other projects cannot stop being shared."""

    message = "Unable to reconfigure sharing settings for network %(network)s. " \
        "Multiple tenants are using it."


class SegmentationIdInUse(Conflict):
    """The requested segment is taken by another network."""

    message = (
        "Unable to create the network. The %(network_type)s segment %(segment)s "
        "is in use."
    )


class AgentNotFound(NotFound):
    """No such agent."""

    message = "Agent %(id)s could not be found."


class InvalidDHCPAgent(NotFound):
    """The agent is not a DHCP agent, or it is disabled."""

    message = "Agent %(id)s is not a valid DHCP Agent or has been disabled"


class NetworkHostedByDHCPAgent(Conflict):
    """The agent hosts the network already."""

    message = "The network %(network_id)s has been already hosted by the DHCP Agent " \
        "%(agent_id)s."


class NetworkNotHostedByDhcpAgent(Conflict):
    """The agent does not host the network."""

    message = "The network %(network_id)s is not hosted by the DHCP agent %(agent_id)s."


class AgentCreationNotSupported(BadRequest):
    """Agents register themselves; the API cannot create one."""

    message = "Agent creation using API is not supported"


class Unauthenticated(NeutronException):
    """The caller could not be authenticated."""

    status = 401
    message = "Authentication required."


class TooManyRequests(NeutronException):
    """Too many failed logins of a user name or from a client address: wait and retry."""

    status = 429
    message = "Too many failed authentication attempts; retry after %(retry_after)s seconds."


class OverQuota(Conflict):
    """A quota would be exceeded."""

    message = "Quota exceeded for resources: %(overs)s."


class RouterNotFound(NotFound):
    """No such router."""

    message = "Router %(router_id)s could not be found"


class RouterInUse(InUse):
    """A router still has interfaces."""

    message = "Router %(router_id)s %(reason)s"


class RouterInterfaceNotFound(NotFound):
    """The port is not an interface of the router."""

    message = "Router %(router_id)s does not have an interface with id %(port_id)s"


class RouterInterfaceNotFoundForSubnet(NotFound):
    """The router has no interface on the subnet."""

    message = "Router %(router_id)s has no interface on subnet %(subnet_id)s"


class RouterInterfaceInUseByFloatingIP(InUse):
    """Floating IPs need the interface."""

    message = ("Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be "
               "deleted, as it is required by one or more floating IPs.")


class RouterInterfaceInUseByRoute(InUse):
    """An extra route's next hop needs the interface."""

    message = ("Router interface for subnet %(subnet_id)s on router %(router_id)s cannot be "
               "deleted, as it is required by one or more routes.")


class RouterExternalGatewayInUseByFloatingIp(InUse):
    """Floating IPs need the router's gateway."""

    message = ("Gateway cannot be updated for router %(router_id)s, since a gateway to "
               "external network %(net_id)s is required by one or more floating IPs.")


class InvalidRoutes(InvalidInput):
    """An extra route the router cannot have."""

    message = "Invalid input for operation: Invalid format for routes: %(routes)s, %(reason)s."


class PortInUse(InUse):
    """The port is attached to a device already."""

    message = ("Unable to complete operation on port %(port_id)s for network %(net_id)s. "
               "Port already has an attached device %(device_id)s.")


class ServicePortInUse(InUse):
    """A port the server manages cannot be deleted through the port API."""

    message = "Port %(port_id)s cannot be deleted directly via the port API: %(reason)s."


class SubnetMismatchForPort(BadRequest):
    """The port has no address on the subnet named with it."""

    message = "Subnet on port %(port_id)s does not match the requested subnet %(subnet_id)s."


class ExternalNetworkInUse(InUse):
    """Gateway ports keep a network external."""

    message = ("External network %(net_id)s cannot be updated to be made non-external, since "
               "it has existing gateway ports.")


class FloatingIPNotFound(NotFound):
    """No such floating IP."""

    message = "Floating IP %(floatingip_id)s could not be found"


class ExternalGatewayForFloatingIPNotFound(NotFound):
    """No router joins the port's subnet to the floating IP's network."""

    message = ("External network %(external_network_id)s is not reachable from subnet "
               "%(subnet_id)s.  Therefore, cannot associate Port %(port_id)s with a Floating "
               "IP.")


class FloatingIPPortAlreadyAssociated(InUse):
    """The fixed IP has a floating IP on that network already."""

    message = ("Cannot associate floating IP %(floating_ip_address)s (%(fip_id)s) with port "
               "%(port_id)s using fixed IP %(fixed_ip)s, as that fixed IP already has a "
               "floating IP on external network %(net_id)s.")


class InvalidL3Agent(NotFound):
    """The agent is not an L3 agent, or it is disabled."""

    message = "Agent %(id)s is not a L3 Agent or has been disabled"


class RouterHostedByL3Agent(Conflict):
    """A legacy router is hosted by another agent already."""

    message = ("The router %(router_id)s has been already hosted by the L3 Agent "
               "%(agent_id)s.")


class DVRL3CannotAssignToDvrAgent(Conflict):
    """Routers are not assigned by hand to agents in dvr mode."""

    message = "Not allowed to manually assign a router to an agent in 'dvr' mode."


class DVRL3CannotRemoveFromDvrAgent(Conflict):
    """Routers are not removed by hand from agents in dvr mode."""

    message = "Not allowed to manually remove a router from an agent in 'dvr' mode."


class ExternalIpAddressExhausted(BadRequest):
    """No address left on the external network for a floating IP."""

    message = "Unable to find any IP address on external network %(net_id)s."


class RevisionNumberConstraintFailed(NeutronException):
    """`If-Match: revision_number=N` named another revision than the resource's."""

    status = 412
    message = "Constrained to %(expected)s, but current revision is %(current)s"


class HTTPMethodNotAllowed(NeutronException):
    """The resource does not take this method (a security group rule is never updated)."""

    status = 405
    message = "The method is not allowed for this resource."


class InvalidCIDR(BadRequest):
    """A remote IP prefix that is no CIDR."""

    message = "Invalid CIDR %(input)s given as IP prefix."


# -- security groups ---------------------------------------------------------------------


class SecurityGroupNotFound(NotFound):
    """No such security group (or not one of the caller's project)."""

    message = "Security group %(id)s does not exist"


class SecurityGroupRuleNotFound(NotFound):
    """No such security group rule."""

    message = "Security group rule %(id)s does not exist"


class SecurityGroupInUse(InUse):
    """Ports are bound to the group."""

    message = "Security Group %(id)s %(reason)s."

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("reason", "in use")
        super().__init__(**kwargs)


class SecurityGroupCannotRemoveDefault(InUse):
    """Only an admin deletes a project's default group."""

    message = "Insufficient rights for removing default security group."


class SecurityGroupCannotUpdateDefault(InUse):
    """The default group keeps its name."""

    message = "Updating default security group not allowed."


class SecurityGroupDefaultAlreadyExists(InUse):
    """The name `default` belongs to the group the server makes."""

    message = "Default security group already exists."


class SecurityGroupRuleExists(InUse):
    """The group has an equal rule already."""

    message = "Security group rule already exists. Rule id is %(rule_id)s."


class DuplicateSecurityGroupRuleInPost(InUse):
    """Two equal rules in one bulk create."""

    message = "Duplicate Security Group Rule in POST."


class SecurityGroupConflict(Conflict):
    """The operation conflicts with the groups' state (stateful and stateless mixed)."""

    message = "Error %(reason)s while attempting the operation."


class SecurityGroupInvalidPortRange(InvalidInput):
    """port_range_min above port_range_max, or one of them missing."""

    message = "For TCP/UDP protocols, port_range_min must be <= port_range_max"


class SecurityGroupInvalidProtocolForPort(InvalidInput):
    """Ports given with a protocol that has none."""

    message = ("Ports cannot be specified for protocol %(protocol)s. Ports are only "
               "supported for %(valid_port_protocols)s.")


class SecurityGroupInvalidPortValue(InvalidInput):
    """A port outside 0-65535 (or 0 where a port is needed)."""

    message = "Invalid value for port %(port)s"


class SecurityGroupInvalidIcmpValue(InvalidInput):
    """An ICMP type or code outside 0-255."""

    message = "Invalid value for ICMP %(field)s (%(attr)s) %(value)s. It must be 0 to 255."


class SecurityGroupMissingIcmpType(InvalidInput):
    """An ICMP code without a type."""

    message = ("ICMP code (port-range-max) %(value)s is provided but ICMP type "
               "(port-range-min) is missing.")


class SecurityGroupEthertypeConflictWithProtocol(InvalidInput):
    """An IPv6-only protocol in an IPv4 rule."""

    message = "Invalid ethertype %(ethertype)s for protocol %(protocol)s."


class SecurityGroupRuleInvalidProtocol(InvalidInput):
    """A protocol that is neither a known name nor a number 0-255."""

    message = ("Security group rule protocol %(protocol)s not supported. Only protocol "
               "values %(values)s and integer representations [0 to 255] are supported.")


class SecurityGroupRuleInvalidEtherType(InvalidInput):
    """An ethertype other than IPv4 or IPv6."""

    message = ("Security group rule for ethertype '%(ethertype)s' not supported. Allowed "
               "values are %(values)s.")


class SecurityGroupRulesNotSingleProject(InvalidInput):
    """A bulk create names several projects."""

    message = "Multiple project_ids in bulk security group rule create not allowed"


class SecurityGroupNotSingleGroupRules(InvalidInput):
    """A bulk create names several groups."""

    message = "Only allowed to update rules for one security profile at a time"


class SecurityGroupMultipleRemoteEntites(InvalidInput):
    """More than one remote (prefix, group, address group) in a rule."""

    message = ("Only one of remote_ip_prefix or remote_group_id or remote_address_group_id "
               "may be provided.")


class SecurityGroupProtocolRequiredWithPorts(InvalidInput):
    """Ports without a protocol."""

    message = "Must also specify protocol if port range is given."


class SecurityGroupRuleParameterConflict(InvalidInput):
    """The remote prefix is of the other IP version."""

    message = "Conflicting value ethertype %(ethertype)s for CIDR %(cidr)s"


# -- address groups ----------------------------------------------------------------------


class AddressGroupNotFound(NotFound):
    """No such address group."""

    message = "Address group %(address_group_id)s could not be found."


class AddressGroupInUse(InUse):
    """Rules name the address group."""

    message = ("Address group %(address_group_id)s is in use on one or more security group "
               "rules.")


class AddressesNotFound(NotFound):
    """Addresses to remove that the group does not have."""

    message = "Addresses %(addresses)s not found in the address group %(address_group_id)s."


class AddressesAlreadyExist(BadRequest):
    """Addresses to add that the group has already."""

    message = ("Addresses %(addresses)s already exist in the address group "
               "%(address_group_id)s.")


# -- port security and allowed address pairs ---------------------------------------------


class PortSecurityPortHasSecurityGroup(InUse):
    """Port security cannot go while the port has groups."""

    message = ("Port has security group associated. Cannot disable port security or IP "
               "address until security group is removed.")


class PortSecurityAndIPRequiredForSecurityGroups(InvalidInput):
    """Groups on a port without port security or without an address."""

    message = ("Port security must be enabled and port must have an IP address in order to "
               "use security groups.")


class AllowedAddressPairsMissingIP(InvalidInput):
    """A pair without ip_address."""

    message = "AllowedAddressPair must contain ip_address"


class AddressPairAndPortSecurityRequired(Conflict):
    """Pairs on a port without port security."""

    message = ("Port Security must be enabled in order to have allowed address pairs on a "
               "port.")


class DuplicateAddressPairInRequest(InvalidInput):
    """The same pair twice."""

    message = ("Request contains duplicate address pair: mac_address %(mac_address)s "
               "ip_address %(ip_address)s.")


class AllowedAddressPairExhausted(BadRequest):
    """More pairs than max_allowed_address_pair."""

    message = "The number of allowed address pair exceeds the maximum %(quota)s."


# -- subnet pools and address scopes -----------------------------------------------------


class SubnetPoolNotFound(NotFound):
    """No such subnet pool, or hidden from the caller."""

    message = "Subnet pool %(subnetpool_id)s could not be found."


class AddressScopeNotFound(NotFound):
    """No such address scope, or hidden from the caller."""

    message = "Address scope %(address_scope_id)s could not be found."


class SubnetPoolDeleteError(BadRequest):
    """A pool that subnets were taken from."""

    message = "Unable to delete subnet pool: %(reason)s."


class AddressScopeInUse(InUse):
    """Subnet pools belong to the scope."""

    message = ("Unable to complete operation on address scope %(address_scope_id)s. There "
               "are one or more subnet pools in use on the address scope.")


class AddressScopeUpdateError(BadRequest):
    """An update an address scope cannot take."""

    message = "Unable to update address scope %(address_scope_id)s : %(reason)s."


class AddressScopePrefixConflict(Conflict):
    """Two pools of one scope would share addresses."""

    message = ("Failed to associate address scope: subnetpools within an address scope must "
               "have unique prefixes.")


class IllegalSubnetPoolIpVersionAssociationToAddressScope(BadRequest):
    """A scope of the other IP version."""

    message = ("Illegal subnetpool association: subnetpool %(subnetpool_id)s cannot associate "
               "with address scope %(address_scope_id)s because subnetpool ip_version is not "
               "%(ip_version)s.")


class IllegalSubnetPoolPrefixBounds(BadRequest):
    """Prefix length bounds that contradict each other or the IP version."""

    message = ("Illegal prefix bounds: %(prefix_type)s=%(prefixlen)s, "
               "%(base_prefix_type)s=%(base_prefixlen)s.")


class IllegalSubnetPoolPrefixUpdate(BadRequest):
    """Prefixes taken away by an update, or in use by a subnet."""

    message = "Illegal update to prefixes: %(msg)s."


class PrefixVersionMismatch(BadRequest):
    """IPv4 and IPv6 prefixes in one pool."""

    message = "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."


class EmptySubnetPoolPrefixList(BadRequest):
    """A pool without prefixes."""

    message = "Empty subnet pool prefix list."


class MinPrefixSubnetAllocationError(BadRequest):
    """A subnet larger than the pool allows."""

    message = ("Unable to allocate subnet with prefix length %(prefixlen)s, minimum allowed "
               "prefix is %(min_prefixlen)s.")


class MaxPrefixSubnetAllocationError(BadRequest):
    """A subnet smaller than the pool allows."""

    message = ("Unable to allocate subnet with prefix length %(prefixlen)s, maximum allowed "
               "prefix is %(max_prefixlen)s.")


class SubnetAllocationError(Conflict):
    """The pool has no room for the subnet asked for (a 500 in Neutron; a conflict with the
    pool's state here)."""

    message = "Failed to allocate subnet: %(reason)s."


class SubnetPoolQuotaExceeded(OverQuota):
    """The project's share of the pool (`default_quota`) would be passed."""

    message = "Per-project subnet pool prefix quota exceeded."


class NetworkSubnetPoolAffinityError(BadRequest):
    """Subnets of one IP version on a network from different pools."""

    message = "Subnets hosted on the same network must be allocated from the same subnet pool."


# -- RBAC policies -----------------------------------------------------------------------


class RbacPolicyNotFound(NotFound):
    """No such policy, or hidden from the caller."""

    message = "RBAC policy of type %(object_type)s with ID %(id)s not found"


class RbacPolicyInUse(Conflict):
    """Projects depend on the grant a change would take away."""

    message = ("RBAC policy on object %(object_id)s cannot be removed because other objects "
               "depend on it.\nDetails: %(details)s")


class DuplicateRbacPolicy(Conflict):
    """The same grant twice."""

    message = "An RBAC policy already exists with those values."


class InvalidActionForType(InvalidInput):
    """An action the object type does not have."""

    message = ("Invalid action '%(action)s' for object type '%(object_type)s'. Valid actions: "
               "%(valid_actions)s")


def not_found(resource: str, resource_id: str) -> NotFound:
    """The NotFound a resource's own lookups raise (`network` -> NetworkNotFound)."""
    found = _NOT_FOUND.get(resource)
    if found is None:
        return MarkerNotFound(marker=resource_id)
    cls, key = found
    return cls(**{key: resource_id})


_NOT_FOUND: dict[str, tuple[type[NotFound], str]] = {
    "network": (NetworkNotFound, "net_id"), "subnet": (SubnetNotFound, "subnet_id"),
    "port": (PortNotFound, "port_id"), "router": (RouterNotFound, "router_id"),
    "floatingip": (FloatingIPNotFound, "floatingip_id"), "agent": (AgentNotFound, "id"),
    "security_group": (SecurityGroupNotFound, "id"),
    "security_group_rule": (SecurityGroupRuleNotFound, "id"),
    "address_group": (AddressGroupNotFound, "address_group_id"),
    "subnetpool": (SubnetPoolNotFound, "subnetpool_id"),
    "address_scope": (AddressScopeNotFound, "address_scope_id"),
}
