"""Routers: create, read, update, delete, their external gateway and extra routes.

A router's interfaces and its gateway are ports whose `device_id` is the router and whose
`device_owner` says what they are (Neutron's values); the gateway port is also named by the
router row. Ports the router owns are bound to the host of the L3 agent hosting it, so
that this host's L2 agent plugs them, as it does a VM's. Interfaces are in
`router_interfaces.py`. Every change a router's agent must see is logged in the router's
scope, for the hosting agent's host.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
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
    NETWORKS,
    PORTS,
    ROUTERS,
    SUBNET_CREATION_ORDER,
    SUBNETS,
)
from neutrino.schema.policy import Context
from neutrino.schema.request import parse_item
from neutrino.schema.resources import PORT, ROUTER
from neutrino.services import changes, ipam, network_access
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
from neutrino.services.networks import NetworkService

LOG = logging.getLogger(__name__)
ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"
REPLICATED_INTERFACE = "network:ha_router_replicated_interface"
INTERFACE_OWNERS = (ROUTER_INTERFACE, REPLICATED_INTERFACE,
                    "network:router_interface_distributed")
L3_OWNED = (*INTERFACE_OWNERS, ROUTER_GATEWAY, FLOATINGIP_OWNER)
GATEWAY_KEYS = ("network_id", "enable_snat", "external_fixed_ips")


def router_scope(router_id: str) -> changes.Scope:
    """The change-log scope of a router."""
    return ("router", router_id)


def router_target(row: Row[Any] | Mapping[str, Any]) -> dict[str, Any]:
    """The policy target of a router row."""
    m = row._mapping if isinstance(row, Row) else row
    return {"project_id": m["project_id"], "tenant_id": m["project_id"]}


def hosts_of(conn: Connection, router_id: str) -> list[str]:
    """Hosts of the L3 agents hosting a router."""
    return list(conn.execute(select(AGENTS.c.host).join(
        L3_BINDINGS, L3_BINDINGS.c.agent_id == AGENTS.c.id).where(
        L3_BINDINGS.c.router_id == router_id).order_by(AGENTS.c.host)).scalars())


def active_host(conn: Connection, router_id: str) -> str | None:
    """A host whose L3 agent reports the (HA) router active; None when none does."""
    found = conn.execute(select(AGENTS.c.host).join(
        L3_BINDINGS, L3_BINDINGS.c.agent_id == AGENTS.c.id).where(
        L3_BINDINGS.c.router_id == router_id, L3_BINDINGS.c.ha_state == "active")
        .order_by(AGENTS.c.host).limit(1)).scalar()
    return str(found) if found is not None else None


def port_host(conn: Connection, router: Row[Any]) -> str:
    """Where a router's interface and gateway ports are bound: its agent's host; for an HA
    router, the host serving it (active), none until one reports so."""
    if router.ha:
        return active_host(conn, router.id) or ""
    hosts = hosts_of(conn, router.id)
    return hosts[0] if hosts else ""


def interface_owner(router: Row[Any]) -> str:
    """The device_owner of a router's interfaces (Neutron's, legacy or HA)."""
    return REPLICATED_INTERFACE if router.ha else ROUTER_INTERFACE


def record(conn: Connection, router_id: str, kind: str = "router",
           object_id: str | None = None, hosts: list[str] | None = None) -> None:
    """Log a change of a router for its hosting agents."""
    hosts = hosts if hosts is not None else hosts_of(conn, router_id)
    changes.record(conn, kind, object_id or router_id, router_scope(router_id),
                   hosts=hosts or [None])


def bind_ports(conn: Connection, router_id: str, host: str) -> None:
    """Bind the router's ports to a host (its L2 agent plugs them there)."""
    rows = conn.execute(select(PORTS.c.id, PORTS.c.network_id, PORTS.c.binding_host_id).where(
        PORTS.c.device_id == router_id, PORTS.c.device_owner.in_(
            (*INTERFACE_OWNERS, ROUTER_GATEWAY)))).all()
    for port_id, network_id, old_host in rows:
        if old_host == host:
            continue
        vif = ("bridge", {"connectivity": "l2", "port_filter": False}) if host \
            else ("unbound", {})
        bump_revision(conn, PORTS, port_id, utcnow(), {
            "binding_host_id": host, "binding_vif_type": vif[0], "binding_vif_details": vif[1],
            "status": "DOWN", "l2_up": False})
        changes.record(conn, "port", port_id, changes.network(network_id),
                       hosts=[old_host, host])


class RouterService(ResourceServiceBase):
    """The rules of routers."""

    table = ROUTERS
    resource = ROUTER
    quota_resource = "router"

    def __init__(self, core: Core, networks: NetworkService,
                 create_port: Callable[[Connection, Context, dict[str, Any], str],
                                       dict[str, Any]]) -> None:
        super().__init__(core)
        self.networks = networks
        self.create_port = create_port
        # Set by the L3 scheduler: schedule a router within a transaction, or take it off
        # every agent.
        self.schedule: Callable[[Connection, str], None] = lambda conn, router_id: None
        self.unschedule: Callable[[Connection, str], None] = lambda conn, router_id: None
        self.ha: Any = None  # l3_ha.HaRouters, set when the services are wired

    # -- reading --------------------------------------------------------------------------

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: its project's routers."""
        if ctx.is_admin:
            return []
        return [ROUTERS.c.project_id == (ctx.project_id or "")]

    def fetch(self, conn: Connection, ctx: Context, router_id: str) -> Row[Any]:
        """The router row, or RouterNotFound if absent or hidden from `ctx`."""
        row = conn.execute(select(ROUTERS).where(ROUTERS.c.id == router_id)).first()
        if row is None or not self.core.policy.check(ctx, "get_router", router_target(row)):
            raise exc.RouterNotFound(router_id=router_id)
        return row

    def check_access(self, conn: Connection, ctx: Context, router_id: str,
                     action: str) -> None:
        """Raise unless `ctx` may do `action` (get, update, delete) on the router."""
        self.core.policy.enforce(ctx, f"{action}_router",
                                 router_target(self.fetch(conn, ctx, router_id)))

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        tags = load_tags(conn, page)
        gateways: dict[str, list[dict[str, str]]] = defaultdict(list)
        gw_ports = [r["gw_port_id"] for r in page.rows if r["gw_port_id"]]
        if gw_ports:
            for port_id, subnet_id, address, key in conn.execute(
                    select(ALLOCS.c.port_id, ALLOCS.c.subnet_id, ALLOCS.c.ip_address,
                           ALLOCS.c.ip_key).where(ALLOCS.c.port_id.in_(gw_ports))
                    .order_by(ALLOCS.c.ip_key)):
                del key
                gateways[port_id].append({"subnet_id": subnet_id, "ip_address": address})
        zones: dict[str, set[str]] = defaultdict(set)
        for router_id, zone in conn.execute(
                select(L3_BINDINGS.c.router_id, AGENTS.c.availability_zone)
                .join(AGENTS, AGENTS.c.id == L3_BINDINGS.c.agent_id)
                .where(page.holds(L3_BINDINGS.c.router_id))):
            if zone:
                zones[router_id].add(zone)
        out = []
        for r in page.rows:
            info = None
            if r["gw_port_id"]:
                info = {"network_id": r["gw_network_id"], "enable_snat": r["enable_snat"],
                        "external_fixed_ips": gateways.get(r["gw_port_id"], [])}
            out.append(ROUTER.render(r, tags=tags.get(r["id"], []), external_gateway_info=info,
                                     availability_zones=sorted(zones.get(r["id"], ()))))
        return out

    # -- policy ---------------------------------------------------------------------------

    def _enforce(self, ctx: Context, action: str, body: dict[str, Any],
                 target: dict[str, Any]) -> None:
        """The action's rule, and the rules of the attributes the body sets (the gateway's
        sub-keys each have theirs: a member may name the network, only an admin SNAT or
        addresses)."""
        self.core.policy.enforce(ctx, f"{action}_router", target)
        for name in ("distributed", "ha"):
            if body.get(name) is not None:
                self.core.policy.enforce(ctx, f"{action}_router:{name}", target)
        if body.get("distributed"):
            raise exc.BadRequest(resource="router", msg=(
                "Distributed routers are not supported by this server yet: only "
                "'distributed': false is accepted"))
        info = body.get("external_gateway_info")
        if info:
            self.core.policy.enforce(ctx, f"{action}_router:external_gateway_info", target)
            for key in GATEWAY_KEYS:
                if key in info:
                    self.core.policy.enforce(
                        ctx, f"{action}_router:external_gateway_info:{key}", target)

    # -- writes ---------------------------------------------------------------------------

    def _describe(self, item: dict[str, Any]) -> str:
        gateway = item["external_gateway_info"]
        return f"({item['name'] or '-'}, gateway {gateway['network_id'] if gateway else 'none'})"

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        project = self.core.project_for(ctx, body)
        target = {"project_id": project, "tenant_id": project}
        self._enforce(ctx, "create", body, target)
        router_id = new_id()
        conn.execute(insert(ROUTERS).values(
            id=router_id, project_id=project, name=body["name"],
            description=body["description"], created_at=now, updated_at=now,
            revision_number=0, admin_state_up=body["admin_state_up"], status="ACTIVE",
            gw_port_id=None, gw_network_id=None, enable_snat=True, routes=[],
            distributed=False, ha=False,
            availability_zone_hints=body["availability_zone_hints"]))
        insert_tags(conn, router_id, body.get("tags", []))
        ha = body.get("ha")
        if ha if ha is not None else self.core.conf.l3_ha:
            self.ha.make_ha(conn, self.fetch(conn, Context.admin(), router_id))
        self.schedule(conn, router_id)
        if body.get("external_gateway_info"):
            self.set_gateway(conn, self.fetch(conn, Context.admin(), router_id),
                             body["external_gateway_info"])
        record(conn, router_id)
        return self._render_one(conn, self.fetch(conn, Context.admin(), router_id))

    def update(self, ctx: Context, router_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a router: name, description, state, gateway, extra routes."""

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, router_id)
            self._enforce(ctx, "update", body, router_target(row))
            values: dict[str, Any] = {k: body[k] for k in ("name", "description",
                                                           "admin_state_up") if k in body}
            if "routes" in body:
                self.check_routes(conn, row, body["routes"])
                values["routes"] = body["routes"]
            if body.get("ha") is not None and body["ha"] != row.ha:
                self._migrate_ha(conn, row, body["ha"])
            bump_revision(conn, ROUTERS, router_id, utcnow(), values)
            if "external_gateway_info" in body:
                self.set_gateway(conn, self.fetch(conn, ctx, router_id),
                                 body["external_gateway_info"])
            if "tags" in body:
                replace_tags(conn, router_id, body["tags"])
            record(conn, router_id)
            return self._render_one(conn, self.fetch(conn, ctx, router_id))

        router = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Updated router %s: %s", router_id, sorted(body))
        return router

    def delete(self, ctx: Context, router_id: str) -> None:
        """Delete a router without interfaces (its gateway goes with it)."""

        def txn(conn: Connection) -> None:
            row = self.fetch(conn, ctx, router_id)
            self.core.policy.enforce(ctx, "delete_router", router_target(row))
            attached = list(conn.execute(select(PORTS.c.id).where(
                PORTS.c.device_id == router_id, PORTS.c.device_owner.in_(INTERFACE_OWNERS))
                .order_by(PORTS.c.id)).scalars())
            if attached:
                raise exc.RouterInUse(router_id=router_id,
                                      reason=f"has ports still attached: {', '.join(attached)}")
            hosts = hosts_of(conn, router_id)
            self.set_gateway(conn, row, None)
            conn.execute(delete(L3_BINDINGS).where(L3_BINDINGS.c.router_id == router_id))
            if row.ha:
                self.ha.make_legacy(conn, row)  # its VRID, HA ports and maybe HA network
            conn.execute(delete(ROUTERS).where(ROUTERS.c.id == router_id))
            delete_tags(conn, [router_id])
            record(conn, router_id, hosts=hosts)

        self.core.db.write(txn)
        self.core.notify()
        LOG.info("Deleted router %s", router_id)

    def _migrate_ha(self, conn: Connection, row: Row[Any], ha: bool) -> None:
        """Make a router HA or legacy: only while it is down (it was, before this request:
        Neutron's rule), then it leaves every agent and is scheduled again."""
        if row.admin_state_up:
            raise exc.BadRequest(resource="router", msg=(
                "Cannot change HA attribute of active routers. Please set router "
                "admin_state_up to False prior to upgrade"))
        self.unschedule(conn, row.id)
        if ha:
            self.ha.make_ha(conn, row)
        else:
            self.ha.make_legacy(conn, row)
        self.schedule(conn, row.id)
        LOG.info("Router %s is now %s", row.id, "HA" if ha else "legacy")

    # -- the gateway ----------------------------------------------------------------------

    def set_gateway(self, conn: Connection, row: Row[Any], info: dict[str, Any] | None) -> None:
        """Set, change or clear (None, {}) a router's external gateway."""
        router_id = row.id
        wanted = (info or {}).get("network_id")
        if row.gw_port_id and (wanted != row.gw_network_id or "external_fixed_ips" in
                               (info or {})):
            self._clear_gateway(conn, row, keep_fips=wanted == row.gw_network_id)
        elif row.gw_port_id and wanted == row.gw_network_id:
            if "enable_snat" in (info or {}):
                bump_revision(conn, ROUTERS, router_id, utcnow(),
                              {"enable_snat": info["enable_snat"]})  # type: ignore[index]
            return
        if not wanted:
            return
        network = self.networks.fetch(conn, Context.admin(), wanted)
        if network.external and not network_access.is_external_for(conn, network,
                                                                   row.project_id):
            raise exc.NetworkNotFound(net_id=wanted)  # external for other projects only
        if not network.external:
            if network.project_id != row.project_id and not network_access.granted(
                    conn, network.id, row.project_id):
                raise exc.NetworkNotFound(net_id=wanted)  # not the project's to see
            raise exc.BadRequest(resource="router",
                                 msg=f"Network {wanted} is not an external network")
        fixed = self._gateway_ips(conn, network, (info or {}).get("external_fixed_ips"))
        self._check_gateway_overlap(conn, router_id, wanted)
        body = parse_item(PORT, {
            "network_id": wanted, "device_owner": ROUTER_GATEWAY, "device_id": router_id,
            "project_id": "", "fixed_ips": fixed,
            "binding:host_id": port_host(conn, row)}, create=True)
        port = self.create_port(conn, Context.admin(), body, utcnow())
        bump_revision(conn, ROUTERS, router_id, utcnow(), {
            "gw_port_id": port["id"], "gw_network_id": wanted,
            "enable_snat": (info or {}).get("enable_snat",
                                            self.core.conf.enable_snat_by_default)})
        LOG.info("Router %s has its gateway on network %s: %s", router_id, wanted,
                 [ip["ip_address"] for ip in port["fixed_ips"]])

    def _gateway_ips(self, conn: Connection, network: Row[Any],
                     requested: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        """The gateway port's addresses: those asked for, else the lowest free one of the
        first IPv4 subnet that has one (as the seeds expect: "usually the lowest"); none
        on a network without IPv4 subnets."""
        subnets = [dict(s._mapping) for s in conn.execute(select(SUBNETS).where(
            SUBNETS.c.network_id == network.id).order_by(*SUBNET_CREATION_ORDER))]
        if requested:
            gateways = {s["gateway_ip"] for s in subnets}
            for ip in requested:
                if ip.get("ip_address") in gateways:
                    raise exc.BadRequest(resource="router", msg=(
                        f"External IP {ip['ip_address']} is the same as the gateway IP"))
            return requested
        ipv4 = [s for s in subnets if s["ip_version"] == 4]
        if not ipv4:
            return []  # as Neutron: a gateway port without addresses, until a subnet comes
        for subnet in ipv4:
            address = ipam.lowest_free(conn, subnet)
            if address is not None:
                return [{"subnet_id": subnet["id"], "ip_address": address}]
        raise exc.IpAddressGenerationFailure(net_id=network.id)

    def _check_gateway_overlap(self, conn: Connection, router_id: str, network_id: str) -> None:
        """The external network's subnets may not overlap the router's own subnets."""
        external = conn.execute(select(SUBNETS.c.id, SUBNETS.c.cidr).where(
            SUBNETS.c.network_id == network_id)).all()
        for subnet_id, cidr in self.interface_subnets(conn, router_id):
            for ext_id, ext_cidr in external:
                a, b = netaddr.IPNetwork(cidr), netaddr.IPNetwork(ext_cidr)
                if a.version == b.version and (a in b or b in a):
                    raise exc.BadRequest(resource="router", msg=(
                        f"Cidr {ext_cidr} of subnet {ext_id} overlaps with cidr {cidr} of "
                        f"subnet {subnet_id}"))

    def _clear_gateway(self, conn: Connection, row: Row[Any], keep_fips: bool = False) -> None:
        if not keep_fips:
            used = conn.execute(select(FLOATINGIPS.c.id).where(
                FLOATINGIPS.c.router_id == row.id).limit(1)).first()
            if used is not None:
                raise exc.RouterExternalGatewayInUseByFloatingIp(router_id=row.id,
                                                                 net_id=row.gw_network_id)
        port = conn.execute(select(PORTS.c.id, PORTS.c.binding_host_id).where(
            PORTS.c.id == row.gw_port_id)).first()
        bump_revision(conn, ROUTERS, row.id, utcnow(), {"gw_port_id": None,
                                                        "gw_network_id": None})
        if port is not None:
            conn.execute(delete(ALLOCS).where(ALLOCS.c.port_id == port.id))
            conn.execute(delete(PORTS).where(PORTS.c.id == port.id))
            changes.record(conn, "port", port.id, changes.network(row.gw_network_id),
                           hosts=[port.binding_host_id])
        LOG.info("Router %s lost its gateway on network %s", row.id, row.gw_network_id)

    # -- extra routes ---------------------------------------------------------------------

    def interface_subnets(self, conn: Connection, router_id: str) -> list[tuple[str, str]]:
        """(subnet id, CIDR) of the router's interfaces."""
        return [(s, c) for s, c in conn.execute(
            select(SUBNETS.c.id, SUBNETS.c.cidr).join(ALLOCS, ALLOCS.c.subnet_id == SUBNETS.c.id)
            .join(PORTS, PORTS.c.id == ALLOCS.c.port_id).where(
                PORTS.c.device_id == router_id, PORTS.c.device_owner.in_(INTERFACE_OWNERS)))]

    def check_routes(self, conn: Connection, row: Row[Any],
                     routes: list[dict[str, str]]) -> None:
        """Every next hop on a subnet the router is on, and none of the router's own IPs."""
        if len(routes) > self.core.conf.max_routes:
            raise exc.OverQuota(overs=["router_route"])
        connected = [netaddr.IPNetwork(c) for _s, c in self.interface_subnets(conn, row.id)]
        own = set(conn.execute(select(ALLOCS.c.ip_address).join(
            PORTS, PORTS.c.id == ALLOCS.c.port_id).where(PORTS.c.device_id == row.id))
            .scalars())
        if row.gw_port_id:
            connected += [netaddr.IPNetwork(c) for c in conn.execute(
                select(SUBNETS.c.cidr).where(SUBNETS.c.network_id == row.gw_network_id))
                .scalars()]
        for route in routes:
            nexthop = netaddr.IPAddress(route["nexthop"])
            if route["nexthop"] in own:
                raise exc.InvalidRoutes(routes=routes, reason="the nexthop is used by router")
            if not any(nexthop in net for net in connected):
                raise exc.InvalidRoutes(routes=routes,
                                        reason="the nexthop is not connected with router")

    def change_routes(self, ctx: Context, router_id: str, body: Any,
                      adding: bool) -> dict[str, Any]:
        """`add_extraroutes` / `remove_extraroutes`: merge into or take out of the routes."""
        item = body.get("router") if isinstance(body, dict) else None
        if not isinstance(item, dict) or set(item) != {"routes"}:
            raise exc.BadRequest(resource="router",
                                 msg="Body must be {'router': {'routes': [...]}}")
        from neutrino.schema import validators as v

        try:
            given = v.host_routes()(item["routes"])
        except v.Invalid as err:
            raise exc.InvalidInput(error_message=f"Invalid input for routes. Reason: {err}") \
                from None
        action = "add_extraroutes" if adding else "remove_extraroutes"

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, router_id)
            self.core.policy.enforce(ctx, action, router_target(row))
            current = list(row.routes or [])
            if adding:
                merged = current + [r for r in given if r not in current]
            else:
                merged = [r for r in current if r not in given]
            if adding:
                self.check_routes(conn, row, merged)
            bump_revision(conn, ROUTERS, router_id, utcnow(), {"routes": merged})
            record(conn, router_id)
            return {"router": self._render_one(conn, self.fetch(conn, ctx, router_id))}

        result = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Router %s: routes %s %s", router_id, "added" if adding else "removed", given)
        return result

    def add_extraroutes(self, ctx: Context, router_id: str, body: Any) -> dict[str, Any]:
        """PUT .../add_extraroutes."""
        return self.change_routes(ctx, router_id, body, adding=True)

    def remove_extraroutes(self, ctx: Context, router_id: str, body: Any) -> dict[str, Any]:
        """PUT .../remove_extraroutes."""
        return self.change_routes(ctx, router_id, body, adding=False)


def update_router_status(conn: Connection, router_id: str, status: str) -> None:
    """Set a router's status (ERROR when it cannot be scheduled, ACTIVE otherwise)."""
    conn.execute(update(ROUTERS).where(ROUTERS.c.id == router_id, ROUTERS.c.status != status)
                 .values(status=status))


def network_of(conn: Connection, network_id: str) -> Row[Any]:
    """A network row (admin view)."""
    return conn.execute(select(NETWORKS).where(NETWORKS.c.id == network_id)).one()
