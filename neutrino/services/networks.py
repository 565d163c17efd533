"""Networks: create, read, update, delete, with their segments and MTU."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, bindparam, delete, insert, or_, select

from neutrino import exceptions as exc
from neutrino.db.listing import Page
from neutrino.db.models import (
    AGENTS,
    ALLOCS,
    DHCP_BINDINGS,
    FLOATINGIPS,
    NETWORK_RBACS,
    NETWORKS,
    PORTS,
    SEGMENTS,
    SUBNET_CREATION_ORDER,
    SUBNETPOOLS,
    SUBNETS,
)
from neutrino.schema.policy import Context
from neutrino.schema.resources import NETWORK
from neutrino.services import changes, network_access, segments
from neutrino.services.common import (
    ResourceServiceBase,
    bump_revision,
    delete_tags,
    enforce_attrs,
    insert_tags,
    load_tags,
    new_id,
    replace_tags,
    utcnow,
)

LOG = logging.getLogger(__name__)
DHCP_OWNER = "network:dhcp"
IPV4_MIN_MTU = 68  # RFC 791
IPV6_MIN_MTU = 1280  # RFC 8200
# Built once: SQLAlchemy then computes their cache keys once, not on every request.
_BY_ID = select(NETWORKS).where(NETWORKS.c.id == bindparam("id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()


def network_target(row: Row[Any] | dict[str, Any]) -> dict[str, Any]:
    """The policy target of a network row."""
    m = row._mapping if isinstance(row, Row) else row
    return {"project_id": m["project_id"], "tenant_id": m["project_id"],
            "shared": bool(m["shared"]), "router:external": bool(m["external"])}


def render(m: Mapping[str, Any], subnets: list[str], tags: list[str],
           zones: list[str] | None = None, ipv4_scope: str | None = None,
           ipv6_scope: str | None = None) -> dict[str, Any]:
    """A network row as the API shows it."""
    return NETWORK.render(m, subnets=subnets, tags=tags, availability_zones=zones or [],
                          ipv4_address_scope=ipv4_scope, ipv6_address_scope=ipv6_scope)


def check_not_a_gateway(conn: Connection, network_id: str) -> None:
    """A network router gateways are on stays external."""
    gateways = conn.execute(select(PORTS.c.id).where(
        PORTS.c.network_id == network_id,
        PORTS.c.device_owner == "network:router_gateway").limit(1)).first()
    if gateways is not None:
        raise exc.ExternalNetworkInUse(net_id=network_id)


def check_mtu_for_subnet(network_id: str, mtu: int | None, ip_version: int) -> None:
    """A subnet of `ip_version` needs its network's MTU at IPv4's or IPv6's minimum (68 or
    1280); an MTU of 0 (none set) leaves it to the segment."""
    minimum = IPV4_MIN_MTU if ip_version == 4 else IPV6_MIN_MTU
    if mtu and mtu < minimum:
        raise exc.NetworkMTUSubnetConflict(net_id=network_id, mtu=minimum)


def delete_network_rows(conn: Connection, network_id: str) -> None:
    """Delete a network with its ports, addresses, subnets, segment, grants and tags, and
    log it for the agents (the caller checked nothing depends on it)."""
    port_ids = list(conn.execute(select(PORTS.c.id).where(
        PORTS.c.network_id == network_id)).scalars())
    subnet_ids = list(conn.execute(select(SUBNETS.c.id).where(
        SUBNETS.c.network_id == network_id)).scalars())
    conn.execute(delete(ALLOCS).where(ALLOCS.c.network_id == network_id))
    conn.execute(delete(PORTS).where(PORTS.c.network_id == network_id))
    conn.execute(delete(SUBNETS).where(SUBNETS.c.network_id == network_id))
    conn.execute(delete(SEGMENTS).where(SEGMENTS.c.network_id == network_id))
    conn.execute(delete(NETWORK_RBACS).where(NETWORK_RBACS.c.object_id == network_id))
    conn.execute(delete(NETWORKS).where(NETWORKS.c.id == network_id))
    delete_tags(conn, [network_id, *port_ids, *subnet_ids])
    changes.record(conn, "network", network_id, changes.network(network_id))


def delete_unassociated_fips(conn: Connection, network_id: str) -> list[str]:
    """Delete the floating IPs of a network that no port uses, with their ports; their
    ids."""
    rows = conn.execute(select(FLOATINGIPS.c.id, FLOATINGIPS.c.floating_port_id).where(
        FLOATINGIPS.c.floating_network_id == network_id,
        FLOATINGIPS.c.fixed_port_id.is_(None))).all()
    if not rows:
        return []
    fip_ids = [r.id for r in rows]
    port_ids = [r.floating_port_id for r in rows]
    conn.execute(delete(FLOATINGIPS).where(FLOATINGIPS.c.id.in_(fip_ids)))
    conn.execute(delete(ALLOCS).where(ALLOCS.c.port_id.in_(port_ids)))
    conn.execute(delete(PORTS).where(PORTS.c.id.in_(port_ids)))
    delete_tags(conn, fip_ids + port_ids)
    return sorted(fip_ids)


class NetworkService(ResourceServiceBase):
    """The rules of networks."""

    table = NETWORKS
    resource = NETWORK
    quota_resource = "network"

    def check_access(self, conn: Connection, ctx: Context, network_id: str,
                     action: str) -> None:
        """Raise unless `ctx` may do `action` (get, update, delete) on the network."""
        row = self.fetch(conn, ctx, network_id)
        self.core.policy.enforce(ctx, f"{action}_network", network_target(row))

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: its project's networks and those granted to it or to every
        project (shared or external)."""
        if ctx.is_admin:
            return []
        project = ctx.project_id or ""
        return [or_(NETWORKS.c.project_id == project, NETWORKS.c.shared.is_(True),
                    network_access.visible(project))]

    def fetch(self, conn: Connection, ctx: Context, network_id: str,
              for_update: bool = False) -> Row[Any]:
        """The network row, or NetworkNotFound if absent or hidden from `ctx`."""
        stmt = _BY_ID_FOR_UPDATE if for_update and not self.core.db.is_sqlite else _BY_ID
        row = conn.execute(stmt, {"id": network_id}).first()
        if row is None or not self.core.policy.check(ctx, "get_network",
                                                     self._target_for(conn, ctx, row)):
            raise exc.NetworkNotFound(net_id=network_id)
        return row

    @staticmethod
    def _target_for(conn: Connection, ctx: Context, row: Row[Any]) -> dict[str, Any]:
        """The network's policy target as `ctx` sees it: shared and external for it if
        granted to its project (its owner and admins need no grant to read)."""
        target = network_target(row)
        if ctx.is_admin or row.project_id == ctx.project_id:
            return target
        granted = network_access.granted(conn, row.id, ctx.project_id or "")
        return {**target, "shared": network_access.SHARED in granted,
                "router:external": network_access.EXTERNAL in granted}

    def _render_for(self, conn: Connection, ctx: Context, page: Page) -> list[dict[str, Any]]:
        """`shared` is whether the network is shared with the caller's project."""
        items = self._render_page(conn, page)
        mine = network_access.shared_in_page(conn, page, ctx.project_id)
        for item in items:
            if item["id"] in mine:
                item["shared"] = True
        return items

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        subnets: dict[str, list[str]] = defaultdict(list)
        scopes: dict[tuple[str, int], str] = {}
        for net_id, subnet_id, version, scope in conn.execute(
                select(SUBNETS.c.network_id, SUBNETS.c.id, SUBNETS.c.ip_version,
                       SUBNETPOOLS.c.address_scope_id)
                .outerjoin(SUBNETPOOLS, SUBNETPOOLS.c.id == SUBNETS.c.subnetpool_id)
                .where(page.holds(SUBNETS.c.network_id))
                .order_by(*SUBNET_CREATION_ORDER)).all():
            subnets[net_id].append(subnet_id)
            if scope is not None:  # a network's subnets of one version share a pool
                scopes[(net_id, version)] = scope
        tags = load_tags(conn, page)
        zones: dict[str, set[str]] = defaultdict(set)
        for net_id, zone in conn.execute(
                select(DHCP_BINDINGS.c.network_id, AGENTS.c.availability_zone)
                .join(AGENTS, AGENTS.c.id == DHCP_BINDINGS.c.agent_id)
                .where(page.holds(DHCP_BINDINGS.c.network_id))).all():
            if zone:
                zones[net_id].add(zone)
        return [render(r, subnets.get(r["id"], []), tags.get(r["id"], []),
                       sorted(zones.get(r["id"], ())), scopes.get((r["id"], 4)),
                       scopes.get((r["id"], 6))) for r in page.rows]

    def _describe(self, item: dict[str, Any]) -> str:
        return (f"({item['name'] or '-'}, {item['provider:network_type']} "
                f"{item['provider:segmentation_id']})")

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        project = self.core.project_for(ctx, body)
        target = network_target({"project_id": project, "shared": body["shared"],
                                 "external": body["router:external"]})
        self.core.policy.enforce(ctx, "create_network", target)
        enforce_attrs(self.core, ctx, NETWORK, "create", body, target)
        conf = self.core.conf
        network_id = new_id()
        provider = {k: body[k] for k in ("provider:network_type", "provider:physical_network",
                                         "provider:segmentation_id") if k in body}
        requested = None
        if provider:
            if "provider:network_type" not in provider:
                raise exc.InvalidInput(error_message="provider:network_type required")
            requested = segments.Segment(provider["provider:network_type"],
                                         provider.get("provider:physical_network"),
                                         provider.get("provider:segmentation_id"))
        # The row must exist before its segment references it. Revision 1, as a network
        # reads after Neutron's create (ML2 revises it once, writing its segment).
        values = {
            "id": network_id, "project_id": project, "name": body["name"],
            "description": body["description"], "created_at": now, "updated_at": now,
            "revision_number": 1, "admin_state_up": body["admin_state_up"], "status": "ACTIVE",
            "shared": body["shared"], "external": body["router:external"], "mtu": 0,
            "network_type": "local", "physical_network": None, "segmentation_id": None,
            "availability_zone_hints": body["availability_zone_hints"],
            "port_security_enabled": body["port_security_enabled"],
        }
        conn.execute(insert(NETWORKS).values(**values))
        for wanted, action in ((body["shared"], network_access.SHARED),
                               (body["router:external"], network_access.EXTERNAL)):
            if wanted:
                network_access.grant(conn, network_id, project, network_access.WILDCARD, action)
        segment = segments.allocate(conn, conf, network_id, requested)
        limit = segments.max_mtu(conf, segment.network_type)
        mtu = body.get("mtu", limit)
        if mtu > limit:
            raise exc.InvalidInput(error_message=f"Requested MTU is too big, maximum is {limit}")
        seg_values = {"network_type": segment.network_type,
                      "physical_network": segment.physical_network,
                      "segmentation_id": segment.segmentation_id, "mtu": mtu}
        conn.execute(NETWORKS.update().where(NETWORKS.c.id == network_id).values(**seg_values))
        tags = insert_tags(conn, network_id, body.get("tags", []))
        changes.record(conn, "network", network_id, changes.network(network_id))
        row = conn.execute(select(NETWORKS).where(NETWORKS.c.id == network_id)).one()
        return render(dict(row._mapping), [], tags)

    def update(self, ctx: Context, network_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a network's writable attributes."""

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, network_id, for_update=True)
            target = network_target(row)
            self.core.policy.enforce(ctx, "update_network", target)
            enforce_attrs(self.core, ctx, NETWORK, "update", body, target)
            values: dict[str, Any] = {}
            for key, value in body.items():
                column = NETWORK.attr_map[key].column
                if column is not None:
                    values[column] = value
            if "mtu" in body:
                limit = segments.max_mtu(self.core.conf, row.network_type)
                if body["mtu"] > limit:
                    raise exc.InvalidInput(
                        error_message=f"Requested MTU is too big, maximum is {limit}")
                versions = conn.execute(select(SUBNETS.c.ip_version).where(
                    SUBNETS.c.network_id == network_id)).scalars().all()
                for version in sorted(set(versions)):
                    check_mtu_for_subnet(network_id, body["mtu"], version)
            values.pop("shared", None)  # the grants below set both
            values.pop("external", None)
            self._change_grants(conn, row, body)
            bump_revision(conn, NETWORKS, network_id, utcnow(), values)
            changes.record(conn, "network", network_id, changes.network(network_id))
            if "tags" in body:
                replace_tags(conn, network_id, body["tags"])
            fresh = conn.execute(select(NETWORKS).where(NETWORKS.c.id == network_id)).one()
            return self._render_one(conn, fresh)

        network = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Updated network %s: %s", network_id, sorted(body))
        return network

    @staticmethod
    def _change_grants(conn: Connection, row: Row[Any], body: dict[str, Any]) -> None:
        """`shared` and `router:external` set or cleared: the `*` grants they stand for.
        Unsharing keeps the ports of projects with grants of their own; a network with
        router gateways stays external."""
        wildcard = network_access.WILDCARD
        if "shared" in body and body["shared"] != row.shared:
            if body["shared"]:
                network_access.grant(conn, row.id, row.project_id, wildcard,
                                     network_access.SHARED)
            else:
                network_access.check_no_ports_depend(conn, row, wildcard)
                network_access.revoke(conn, row.id, network_access.SHARED, wildcard)
        if "router:external" in body and body["router:external"] != row.external:
            if body["router:external"]:
                network_access.grant(conn, row.id, row.project_id, wildcard,
                                     network_access.EXTERNAL)
            else:
                check_not_a_gateway(conn, row.id)
                network_access.revoke(conn, row.id, network_access.EXTERNAL)

    def delete(self, ctx: Context, network_id: str) -> None:
        """Delete a network that has no ports but DHCP ports; on an external network,
        floating IPs that point nowhere go with it, as in Neutron."""
        fips: list[str] = []

        def txn(conn: Connection) -> None:
            row = self.fetch(conn, ctx, network_id, for_update=True)
            self.core.policy.enforce(ctx, "delete_network", network_target(row))
            fips[:] = delete_unassociated_fips(conn, network_id)
            in_use = list(conn.execute(select(PORTS.c.id).where(
                PORTS.c.network_id == network_id, PORTS.c.device_owner != DHCP_OWNER)
                .order_by(PORTS.c.id)).scalars())
            if in_use:
                raise exc.NetworkInUse(net_id=network_id, port_ids=in_use)
            delete_network_rows(conn, network_id)

        self.core.db.write(txn)
        self.core.notify()
        LOG.info("Deleted network %s%s", network_id,
                 f" and its unassociated floating IPs {fips}" if fips else "")
