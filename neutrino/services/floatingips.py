"""Floating IPs: an address on an external network (its own `network:floatingip` port) and
the fixed IP of a port it forwards to, through the router that joins the port's subnet to
that network.

A floating IP is DOWN until the hosting L3 agent reports it in the kernel (ACTIVE), and DOWN
again once disassociated. Every change is logged in the router's scope, so its agent adds or
removes the address, the NAT elements and the flows.
"""

from __future__ import annotations

import logging
from typing import Any

import netaddr
from sqlalchemy import ColumnElement, Connection, Row, delete, insert, select, update

from neutrino import exceptions as exc
from neutrino.db.listing import Page
from neutrino.db.models import (
    AGENTS,
    ALLOCS,
    FLOATINGIPS,
    L3_BINDINGS,
    PORTS,
    ROUTERS,
    SUBNET_CREATION_ORDER,
    SUBNETS,
)
from neutrino.schema.policy import Context
from neutrino.schema.request import parse_item
from neutrino.schema.resources import FLOATINGIP, PORT
from neutrino.services import ipam, network_access
from neutrino.services.common import (
    Core,
    ResourceServiceBase,
    bump_revision,
    delete_tags,
    insert_tags,
    load_tags,
    new_id,
    replace_tags,
    utcnow,
)
from neutrino.services.networks import DHCP_OWNER, NetworkService
from neutrino.services.routers import FLOATINGIP_OWNER, INTERFACE_OWNERS, record

LOG = logging.getLogger(__name__)
FIP_STATES = ("ACTIVE", "DOWN", "ERROR")


def _bad(msg: str) -> exc.BadRequest:
    return exc.BadRequest(resource="floatingip", msg=msg)


def fip_target(project_id: str) -> dict[str, Any]:
    """The policy target of a floating IP."""
    return {"project_id": project_id, "tenant_id": project_id}


class FloatingIPService(ResourceServiceBase):
    """The rules of floating IPs."""

    table = FLOATINGIPS
    resource = FLOATINGIP
    quota_resource = "floatingip"

    def __init__(self, core: Core, networks: NetworkService, ports: Any) -> None:
        super().__init__(core)
        self.networks = networks
        self.ports = ports

    # -- reading --------------------------------------------------------------------------

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: its project's floating IPs."""
        if ctx.is_admin:
            return []
        return [FLOATINGIPS.c.project_id == (ctx.project_id or "")]

    def fetch(self, conn: Connection, ctx: Context, fip_id: str) -> Row[Any]:
        """The floating IP row, or FloatingIPNotFound if absent or hidden from `ctx`."""
        row = conn.execute(select(FLOATINGIPS).where(FLOATINGIPS.c.id == fip_id)).first()
        if row is None or not self.core.policy.check(ctx, "get_floatingip",
                                                     fip_target(row.project_id)):
            raise exc.FloatingIPNotFound(floatingip_id=fip_id)
        return row

    def check_access(self, conn: Connection, ctx: Context, fip_id: str, action: str) -> None:
        """Raise unless `ctx` may do `action` on the floating IP."""
        row = self.fetch(conn, ctx, fip_id)
        self.core.policy.enforce(ctx, f"{action}_floatingip", fip_target(row.project_id))

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        tags = load_tags(conn, page)
        ports = [r["fixed_port_id"] for r in page.rows if r["fixed_port_id"]]
        details: dict[str, dict[str, Any]] = {}
        if ports:
            for p in conn.execute(select(PORTS).where(PORTS.c.id.in_(ports))):
                details[p.id] = {"name": p.name, "network_id": p.network_id,
                                 "mac_address": p.mac_address,
                                 "admin_state_up": p.admin_state_up, "status": p.status,
                                 "device_id": p.device_id, "device_owner": p.device_owner}
        return [FLOATINGIP.render(r, tags=tags.get(r["id"], []),
                                  port_details=details.get(r["fixed_port_id"] or ""))
                for r in page.rows]

    # -- writes ---------------------------------------------------------------------------

    def _describe(self, item: dict[str, Any]) -> str:
        return (f"({item['floating_ip_address']} on network {item['floating_network_id']}"
                f"{', to ' + item['fixed_ip_address'] if item['fixed_ip_address'] else ''})")

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        project = self.core.project_for(ctx, body)
        self.core.policy.enforce(ctx, "create_floatingip", fip_target(project))
        if body.get("floating_ip_address") is not None:
            self.core.policy.enforce(ctx, "create_floatingip:floating_ip_address",
                                     fip_target(project))
        network_id = body["floating_network_id"]
        network = self.networks.fetch(conn, ctx, network_id)
        if not network_access.is_external_for(conn, network, project):
            raise _bad(f"Network {network_id} is not a valid external network")
        fip_id = new_id()
        port = self.ports.insert(conn, Context.admin(), parse_item(PORT, {
            "network_id": network_id, "device_owner": FLOATINGIP_OWNER, "device_id": fip_id,
            "project_id": "", "fixed_ips": self._address(conn, network_id, body)},
            create=True), now)
        address = next(ip["ip_address"] for ip in port["fixed_ips"]
                       if netaddr.IPAddress(ip["ip_address"]).version == 4)
        conn.execute(insert(FLOATINGIPS).values(
            id=fip_id, project_id=project, description=body["description"], created_at=now,
            updated_at=now, revision_number=0, floating_network_id=network_id,
            floating_port_id=port["id"], floating_ip_address=address, fixed_port_id=None,
            fixed_ip_address=None, router_id=None, status="DOWN"))
        insert_tags(conn, fip_id, body.get("tags", []))
        if body.get("port_id") is not None:
            self._associate(conn, ctx, self.fetch(conn, Context.admin(), fip_id),
                            body["port_id"], body.get("fixed_ip_address"))
        elif body.get("fixed_ip_address") is not None:
            raise _bad("fixed_ip_address cannot be specified without a port_id")
        return self._render_one(conn, self.fetch(conn, Context.admin(), fip_id))

    @staticmethod
    def _address(conn: Connection, network_id: str,
                 body: dict[str, Any]) -> list[dict[str, Any]]:
        """The floating IP's port address: the one asked for, or the lowest free one of the
        network's (or the named subnet's) first IPv4 subnet with room."""
        subnets = [dict(s._mapping) for s in conn.execute(select(SUBNETS).where(
            SUBNETS.c.network_id == network_id, SUBNETS.c.ip_version == 4)
            .order_by(*SUBNET_CREATION_ORDER))]
        if not subnets:
            raise _bad(f"Network {network_id} does not contain any IPv4 subnet")
        if body.get("subnet_id") is not None:
            subnets = [s for s in subnets if s["id"] == body["subnet_id"]]
            if not subnets:
                raise exc.SubnetNotFound(subnet_id=body["subnet_id"])
        requested = body.get("floating_ip_address")
        if requested is not None:
            wanted: dict[str, Any] = {"ip_address": requested}
            if body.get("subnet_id") is not None:
                wanted["subnet_id"] = body["subnet_id"]
            return [wanted]
        for subnet in subnets:
            address = ipam.lowest_free(conn, subnet)
            if address is not None:
                return [{"subnet_id": subnet["id"], "ip_address": address}]
        raise exc.ExternalIpAddressExhausted(net_id=network_id)

    def update(self, ctx: Context, fip_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Associate (port_id), disassociate (port_id null), or describe a floating IP.
        An empty body disassociates, as it did before floating IPs had other attributes
        (Neutron keeps that meaning)."""
        if not body:
            body = {"port_id": None}

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, fip_id)
            self.core.policy.enforce(ctx, "update_floatingip", fip_target(row.project_id))
            if "description" in body:
                bump_revision(conn, FLOATINGIPS, fip_id, utcnow(),
                              {"description": body["description"]})
            if "port_id" in body:
                if body["port_id"] is None:
                    if body.get("fixed_ip_address") is not None:
                        raise _bad("fixed_ip_address cannot be specified without a port_id")
                    self._disassociate(conn, row)
                else:
                    self._associate(conn, ctx, row, body["port_id"],
                                    body.get("fixed_ip_address"))
            elif body.get("fixed_ip_address") is not None:
                if row.fixed_port_id is None:
                    raise _bad("fixed_ip_address cannot be specified without a port_id")
                self._associate(conn, ctx, row, row.fixed_port_id, body["fixed_ip_address"])
            if "tags" in body:
                replace_tags(conn, fip_id, body["tags"])
            return self._render_one(conn, self.fetch(conn, ctx, fip_id))

        fip = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Updated floating IP %s (%s): %s", fip_id, fip["floating_ip_address"],
                 {k: body[k] for k in sorted(body)})
        return fip

    def _associate(self, conn: Connection, ctx: Context, row: Row[Any], port_id: str,
                   fixed_ip: str | None) -> None:
        """Point a floating IP at a port's fixed IP, through the router that reaches it."""
        port, _network = self.ports.fetch(conn, ctx, port_id)
        if not ctx.is_admin and port.project_id != row.project_id:
            raise _bad(f"Cannot process floating IP association with Port {port_id}, since "
                       "that port is owned by a different project")
        if port.device_owner == DHCP_OWNER:
            raise _bad("Port %(id)s is unable to be assigned a floating IP")
        fixed = conn.execute(select(ALLOCS.c.subnet_id, ALLOCS.c.ip_address).where(
            ALLOCS.c.port_id == port_id)).all()
        if fixed_ip is not None:
            if netaddr.IPAddress(fixed_ip).version != 4:
                raise _bad(f"Cannot process floating IP association with {fixed_ip}, since "
                           "that is not an IPv4 address")
            chosen = [f for f in fixed if f.ip_address == fixed_ip]
            if not chosen:
                raise _bad(f"Port {port_id} does not have fixed ip {fixed_ip}")
        else:
            chosen = [f for f in fixed if netaddr.IPAddress(f.ip_address).version == 4]
            if not chosen:
                raise _bad(f"Cannot add floating IP to port {port_id} that has no fixed IPv4 "
                           "addresses")
            if len(chosen) > 1:
                raise _bad(f"Port {port_id} has multiple fixed IPv4 addresses.  Must provide "
                           "a specific IPv4 address when assigning a floating IP")
        subnet_id, address = chosen[0].subnet_id, chosen[0].ip_address
        router_id = self._router_for(conn, subnet_id, row.floating_network_id)
        if router_id is None:
            raise exc.ExternalGatewayForFloatingIPNotFound(
                external_network_id=row.floating_network_id, subnet_id=subnet_id,
                port_id=port_id)
        taken = conn.execute(select(FLOATINGIPS.c.id).where(
            FLOATINGIPS.c.floating_network_id == row.floating_network_id,
            FLOATINGIPS.c.fixed_port_id == port_id, FLOATINGIPS.c.fixed_ip_address == address,
            FLOATINGIPS.c.id != row.id)).first()
        if taken is not None:
            raise exc.FloatingIPPortAlreadyAssociated(
                floating_ip_address=row.floating_ip_address, fip_id=row.id, port_id=port_id,
                fixed_ip=address, net_id=row.floating_network_id)
        if (row.fixed_port_id, row.fixed_ip_address, row.router_id) == \
                (port_id, address, router_id):
            return
        if row.router_id and row.router_id != router_id:
            record(conn, row.router_id, "floatingip", row.id)
        values: dict[str, Any] = {"fixed_port_id": port_id, "fixed_ip_address": address,
                                  "router_id": router_id}
        if row.router_id != router_id:  # a new router's agent has not made it yet
            values["status"] = "DOWN"
        bump_revision(conn, FLOATINGIPS, row.id, utcnow(), values)
        record(conn, router_id, "floatingip", row.id)

    @staticmethod
    def _router_for(conn: Connection, subnet_id: str, network_id: str) -> str | None:
        """The router with an interface on the subnet and its gateway on the network; the
        one whose interface is the subnet's gateway first."""
        gateway = conn.execute(select(SUBNETS.c.gateway_ip).where(
            SUBNETS.c.id == subnet_id)).scalar()
        candidates = conn.execute(
            select(ROUTERS.c.id, ALLOCS.c.ip_address)
            .join(PORTS, PORTS.c.device_id == ROUTERS.c.id)
            .join(ALLOCS, ALLOCS.c.port_id == PORTS.c.id)
            .where(ALLOCS.c.subnet_id == subnet_id, PORTS.c.device_owner.in_(INTERFACE_OWNERS),
                   ROUTERS.c.gw_network_id == network_id)
            .order_by(ROUTERS.c.created_at, ROUTERS.c.id)).all()
        for router_id, address in candidates:
            if address == gateway:
                return str(router_id)
        return str(candidates[0][0]) if candidates else None

    @staticmethod
    def _disassociate(conn: Connection, row: Row[Any]) -> None:
        if row.fixed_port_id is None and row.router_id is None:
            return
        bump_revision(conn, FLOATINGIPS, row.id, utcnow(), {
            "fixed_port_id": None, "fixed_ip_address": None, "router_id": None,
            "status": "DOWN"})
        if row.router_id:
            record(conn, row.router_id, "floatingip", row.id)

    def delete(self, ctx: Context, fip_id: str) -> None:
        """Delete a floating IP and its port."""

        def txn(conn: Connection) -> None:
            row = self.fetch(conn, ctx, fip_id)
            self.core.policy.enforce(ctx, "delete_floatingip", fip_target(row.project_id))
            self._disassociate(conn, row)
            conn.execute(delete(FLOATINGIPS).where(FLOATINGIPS.c.id == fip_id))
            conn.execute(delete(ALLOCS).where(ALLOCS.c.port_id == row.floating_port_id))
            conn.execute(delete(PORTS).where(PORTS.c.id == row.floating_port_id))
            delete_tags(conn, [fip_id])

        self.core.db.write(txn)
        self.core.notify()
        LOG.info("Deleted floating IP %s", fip_id)


def disassociate_port(conn: Connection, port_id: str) -> None:
    """A port is going away: its floating IPs stay, pointing nowhere (as Neutron does)."""
    for row in conn.execute(select(FLOATINGIPS).where(
            FLOATINGIPS.c.fixed_port_id == port_id)).all():
        FloatingIPService._disassociate(conn, row)


def report_statuses(conn: Connection, host: str, entries: list[Any]) -> int:
    """Floating IP statuses from an L3 agent: taken only for floating IPs whose router an
    agent on that host hosts; how many changed."""
    wanted: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("status") not in FIP_STATES:
            raise exc.BadRequest(resource="status",
                                 msg="floating IP statuses are {id, status: ACTIVE|DOWN|ERROR}")
        wanted[str(entry["id"])] = str(entry["status"])
    hosted = select(L3_BINDINGS.c.router_id).join(
        AGENTS, AGENTS.c.id == L3_BINDINGS.c.agent_id).where(AGENTS.c.host == host)
    rows = conn.execute(select(FLOATINGIPS.c.id, FLOATINGIPS.c.status).where(
        FLOATINGIPS.c.id.in_(sorted(wanted)), FLOATINGIPS.c.router_id.in_(hosted))).all()
    changed = 0
    for fip_id, status in rows:
        if wanted[fip_id] != status:
            conn.execute(update(FLOATINGIPS).where(FLOATINGIPS.c.id == fip_id).values(
                status=wanted[fip_id], updated_at=utcnow(),
                revision_number=FLOATINGIPS.c.revision_number + 1))
            LOG.info("Floating IP %s is %s (reported by %s)", fip_id, wanted[fip_id], host)
            changed += 1
    return changed
