"""The errors neutrino answers with, each rendered as a Neutron `NeutronError` body.

    NeutronException                 500  (a bug: rendered with a generic message)
    ├── BadRequest                   400
    │   └── InvalidInput, InvalidAllocationPool, OutOfBoundsAllocationPool,
    │       InvalidIpForSubnet, InvalidIpForNetwork, SubnetOverlap, DNSNameServersExhausted,
    │       HostRoutesExhausted, AgentCreationNotSupported
    ├── Unauthenticated              401
    ├── NotAuthorized                403
    │   └── PolicyNotAuthorized
    ├── NotFound                     404
    │   └── NetworkNotFound, SubnetNotFound, PortNotFound, TagNotFound, AgentNotFound,
    │       InvalidDHCPAgent, MarkerNotFound, ExtensionNotFound
    ├── Conflict                     409
    │   ├── InUse: NetworkInUse, SubnetInUse, MacAddressInUse,
    │   │   GatewayConflictWithAllocationPools
    │   └── IpAddressAlreadyAllocated, IpAddressGenerationFailure, OverlappingAllocationPools,
    │       InvalidSharedSetting, SegmentationIdInUse, NetworkHostedByDHCPAgent,
    │       NetworkNotHostedByDhcpAgent, ConcurrentChange
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


class InUse(Conflict):
    """A resource is still used by others."""

    message = "The resource is in use."


class NetworkInUse(InUse):
    """A network still has ports."""

    message = (
        "Unable to complete operation on network %(net_id)s. "
        "There are one or more ports still in use on the network."
    )


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


class SubnetOverlap(BadRequest):
    """The CIDR overlaps another subnet where overlap is not allowed."""

    message = (
        "Invalid input for cidr. Reason: Requested subnet with cidr: %(cidr)s for network: "
        "%(net_id)s overlaps with another subnet."
    )


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
