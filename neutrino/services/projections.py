"""What each kind of agent is sent: its interest in the change log, and its desired state.

A `Projection` is registered per agent type. For one agent it says
- `interest`: which change scopes may alter which of the agent's keys (a DHCP agent: the
  networks it hosts; a Linux bridge agent: the networks with ports on its host);
- `state`: the desired state of one key, computed from the rows (None: the agent should
  not have it any more).
`Interest.affected` then maps entries of the change log to the agent's keys, the same way
for every kind: a change in a scope the agent watches, a change on its host (something
bound there: the key is the change's own scope), a change of a kind that concerns every
key (other agents' tunnel endpoints for L2), or a change of the agent itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection, Row, or_, select

from neutrino.agent.contract import Key
from neutrino.db.listing import Page
from neutrino.db.models import (
    AGENTS,
    DHCP_BINDINGS,
    EXTRA_DHCP_OPTS,
    L3_BINDINGS,
    NETWORKS,
    PORTS,
    ROUTERS,
    SUBNETS,
)
from neutrino.registry import DHCP, L2
from neutrino.services import extra_dhcp_opts
from neutrino.services import security_projection as security
from neutrino.services.changes import SECURITY_GROUP, Change, Scope
from neutrino.services.ports import fixed_ips_of
from neutrino.services.routers import REPLICATED_INTERFACE, ROUTER_GATEWAY

NETWORK = "network"


@dataclass
class Interest:
    """What one agent cares about in the change log."""

    agent_id: str
    agent_type: str
    host: str
    key_kinds: frozenset[str]
    scopes: dict[Scope, set[Key]] = field(default_factory=dict)
    broad: frozenset[str] = frozenset()  # change kinds that may alter every key
    shaping: frozenset[str] = frozenset()  # scope kinds whose changes may alter the scopes

    @property
    def keys(self) -> set[Key]:
        """Every key the agent has now."""
        return {key for keys in self.scopes.values() for key in keys}

    def affected(self, entries: Iterable[Change]) -> set[Key] | None:
        """The agent's keys the entries may alter; None when none concerns the agent."""
        out: set[Key] = set()
        hit = False
        for change in entries:
            scope = change.scope
            if scope is not None and scope in self.scopes:
                out |= self.scopes[scope]
                hit = True
            if change.host == self.host and scope is not None and scope[0] in self.key_kinds:
                out.add(scope)
                hit = True
            if change.kind in self.broad or (change.kind == "agent"
                                             and change.object_id == self.agent_id):
                out |= self.keys
                hit = True
        return out if hit else None

    def reshaped(self, entries: Iterable[Change]) -> bool:
        """Whether the entries may change this interest itself (not only the keys' states).

        What an agent has follows from what is bound to its host, and each such change is
        logged on the host (a port bound or unbound, a network scheduled, a router
        placed); besides those, only changes in a watched scope of a `shaping` kind (a rule
        of one of the host's groups may name another remote group) and changes of the agent
        itself reshape it. A member joining a remote group, a port on another host, a
        subnet: the keys stay the same, so the interest can be kept.
        """
        for change in entries:
            scope = change.scope
            if change.host == self.host or (change.kind == "agent"
                                             and change.object_id == self.agent_id):
                return True
            if scope is not None and scope[0] in self.shaping and scope in self.scopes:
                return True
        return False


class Projection(Protocol):
    """What one agent type is interested in, and the state it is sent."""

    agent_type: str
    key_kinds: frozenset[str]
    broad: frozenset[str]
    shaping: frozenset[str]

    def scopes(self, conn: Connection, agent: Row[Any]) -> dict[Scope, set[Key]]:
        """Change scope -> the agent's keys it may alter."""

    def state(self, conn: Connection, key: Key, agent: Row[Any]) -> dict[str, Any] | None:
        """The desired state of one key for the agent (None: it should not have it)."""

    def related(self, conn: Connection, key: Key) -> set[Key]:
        """Keys whose state is sent whenever this key's is."""


def interest(projection: Projection, conn: Connection, agent: Row[Any]) -> Interest:
    """An agent's interest, from its projection."""
    return Interest(agent.id, agent.agent_type, agent.host, projection.key_kinds,
                    projection.scopes(conn, agent), projection.broad, projection.shaping)


# -- rows shared by the network projections ------------------------------------------------

def _ha_router_ports(host: str) -> Any:
    """The interface and gateway ports of the HA routers an L3 agent on `host` hosts."""
    hosted = select(L3_BINDINGS.c.router_id).join(
        AGENTS, AGENTS.c.id == L3_BINDINGS.c.agent_id).join(
        ROUTERS, ROUTERS.c.id == L3_BINDINGS.c.router_id).where(
        AGENTS.c.host == host, ROUTERS.c.ha.is_(True))
    return select(PORTS.c.id).where(PORTS.c.device_id.in_(hosted), PORTS.c.device_owner.in_(
        (REPLICATED_INTERFACE, ROUTER_GATEWAY)))


def here(host: str) -> Any:
    """The ports a host's L2 agent wires: those bound to it, and the ports of the HA routers
    it hosts, which every hosting host plugs (the router's namespace has them everywhere;
    only the active host's keepalived gives them their addresses), whichever host they are
    bound to."""
    return or_(PORTS.c.binding_host_id == host, PORTS.c.id.in_(_ha_router_ports(host)))


def ha_router_hosts(conn: Connection, network_id: str) -> set[str]:
    """Hosts with an HA router on a network: each is a flooding destination of it, so that
    a failover needs no new forwarding entry anywhere."""
    routers = select(PORTS.c.device_id).where(
        PORTS.c.network_id == network_id,
        PORTS.c.device_owner.in_((REPLICATED_INTERFACE, ROUTER_GATEWAY)))
    return set(conn.execute(select(AGENTS.c.host).distinct().join(
        L3_BINDINGS, L3_BINDINGS.c.agent_id == AGENTS.c.id).join(
        ROUTERS, ROUTERS.c.id == L3_BINDINGS.c.router_id).where(
        ROUTERS.c.ha.is_(True), L3_BINDINGS.c.router_id.in_(routers))).scalars())


def ports_where(conn: Connection, where: Any) -> list[dict[str, Any]]:
    """Ports with their fixed IPs, as agents get them."""
    rows = conn.execute(select(PORTS.c.id, PORTS.c.name, PORTS.c.network_id,
                               PORTS.c.mac_address, PORTS.c.device_owner, PORTS.c.device_id,
                               PORTS.c.admin_state_up, PORTS.c.binding_host_id,
                               PORTS.c.status, PORTS.c.revision_number,
                               PORTS.c.port_security_enabled)
                        .where(where).order_by(PORTS.c.id)).all()
    ports = [dict(r._mapping) for r in rows]
    if not ports:
        return []
    fixed = fixed_ips_of(conn, Page(ports, False))
    for port in ports:
        port["binding:host_id"] = port.pop("binding_host_id")
        port["fixed_ips"] = fixed.get(port["id"], [])
    return ports


def network_row(conn: Connection, network_id: str) -> dict[str, Any] | None:
    """A network's attributes that agents use."""
    row = conn.execute(select(NETWORKS.c.id, NETWORKS.c.name, NETWORKS.c.admin_state_up,
                              NETWORKS.c.mtu, NETWORKS.c.network_type,
                              NETWORKS.c.physical_network, NETWORKS.c.segmentation_id,
                              NETWORKS.c.revision_number)
                       .where(NETWORKS.c.id == network_id)).first()
    return dict(row._mapping) if row is not None else None


def subnets_of(conn: Connection, network_id: str) -> list[dict[str, Any]]:
    """A network's subnets with what agents use of them."""
    rows = conn.execute(select(
        SUBNETS.c.id, SUBNETS.c.cidr, SUBNETS.c.ip_version, SUBNETS.c.gateway_ip,
        SUBNETS.c.enable_dhcp, SUBNETS.c.dns_nameservers, SUBNETS.c.host_routes,
        SUBNETS.c.allocation_pools, SUBNETS.c.ipv6_address_mode, SUBNETS.c.ipv6_ra_mode)
        .where(SUBNETS.c.network_id == network_id).order_by(SUBNETS.c.id)).all()
    return [dict(s._mapping) for s in rows]


def _by_network(network_ids: Iterable[str]) -> dict[Scope, set[Key]]:
    return {(NETWORK, n): {(NETWORK, n)} for n in network_ids}


class DhcpProjection:
    """A DHCP agent: the networks it hosts, each with its subnets, ports and DHCP port."""

    agent_type = DHCP.agent_type
    key_kinds = frozenset({NETWORK})
    broad: frozenset[str] = frozenset()
    shaping: frozenset[str] = frozenset()  # a binding is logged on the agent's host

    def related(self, conn: Connection, key: Key) -> set[Key]:
        """Nothing travels with a network."""
        return set()

    def scopes(self, conn: Connection, agent: Row[Any]) -> dict[Scope, set[Key]]:
        """The networks bound to the agent."""
        return _by_network(conn.execute(select(DHCP_BINDINGS.c.network_id).where(
            DHCP_BINDINGS.c.agent_id == agent.id)).scalars())

    def state(self, conn: Connection, key: Key, agent: Row[Any]) -> dict[str, Any] | None:
        """What the agent should serve on a network it hosts (None if it does not)."""
        network_id = key[1]
        binding = conn.execute(select(DHCP_BINDINGS.c.port_id).where(
            DHCP_BINDINGS.c.network_id == network_id,
            DHCP_BINDINGS.c.agent_id == agent.id)).first()
        network = network_row(conn, network_id) if binding is not None else None
        if network is None or binding is None:
            return None
        network["subnets"] = subnets_of(conn, network_id)
        network["ports"] = ports_where(conn, PORTS.c.network_id == network_id)
        opts = extra_dhcp_opts.opts_of(conn, EXTRA_DHCP_OPTS.c.port_id.in_(
            select(PORTS.c.id).where(PORTS.c.network_id == network_id)))
        for port in network["ports"]:
            port["extra_dhcp_opts"] = opts.get(port["id"], [])
        network["dhcp_port_id"] = binding.port_id
        return network


class L2Projection:
    """A Linux bridge agent: the networks with ports bound to its host, the host's ports on
    each, and where the other hosts' tunnels end."""

    agent_type = L2.agent_type
    key_kinds = frozenset({NETWORK}) | security.KINDS
    broad = frozenset({"agent"})  # another host's tunnel endpoint may have moved
    shaping = frozenset({SECURITY_GROUP})  # a rule may name new remote groups

    def scopes(self, conn: Connection, agent: Row[Any]) -> dict[Scope, set[Key]]:
        """The networks with ports on the agent's host, and the security groups, remote
        groups' members and address groups its filtered ports need."""
        found = _by_network(conn.execute(select(PORTS.c.network_id).distinct().where(
            here(agent.host))).scalars())
        found.update(security.scopes(conn, agent.host))
        return found

    def related(self, conn: Connection, key: Key) -> set[Key]:
        """A group's remote members and address groups travel with it."""
        return security.related(conn, key)

    def states_of(self, conn: Connection, keys: Iterable[Key], agent: Row[Any]
                  ) -> dict[Key, dict[str, Any] | None]:
        """The states of many keys (security keys read together)."""
        keys = list(keys)
        out = security.states_of(conn, [k for k in keys if k[0] in security.KINDS], agent)
        for key in keys:
            if key[0] not in security.KINDS:
                out[key] = self.state(conn, key, agent)
        return out

    def state(self, conn: Connection, key: Key, agent: Row[Any]) -> dict[str, Any] | None:
        """What the agent should wire for a network (None if no port of it is here), or
        enforce for a security key."""
        if key[0] in security.KINDS:
            return security.state(conn, key, agent)
        network_id, host = key[1], agent.host
        local = ports_where(conn, (PORTS.c.network_id == network_id) & here(host))
        security.port_security(conn, local)
        network = network_row(conn, network_id) if local else None
        if network is None:
            return None
        hosts = sorted(set(conn.execute(select(PORTS.c.binding_host_id).distinct().where(
            PORTS.c.network_id == network_id, PORTS.c.binding_host_id != "",
            PORTS.c.binding_host_id != host)).scalars()) | (
            ha_router_hosts(conn, network_id) - {host}))
        endpoints = []
        if hosts:
            for agent_host, configurations in conn.execute(
                    select(AGENTS.c.host, AGENTS.c.configurations).where(
                        AGENTS.c.agent_type == L2.agent_type, AGENTS.c.host.in_(hosts))
                    .order_by(AGENTS.c.host)):
                address = (configurations or {}).get("tunneling_ip")
                if address:
                    endpoints.append({"host": agent_host, "ip_address": address})
        network["ports"] = local
        network["remote_endpoints"] = endpoints
        return network


def builtin() -> dict[str, Projection]:
    """The projections of the agent types neutrino ships, by agent type."""
    found: list[Projection] = [DhcpProjection(), L2Projection()]
    return {p.agent_type: p for p in found}
