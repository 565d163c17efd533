"""Subnets: address ranges on networks, with their pools, gateway, DNS and routes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import netaddr
from sqlalchemy import ColumnElement, Connection, Row, delete, insert, or_, select

from neutrino import exceptions as exc
from neutrino.db import listing
from neutrino.db.listing import Page
from neutrino.db.models import ALLOCS, NETWORKS, PORTS, SUBNETS
from neutrino.schema import validators as v
from neutrino.schema.policy import Context
from neutrino.schema.request import Query
from neutrino.schema.resources import SUBNET
from neutrino.services import changes, ipam, network_access
from neutrino.services.common import (
    Core,
    ResourceServiceBase,
    bump_revision,
    delete_tags,
    insert_tags,
    load_tags,
    new_id,
    utcnow,
)
from neutrino.services.networks import DHCP_OWNER, NetworkService, check_mtu_for_subnet
from neutrino.services.routers import INTERFACE_OWNERS
from neutrino.services.subnetpools import SubnetPoolService

LOG = logging.getLogger(__name__)
_last_order = [0]
_order_lock = threading.Lock()


def creation_order() -> int:
    """A subnet's `created_order`: nanoseconds now, and after the last one made here (a bulk
    create's subnets keep the request's order)."""
    with _order_lock:
        _last_order[0] = max(time.time_ns(), _last_order[0] + 1)
        return _last_order[0]


def subnet_target(subnet: Row[Any] | dict[str, Any], network: Row[Any],
                  shared: bool | None = None) -> dict[str, Any]:
    """The policy target of a subnet on `network` (`shared`: whether the network is shared
    with the caller, if it was asked)."""
    m = subnet._mapping if isinstance(subnet, Row) else subnet
    return {"project_id": m["project_id"], "tenant_id": m["project_id"],
            "network:project_id": network.project_id,
            "shared": bool(network.shared) if shared is None else shared}


def render(m: Mapping[str, Any], tags: list[str]) -> dict[str, Any]:
    """A subnet row as the API shows it."""
    return SUBNET.render(m, tags=tags)


def check_shape(conf: Any, values: dict[str, Any], subnet_id: str) -> None:
    """Rules on a subnet's values that need no database: versions, limits, geometry."""
    version = values["ip_version"]
    cidr = values["cidr"]
    if netaddr.IPNetwork(cidr).version != version:
        raise exc.InvalidInput(error_message=f"Invalid input for cidr. Reason: cidr {cidr} "
                                             f"is not an IPv{version} subnet")
    if version == 4 and (values.get("ipv6_ra_mode") or values.get("ipv6_address_mode")):
        raise exc.InvalidInput(error_message="ipv6_ra_mode or ipv6_address_mode cannot be set "
                                             "when ip_version is 4")
    check_ipv6_modes(values)
    check_service_types(values["service_types"])
    if len(values["dns_nameservers"]) > conf.max_dns_nameservers:
        raise exc.DNSNameServersExhausted(subnet_id=subnet_id, quota=conf.max_dns_nameservers)
    if len(values["host_routes"]) > conf.max_subnet_host_routes:
        raise exc.HostRoutesExhausted(subnet_id=subnet_id, quota=conf.max_subnet_host_routes)
    for route in values["host_routes"]:
        for key in ("destination", "nexthop"):
            if netaddr.IPNetwork(route[key]).version != version:
                raise exc.InvalidInput(error_message=f"Invalid input for host_routes. Reason: "
                                                     f"{key} {route[key]} is not IPv{version}")
    ipam.validate_gateway(cidr, values["gateway_ip"])
    ipam.validate_pools(cidr, values["gateway_ip"], values["allocation_pools"])


# The device owner prefixes a subnet's service type may begin with, as neutron-lib checks
# them: it adds "compute:" to its prefix list as a string, letter by letter, so that a
# service type beginning with any letter of "compute:" passes too (neutron-tempest-plugin's
# tests use "test:type_1"); clients rely on what Neutron accepts.
SERVICE_TYPE_PREFIXES = ("network:", "neutron:", *"compute:")


def check_service_types(service_types: list[str]) -> None:
    """Each service type of a subnet is a device owner."""
    for service_type in service_types:
        if not service_type.startswith(SERVICE_TYPE_PREFIXES):
            raise exc.InvalidSubnetServiceType(service_type=service_type)


def check_ipv6_modes(values: dict[str, Any]) -> None:
    """Neutron's IPv6 mode rules: the modes need DHCP enabled, two modes given must agree,
    and an auto-addressed (SLAAC, DHCPv6-stateless) subnet is a /64, as EUI-64 needs."""
    ra_mode, address_mode = values.get("ipv6_ra_mode"), values.get("ipv6_address_mode")
    if not (ra_mode or address_mode):
        return
    if not values.get("enable_dhcp", True):
        raise exc.InvalidInput(error_message="ipv6_ra_mode or ipv6_address_mode cannot be set "
                                             "when enable_dhcp is set to False")
    if ra_mode and address_mode and ra_mode != address_mode:
        raise exc.InvalidInput(error_message=(
            f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to "
            f"'{address_mode}' is not valid. If both attributes are set, they must be the "
            "same value"))
    auto = (address_mode or ra_mode) in ("slaac", "dhcpv6-stateless")
    if auto and netaddr.IPNetwork(values["cidr"]).prefixlen != 64:
        raise exc.InvalidInput(error_message=(
            f"Invalid CIDR {values['cidr']} for IPv6 address mode. The EUI-64 address "
            "format requires the prefix to be /64"))


class SubnetService(ResourceServiceBase):
    """The rules of subnets."""

    table = SUBNETS
    resource = SUBNET
    quota_resource = "subnet"

    def __init__(self, core: Core, networks: NetworkService,
                 pools: SubnetPoolService) -> None:
        super().__init__(core)
        self.networks = networks
        self.pools = pools

    def check_access(self, conn: Connection, ctx: Context, subnet_id: str,
                     action: str) -> None:
        """Raise unless `ctx` may do `action` (get, update, delete) on the subnet."""
        row, network = self.fetch(conn, ctx, subnet_id)
        self.core.policy.enforce(ctx, f"{action}_subnet", subnet_target(row, network))

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: its project's subnets and those of shared networks."""
        if ctx.is_admin:
            return []
        project = ctx.project_id or ""
        shared = select(NETWORKS.c.id).where(network_access.shared_with(project))
        return [or_(SUBNETS.c.project_id == project, SUBNETS.c.network_id.in_(shared))]

    def fetch(self, conn: Connection, ctx: Context, subnet_id: str) -> tuple[Row[Any], Row[Any]]:
        """The subnet and its network, or SubnetNotFound if absent or hidden from `ctx`."""
        row = conn.execute(select(SUBNETS).where(SUBNETS.c.id == subnet_id)).first()
        if row is not None:
            network = conn.execute(select(NETWORKS).where(NETWORKS.c.id == row.network_id)).one()
            # The grants are read only for a caller the plain target does not admit.
            if self.core.policy.check(ctx, "get_subnet", subnet_target(row, network)) or (
                    network_access.is_shared_for(conn, network, ctx.project_id)
                    and self.core.policy.check(ctx, "get_subnet",
                                               subnet_target(row, network, True))):
                return row, network
        raise exc.SubnetNotFound(subnet_id=subnet_id)

    def get(self, ctx: Context, subnet_id: str) -> dict[str, Any]:
        """One subnet."""
        with self.core.db.read() as conn:
            row, _ = self.fetch(conn, ctx, subnet_id)
            return self._render_one(conn, row)

    def list_page(self, ctx: Context, query: Query) -> tuple[list[dict[str, Any]], bool]:
        """A page of subnets and whether more follow; `shared=true|false` keeps those of
        networks shared (or not) with the caller, as Neutron's filter does."""
        where = self.scope(ctx)
        shared = SUBNETS.c.network_id.in_(select(NETWORKS.c.id).where(
            network_access.shared_with(ctx.project_id or "")))
        for raw in query.extra_filters.get("shared", []):
            try:
                wanted = v.to_bool(raw)
            except v.Invalid as err:
                raise exc.BadRequest(resource="subnet", msg=f"shared: {err}") from None
            where.append(shared if wanted else ~shared)
        with self.core.db.read() as conn:
            page = listing.list_rows(conn, SUBNET, SUBNETS, query, where)
            return self._render_for(conn, ctx, page), page.more

    def _check_overlap(self, conn: Connection, network_id: str, project_id: str,
                       cidr: str) -> None:
        """No two subnets of a network overlap; without overlapping IPs, nor of a project."""
        scope = SUBNETS.c.network_id == network_id
        if not self.core.conf.allow_overlapping_ips:
            scope = or_(scope, SUBNETS.c.project_id == project_id)
        new = netaddr.IPNetwork(cidr)
        for other_cidr in conn.execute(select(SUBNETS.c.cidr).where(scope)).scalars():
            other = netaddr.IPNetwork(other_cidr)
            if other.version == new.version and (new in other or other in new):
                raise exc.SubnetOverlap(cidr=cidr, net_id=network_id)

    def _describe(self, item: dict[str, Any]) -> str:
        return f"({item['cidr']}) on network {item['network_id']}"

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        tags = load_tags(conn, page)
        return [render(r, tags.get(r["id"], [])) for r in page.rows]

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        network = self.networks.fetch(conn, ctx, body["network_id"], for_update=True)
        project = self.core.project_for(ctx, body)
        body = self._with_cidr(conn, ctx, project, body)
        check_mtu_for_subnet(network.id, network.mtu, int(body["ip_version"]))
        subnet_id = new_id()
        values = {k: body[k] for k in (
            "name", "description", "network_id", "cidr", "dns_nameservers", "host_routes",
            "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "segment_id",
            "service_types")}
        values["ip_version"] = int(body["ip_version"])
        self.core.policy.enforce(ctx, "create_subnet", subnet_target(
            {"project_id": project}, network))
        values["gateway_ip"] = body["gateway_ip"] if "gateway_ip" in body \
            else ipam.default_gateway(body["cidr"])
        values["allocation_pools"] = body.get("allocation_pools") or ipam.default_pools(
            body["cidr"], values["gateway_ip"])
        check_shape(self.core.conf, values, subnet_id)
        self._check_overlap(conn, network.id, project, body["cidr"])
        row = {**values, "id": subnet_id, "project_id": project, "created_at": now,
               "updated_at": now, "revision_number": 0, "created_order": creation_order()}
        conn.execute(insert(SUBNETS).values(**row))
        bump_revision(conn, NETWORKS, network.id, now)
        tags = insert_tags(conn, subnet_id, body.get("tags", []))
        changes.record(conn, "subnet", subnet_id, changes.network(network.id))
        if ipam.is_auto_address(row):
            self._address_ports(conn, row, now)
        if values["enable_dhcp"]:
            self.core.dhcp_subnet(conn, network.id, subnet_id)
        return render(row, tags)

    def _with_cidr(self, conn: Connection, ctx: Context, project: str,
                   body: dict[str, Any]) -> dict[str, Any]:
        """The create's body with its CIDR: as given, or taken from the subnet pool it
        names (a given CIDR must then be free in the pool); and with its pool, which must
        be the pool of the network's other subnets of its IP version."""
        if "cidr" in body and "prefixlen" in body:
            raise exc.BadRequest(resource="subnets",
                                 msg="cidr and prefixlen must not be supplied together")
        pool_id = self.pools.pool_for(conn, body)
        if pool_id is None:
            if "cidr" not in body:
                raise exc.BadRequest(resource="subnets", msg="a subnetpool must be specified "
                                                             "in the absence of a cidr")
            cidr = body["cidr"]
        else:
            cidr = self.pools.allocate(conn, ctx, pool_id, project, body)
        others = conn.execute(select(SUBNETS.c.subnetpool_id).where(
            SUBNETS.c.network_id == body["network_id"],
            SUBNETS.c.ip_version == int(body["ip_version"]))).scalars().all()
        if any(other != pool_id for other in others):
            raise exc.NetworkSubnetPoolAffinityError()
        return {**body, "cidr": cidr, "subnetpool_id": pool_id}

    @staticmethod
    def _address_ports(conn: Connection, subnet: dict[str, Any], now: str) -> None:
        """A new auto-addressed (SLAAC) subnet: every port of the network but routers' (and
        DHCP ports, which the DHCP scheduler addresses) takes its EUI-64 address on it."""
        ports = conn.execute(select(PORTS.c.id, PORTS.c.mac_address, PORTS.c.device_owner)
                             .where(PORTS.c.network_id == subnet["network_id"],
                                    PORTS.c.device_owner.not_in([*INTERFACE_OWNERS,
                                                                 DHCP_OWNER]))).all()
        rows = []
        for port_id, mac, owner in ports:
            if not ipam.serves(subnet, owner):
                continue  # the subnet is for other device owners (subnet-service-types)
            address = ipam.eui64_address(subnet, mac)
            rows.append(ipam.allocation(subnet["id"], address, port_id, subnet["network_id"]))
            bump_revision(conn, PORTS, port_id, now)
            changes.record(conn, "port", port_id, changes.network(subnet["network_id"]))
        if rows:
            conn.execute(insert(ALLOCS), rows)

    def update(self, ctx: Context, subnet_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a subnet's writable attributes."""

        def txn(conn: Connection) -> dict[str, Any]:
            row, network = self.fetch(conn, ctx, subnet_id)
            self.core.policy.enforce(ctx, "update_subnet", subnet_target(row, network))
            current = dict(row._mapping)
            updates = {SUBNET.attr_map[k].column or k: v for k, v in body.items()}
            merged = {**current, **updates}
            if "gateway_ip" in body and body["gateway_ip"] != current["gateway_ip"]:
                self._check_gateway_free(conn, subnet_id, current["gateway_ip"])
            if "gateway_ip" in body and "allocation_pools" not in body \
                    and body["gateway_ip"] is not None:
                # A gateway moved into the default pools carves itself out of them.
                default = ipam.default_pools(current["cidr"], current["gateway_ip"])
                if current["allocation_pools"] == default:
                    merged["allocation_pools"] = ipam.default_pools(current["cidr"],
                                                                    body["gateway_ip"])
            check_shape(self.core.conf, merged, subnet_id)
            writable = {k: merged[k] for k in updates if k in SUBNETS.c}
            if merged["allocation_pools"] != current["allocation_pools"]:
                writable["allocation_pools"] = merged["allocation_pools"]
            bump_revision(conn, SUBNETS, subnet_id, utcnow(), writable)
            changes.record(conn, "subnet", subnet_id, changes.network(network.id))
            if body.get("enable_dhcp") and not current["enable_dhcp"]:
                self.core.dhcp_subnet(conn, network.id, subnet_id)
            fresh = conn.execute(select(SUBNETS).where(SUBNETS.c.id == subnet_id)).one()
            return self._render_one(conn, fresh)

        subnet = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Updated subnet %s: %s", subnet_id, sorted(body))
        return subnet

    @staticmethod
    def _check_gateway_free(conn: Connection, subnet_id: str, gateway: str | None) -> None:
        """The gateway may move (or go) unless a router's interface holds it."""
        if gateway is None:
            return
        holder = conn.execute(
            select(ALLOCS.c.port_id).join(PORTS, PORTS.c.id == ALLOCS.c.port_id)
            .where(ALLOCS.c.subnet_id == subnet_id, ALLOCS.c.ip_address == gateway,
                   PORTS.c.device_owner.in_(INTERFACE_OWNERS)).limit(1)).scalar()
        if holder is not None:
            raise exc.GatewayIpInUse(ip_address=gateway, port_id=holder)

    def delete(self, ctx: Context, subnet_id: str) -> None:
        """Delete a subnet whose only addresses belong to DHCP ports or, on an
        auto-addressed (SLAAC) subnet, to ports that took them by themselves; they lose
        them, as in Neutron."""

        def txn(conn: Connection) -> None:
            row, network = self.fetch(conn, ctx, subnet_id)
            self.core.policy.enforce(ctx, "delete_subnet", subnet_target(row, network))
            users = conn.execute(
                select(PORTS.c.id, PORTS.c.device_owner)
                .join(ALLOCS, ALLOCS.c.port_id == PORTS.c.id)
                .where(ALLOCS.c.subnet_id == subnet_id)).all()
            auto = ipam.is_auto_address(dict(row._mapping))
            if any(owner != DHCP_OWNER and (not auto or owner in INTERFACE_OWNERS)
                   for _, owner in users):
                raise exc.SubnetInUse(subnet_id=subnet_id)
            now = utcnow()
            conn.execute(delete(ALLOCS).where(ALLOCS.c.subnet_id == subnet_id))
            for port_id, _ in users:
                bump_revision(conn, PORTS, port_id, now)
                changes.record(conn, "port", port_id, changes.network(network.id))
            conn.execute(delete(SUBNETS).where(SUBNETS.c.id == subnet_id))
            delete_tags(conn, [subnet_id])
            bump_revision(conn, NETWORKS, network.id, now)
            changes.record(conn, "subnet", subnet_id, changes.network(network.id))

        self.core.db.write(txn)
        self.core.notify()
        LOG.info("Deleted subnet %s", subnet_id)
