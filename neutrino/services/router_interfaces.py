"""`PUT /v2.0/routers/{id}/add_router_interface` and `remove_router_interface`.

Bodies are bare (`{"subnet_id": S}` or `{"port_id": P}`), and so are the answers; the checks
and their errors are Neutron's, in Neutron's order. By subnet, the interface is a new port
with the subnet's gateway IP; by port, an existing port of the caller's becomes one.
"""

from __future__ import annotations

import logging
from typing import Any

import netaddr
from sqlalchemy import Connection, Row, delete, select

from neutrino import exceptions as exc
from neutrino.db.models import ALLOCS, FLOATINGIPS, PORTS, ROUTERS, SG_PORT_BINDINGS, SUBNETS
from neutrino.schema import validators as v
from neutrino.schema.policy import Context
from neutrino.schema.request import parse_item
from neutrino.schema.resources import PORT
from neutrino.services import changes
from neutrino.services import port_security as psec
from neutrino.services.common import bump_revision, delete_tags, utcnow
from neutrino.services.routers import (
    INTERFACE_OWNERS,
    RouterService,
    interface_owner,
    port_host,
    record,
    router_target,
)
from neutrino.services.security_groups import port_groups
from neutrino.services.subnets import SubnetService

LOG = logging.getLogger(__name__)


def _bad(msg: str) -> exc.BadRequest:
    return exc.BadRequest(resource="router", msg=msg)


def parse_interface_body(body: Any, adding: bool) -> tuple[str | None, str | None]:
    """(subnet_id, port_id) from a bare interface body."""
    if not isinstance(body, dict) or not ({"subnet_id", "port_id"} & set(body)):
        raise _bad("Either subnet_id or port_id must be specified")
    ids = {}
    for key in ("subnet_id", "port_id"):
        if key in body:
            try:
                ids[key] = v.to_uuid(body[key])
            except v.Invalid as err:
                raise _bad(str(err)) from None
    if adding and len(ids) == 2:
        raise _bad("Cannot specify both subnet-id and port-id")
    return ids.get("subnet_id"), ids.get("port_id")


def interface_info(router: Row[Any], port_id: str, network_id: str,
                   subnet_ids: list[str], adding: bool) -> dict[str, Any]:
    """The answer to an interface call, as Neutron shapes it."""
    return {"id": router.id, "tenant_id": router.project_id, "project_id": router.project_id,
            "port_id": port_id, "network_id": network_id,
            "subnet_id": (subnet_ids[-1] if adding else subnet_ids[0]) if subnet_ids else None,
            "subnet_ids": subnet_ids}


class RouterInterfaces:
    """Attaching subnets and ports to routers, and detaching them."""

    def __init__(self, routers: RouterService, subnets: SubnetService,
                 ports: Any) -> None:
        self.routers = routers
        self.subnets = subnets
        self.ports = ports
        self.core = routers.core

    def _check_new_subnet(self, conn: Connection, router: Row[Any], subnet_id: str,
                          cidr: str) -> None:
        """No second port on a subnet, and no overlap with the router's other subnets or
        its gateway's."""
        mine = self.routers.interface_subnets(conn, router.id)
        if router.gw_network_id:
            mine += [(s, c) for s, c in conn.execute(select(SUBNETS.c.id, SUBNETS.c.cidr).where(
                SUBNETS.c.network_id == router.gw_network_id))]
        new = netaddr.IPNetwork(cidr)
        for other_id, other_cidr in mine:
            if other_id == subnet_id:
                raise _bad(f"Router already has a port on subnet {subnet_id}")
            other = netaddr.IPNetwork(other_cidr)
            if other.version == new.version and (new in other or other in new):
                raise _bad(f"Cidr {cidr} of subnet {subnet_id} overlaps with cidr "
                           f"{other_cidr} of subnet {other_id}")

    def add_router_interface(self, ctx: Context, router_id: str, body: Any) -> dict[str, Any]:
        """Attach a subnet (a new port with its gateway IP) or a port to a router."""
        subnet_id, port_id = parse_interface_body(body, adding=True)

        def txn(conn: Connection) -> dict[str, Any]:
            router = self.routers.fetch(conn, ctx, router_id)
            self.core.policy.enforce(ctx, "add_router_interface", router_target(router))
            if port_id is not None:
                info = self._add_port(conn, ctx, router, port_id)
            else:
                assert subnet_id is not None
                info = self._add_subnet(conn, ctx, router, subnet_id)
            record(conn, router.id, "interface", info["port_id"])
            bump_revision(conn, ROUTERS, router.id, utcnow())  # as Neutron's RouterPort does
            return info

        info = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Router %s: interface %s on subnet(s) %s", router_id, info["port_id"],
                 info["subnet_ids"])
        return info

    def _add_subnet(self, conn: Connection, ctx: Context, router: Row[Any],
                    subnet_id: str) -> dict[str, Any]:
        subnet, network = self.subnets.fetch(conn, ctx, subnet_id)
        if not ctx.is_admin and subnet.project_id != router.project_id \
                and network.project_id != (ctx.project_id or ""):
            raise _bad(f"Cannot add interface to router because subnet {subnet_id} is not "
                       "owned by project making the request")
        if subnet.gateway_ip is None:
            raise _bad("Subnet for router interface must have a gateway IP")
        if subnet.ip_version == 6 and subnet.ipv6_ra_mode is None \
                and subnet.ipv6_address_mode is not None:
            raise _bad(f"IPv6 subnet {subnet_id} configured to receive RAs from an external "
                       "router cannot be added to Neutron Router.")
        self._check_new_subnet(conn, router, subnet_id, subnet.cidr)
        port_body = parse_item(PORT, {
            "network_id": subnet.network_id, "device_owner": interface_owner(router),
            "device_id": router.id, "project_id": router.project_id,
            "fixed_ips": [{"subnet_id": subnet_id, "ip_address": subnet.gateway_ip}],
            "binding:host_id": port_host(conn, router)}, create=True)
        port = self.routers.create_port(conn, Context.admin(), port_body, utcnow())
        return interface_info(router, port["id"], subnet.network_id, [subnet_id], True)

    def _add_port(self, conn: Connection, ctx: Context, router: Row[Any],
                  port_id: str) -> dict[str, Any]:
        port, network = self.ports.fetch(conn, ctx, port_id)
        if port.device_id:
            raise exc.PortInUse(port_id=port_id, net_id=port.network_id,
                                device_id=port.device_id)
        fixed = conn.execute(select(ALLOCS.c.subnet_id, ALLOCS.c.ip_address,
                                    SUBNETS.c.cidr, SUBNETS.c.ip_version,
                                    SUBNETS.c.allocation_pools, SUBNETS.c.project_id)
                             .join(SUBNETS, SUBNETS.c.id == ALLOCS.c.subnet_id)
                             .where(ALLOCS.c.port_id == port_id)).all()
        if not fixed:
            raise _bad("Router port must have at least one fixed IP")
        if sum(1 for f in fixed if f.ip_version == 4) > 1:
            raise _bad("Cannot have multiple IPv4 subnets on router port")
        for f in fixed:
            owned = f.project_id == (ctx.project_id or "")
            if not ctx.is_admin and not owned and not _in_pools(f.ip_address,
                                                                f.allocation_pools):
                raise _bad(f"Cannot add interface to router because specified port {port_id} "
                           f"has an IP address out of the allocation pool of subnet "
                           f"{f.subnet_id}, which is not owned by the project making the "
                           "request")
            self._check_new_subnet(conn, router, f.subnet_id, f.cidr)
        host = port_host(conn, router)
        vif = ("bridge", {"connectivity": "l2", "port_filter": False}) if host else \
            ("unbound", {})
        bump_revision(conn, PORTS, port_id, utcnow(), {
            "device_id": router.id, "device_owner": interface_owner(router),
            "binding_host_id": host,
            "binding_vif_type": vif[0], "binding_vif_details": vif[1]})
        changes.record(conn, "port", port_id, changes.network(port.network_id),
                       hosts=[port.binding_host_id, host])
        changes.record_port_groups(conn, port_id, port_groups(conn, [port_id]).get(port_id, []),
                                   psec.hosts_of(port.binding_host_id, host))
        del network
        return interface_info(router, port_id, port.network_id, [f.subnet_id for f in fixed],
                              True)

    def remove_router_interface(self, ctx: Context, router_id: str,
                                body: Any) -> dict[str, Any]:
        """Detach a port (by id) or the router's port on a subnet; the port is deleted."""
        subnet_id, port_id = parse_interface_body(body, adding=False)

        def txn(conn: Connection) -> dict[str, Any]:
            router = self.routers.fetch(conn, ctx, router_id)
            self.core.policy.enforce(ctx, "remove_router_interface", router_target(router))
            port = self._interface_port(conn, router, subnet_id, port_id)
            subnets = conn.execute(select(ALLOCS.c.subnet_id, SUBNETS.c.cidr).join(
                SUBNETS, SUBNETS.c.id == ALLOCS.c.subnet_id).where(
                ALLOCS.c.port_id == port.id)).all()
            for sid, cidr in subnets:
                self._check_unused(conn, router, sid, cidr)
            groups = port_groups(conn, [port.id]).get(port.id, [])
            conn.execute(delete(ALLOCS).where(ALLOCS.c.port_id == port.id))
            conn.execute(delete(SG_PORT_BINDINGS).where(SG_PORT_BINDINGS.c.port_id == port.id))
            conn.execute(delete(PORTS).where(PORTS.c.id == port.id))
            delete_tags(conn, [port.id])
            changes.record(conn, "port", port.id, changes.network(port.network_id),
                           hosts=[port.binding_host_id])
            changes.record_port_groups(conn, port.id, groups,
                                       psec.hosts_of(port.binding_host_id))
            record(conn, router.id, "interface", port.id)
            bump_revision(conn, ROUTERS, router.id, utcnow())
            return interface_info(router, port.id, port.network_id,
                                  [s for s, _c in subnets], False)

        info = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Router %s: interface %s removed", router_id, info["port_id"])
        return info

    def _interface_port(self, conn: Connection, router: Row[Any], subnet_id: str | None,
                        port_id: str | None) -> Row[Any]:
        mine = (PORTS.c.device_id == router.id) & PORTS.c.device_owner.in_(INTERFACE_OWNERS)
        if port_id is not None:
            port = conn.execute(select(PORTS).where(PORTS.c.id == port_id, mine)).first()
            if port is None:
                raise exc.RouterInterfaceNotFound(router_id=router.id, port_id=port_id)
            if subnet_id is not None:
                on = conn.execute(select(ALLOCS.c.subnet_id).where(
                    ALLOCS.c.port_id == port_id, ALLOCS.c.subnet_id == subnet_id)).first()
                if on is None:
                    raise exc.SubnetMismatchForPort(port_id=port_id, subnet_id=subnet_id)
            return port
        port = conn.execute(select(PORTS).join(ALLOCS, ALLOCS.c.port_id == PORTS.c.id).where(
            mine, ALLOCS.c.subnet_id == subnet_id)).first()
        if port is None:
            raise exc.RouterInterfaceNotFoundForSubnet(router_id=router.id,
                                                       subnet_id=subnet_id)
        return port

    @staticmethod
    def _check_unused(conn: Connection, router: Row[Any], subnet_id: str, cidr: str) -> None:
        """No floating IP through this router to a fixed IP on the subnet, and no extra
        route via a next hop on it."""
        net = netaddr.IPNetwork(cidr)
        fixed = conn.execute(select(FLOATINGIPS.c.fixed_ip_address).where(
            FLOATINGIPS.c.router_id == router.id,
            FLOATINGIPS.c.fixed_ip_address.is_not(None))).scalars()
        if any(netaddr.IPAddress(ip) in net for ip in fixed):
            raise exc.RouterInterfaceInUseByFloatingIP(router_id=router.id, subnet_id=subnet_id)
        if any(netaddr.IPAddress(r["nexthop"]) in net for r in router.routes or []):
            raise exc.RouterInterfaceInUseByRoute(router_id=router.id, subnet_id=subnet_id)


def _in_pools(address: str, pools: list[dict[str, str]]) -> bool:
    ip = netaddr.IPAddress(address)
    return any(netaddr.IPAddress(p["start"]) <= ip <= netaddr.IPAddress(p["end"])
               for p in pools)
