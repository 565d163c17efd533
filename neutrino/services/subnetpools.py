"""Subnet pools (`subnet_allocation`, `default-subnetpools`, `subnetpool-prefix-ops`):
prefixes that subnets are carved from.

A subnet asks a pool for a prefix length (any free block of it) or for a CIDR (which must
lie in the pool's free space). What is free is computed, never stored: the pool's prefixes
less the CIDRs of the subnets taken from it. The pool's row is locked while a subnet is
taken (on SQLite the writer holds the database), so two subnets never get the same block.
A project's share of a pool is `default_quota` addresses, counted in /32s (IPv4) or /64s
(IPv6) as Neutron counts them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import netaddr
from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    delete,
    insert,
    or_,
    select,
)

from neutrino import exceptions as exc
from neutrino.db.listing import Page
from neutrino.db.models import SUBNETPOOL_PREFIXES, SUBNETPOOLS, SUBNETS
from neutrino.schema import validators as v
from neutrino.schema.policy import Context
from neutrino.schema.resources import SUBNETPOOL
from neutrino.services.address_scopes import AddressScopeService
from neutrino.services.common import (
    Core,
    ResourceServiceBase,
    bump_revision,
    delete_tags,
    enforce_attrs,
    insert_tags,
    load_tags,
    new_id,
    utcnow,
)

LOG = logging.getLogger(__name__)
BITS = {4: 32, 6: 128}
DEFAULT_MIN_PREFIXLEN = {4: 8, 6: 64}
QUOTA_UNIT = {4: 32, 6: 64}  # a pool's default_quota counts /32s or /64s


def pool_target(row: Row[Any] | dict[str, Any]) -> dict[str, Any]:
    """The policy target of a subnet pool."""
    m = row._mapping if isinstance(row, Row) else row
    return {"project_id": m["project_id"], "tenant_id": m["project_id"],
            "shared": bool(m["shared"])}


@dataclass(frozen=True)
class PoolShape:
    """A pool's prefixes (compacted) and its prefix length bounds, validated."""

    ip_version: int
    prefixes: tuple[str, ...]
    min_prefixlen: int
    max_prefixlen: int
    default_prefixlen: int


def compact(prefixes: list[str]) -> tuple[str, ...]:
    """Prefixes merged where they overlap or adjoin, in address order."""
    space = netaddr.IPSet(prefixes)
    space.compact()
    return tuple(str(cidr) for cidr in space.iter_cidrs())


def read_shape(values: dict[str, Any]) -> PoolShape:
    """A pool's shape from its values (missing bounds take Neutron's defaults: min /8 or
    /64, max the address length, default the min), or the error Neutron gives."""
    prefixes = values.get("prefixes") or []
    if not prefixes:
        raise exc.EmptySubnetPoolPrefixList()
    versions = {netaddr.IPNetwork(p).version for p in prefixes}
    if len(versions) > 1:
        raise exc.PrefixVersionMismatch()
    version = versions.pop()

    def given(key: str, default: int) -> int:
        value = values.get(key)
        return default if value is None else int(value)

    low = given("min_prefixlen", DEFAULT_MIN_PREFIXLEN[version])
    high = given("max_prefixlen", BITS[version])
    default = given("default_prefixlen", low)
    if low > high:
        raise exc.IllegalSubnetPoolPrefixBounds(prefix_type="min_prefixlen", prefixlen=low,
                                                base_prefix_type="max_prefixlen",
                                                base_prefixlen=high)
    if high > BITS[version]:
        raise exc.IllegalSubnetPoolPrefixBounds(prefix_type="max_prefixlen", prefixlen=high,
                                                base_prefix_type="ip_version_max",
                                                base_prefixlen=BITS[version])
    for broken, bound, name in ((default < low, low, "min_prefixlen"),
                                (default > high, high, "max_prefixlen")):
        if broken:
            raise exc.IllegalSubnetPoolPrefixBounds(prefix_type="default_prefixlen",
                                                    prefixlen=default,
                                                    base_prefix_type=name,
                                                    base_prefixlen=bound)
    return PoolShape(version, compact(prefixes), low, high, default)


def free_blocks(prefixes: list[str] | tuple[str, ...],
                taken: list[str]) -> list[netaddr.IPNetwork]:
    """The pool's free space as CIDRs, smallest blocks first (a request takes the tightest
    block that holds it, as Neutron's allocator does)."""
    space = netaddr.IPSet(prefixes) - netaddr.IPSet(taken)
    space.compact()
    return sorted(space.iter_cidrs(), key=lambda net: (-net.prefixlen, net.value))


def carve(free: list[netaddr.IPNetwork], prefixlen: int) -> str | None:
    """The first block of `prefixlen` in the free space, or None if none fits."""
    for block in free:
        if prefixlen >= block.prefixlen:
            return str(next(block.subnet(prefixlen)))
    return None


def quota_units(cidr: str, version: int) -> int:
    """How much of a pool's default_quota a subnet takes."""
    return int(2 ** max(QUOTA_UNIT[version] - netaddr.IPNetwork(cidr).prefixlen, 0))


def parse_prefixes(body: Any) -> list[str]:
    """An add_prefixes/remove_prefixes body: `{"prefixes": [CIDR, ...]}`."""
    if not isinstance(body, dict) or set(body) != {"prefixes"}:
        raise exc.BadRequest(resource="subnetpool", msg="Body must be {'prefixes': [...]}")
    try:
        return list(v.cidr_list()(body["prefixes"]) or [])
    except v.Invalid as err:
        raise exc.InvalidInput(error_message=f"Invalid input for prefixes. Reason: {err}") \
            from None


def _as_neutron_renders(pool: dict[str, Any]) -> dict[str, Any]:
    """Neutron answers a pool's prefix lengths as strings (tempest compares them with the
    strings it sent); clients convert them back to integers."""
    for key in ("default_prefixlen", "min_prefixlen", "max_prefixlen"):
        pool[key] = str(pool[key])
    return pool


class SubnetPoolService(ResourceServiceBase):
    """The rules of subnet pools, and taking subnets from them."""

    table = SUBNETPOOLS
    resource = SUBNETPOOL
    quota_resource = "subnetpool"  # limited by [QUOTAS] default_quota, as in Neutron

    def __init__(self, core: Core, scopes: AddressScopeService) -> None:
        super().__init__(core)
        self.scopes = scopes

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: its project's pools and shared ones."""
        if ctx.is_admin:
            return []
        return [or_(SUBNETPOOLS.c.project_id == (ctx.project_id or ""),
                    SUBNETPOOLS.c.shared.is_(True))]

    def fetch(self, conn: Connection, ctx: Context, pool_id: str,
              for_update: bool = False) -> Row[Any]:
        """The pool, or SubnetPoolNotFound if absent or hidden from `ctx`."""
        stmt = select(SUBNETPOOLS).where(SUBNETPOOLS.c.id == pool_id)
        if for_update and not self.core.db.is_sqlite:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None or not self.core.policy.check(ctx, "get_subnetpool", pool_target(row)):
            raise exc.SubnetPoolNotFound(subnetpool_id=pool_id)
        return row

    def check_access(self, conn: Connection, ctx: Context, pool_id: str, action: str) -> None:
        """Raise unless `ctx` may do `action` on the pool."""
        self.core.policy.enforce(ctx, f"{action}_subnetpool",
                                 pool_target(self.fetch(conn, ctx, pool_id)))

    @staticmethod
    def _prefixes(conn: Connection, pool_id: str) -> list[str]:
        return list(conn.execute(select(SUBNETPOOL_PREFIXES.c.cidr).where(
            SUBNETPOOL_PREFIXES.c.subnetpool_id == pool_id)).scalars())

    @staticmethod
    def _taken(conn: Connection, pool_id: str) -> list[tuple[str, str]]:
        """(cidr, project) of every subnet taken from the pool."""
        return [(cidr, project) for cidr, project in conn.execute(
            select(SUBNETS.c.cidr, SUBNETS.c.project_id).where(
                SUBNETS.c.subnetpool_id == pool_id))]

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        prefixes: dict[str, list[str]] = defaultdict(list)
        for pool_id, cidr in conn.execute(
                select(SUBNETPOOL_PREFIXES.c.subnetpool_id, SUBNETPOOL_PREFIXES.c.cidr)
                .where(page.holds(SUBNETPOOL_PREFIXES.c.subnetpool_id))):
            prefixes[pool_id].append(cidr)
        tags = load_tags(conn, page)
        return [_as_neutron_renders(SUBNETPOOL.render(
            r, prefixes=list(compact(prefixes.get(r["id"], []))), tags=tags.get(r["id"], [])))
            for r in page.rows]

    def _describe(self, item: dict[str, Any]) -> str:
        return f"({item['name']}: {item['prefixes']})"

    # -- checks ------------------------------------------------------------------------

    @staticmethod
    def _check_one_default(conn: Connection, version: int, pool_id: str) -> None:
        """Only one default pool per IP version."""
        other = conn.execute(select(SUBNETPOOLS.c.id).where(
            SUBNETPOOLS.c.is_default.is_(True), SUBNETPOOLS.c.ip_version == version,
            SUBNETPOOLS.c.id != pool_id).limit(1)).first()
        if other is not None:
            raise exc.InvalidInput(error_message="A default subnetpool for this IP family has "
                                                 "already been set. Only one default may "
                                                 "exist per IP family")

    def _check_scope(self, conn: Connection, ctx: Context, pool_id: str,
                     scope_id: str | None, shape: PoolShape) -> None:
        """A pool may join a scope the caller owns (or a shared one) of its IP version,
        whose other pools share none of its addresses, if no network then mixes scopes."""
        if scope_id is None:
            return
        scope = self.scopes.fetch(conn, ctx, scope_id)  # 404 for one the caller cannot see
        if scope.ip_version != shape.ip_version:
            raise exc.IllegalSubnetPoolIpVersionAssociationToAddressScope(
                subnetpool_id=pool_id, address_scope_id=scope_id, ip_version=scope.ip_version)
        mine = netaddr.IPSet(shape.prefixes)
        others = conn.execute(
            select(SUBNETPOOL_PREFIXES.c.cidr)
            .join(SUBNETPOOLS, SUBNETPOOLS.c.id == SUBNETPOOL_PREFIXES.c.subnetpool_id)
            .where(SUBNETPOOLS.c.address_scope_id == scope_id,
                   SUBNETPOOLS.c.id != pool_id)).scalars().all()
        if mine & netaddr.IPSet(others):
            raise exc.AddressScopePrefixConflict()

    @staticmethod
    def _check_networks_follow(conn: Connection, pool_id: str, version: int) -> None:
        """Re-scoping a pool must not leave a network with subnets of one IP version in two
        scopes: every such subnet of the pool's networks must come from the pool."""
        networks = select(SUBNETS.c.network_id).where(SUBNETS.c.subnetpool_id == pool_id)
        stray = conn.execute(select(SUBNETS.c.id).where(
            SUBNETS.c.network_id.in_(networks), SUBNETS.c.ip_version == version,
            or_(SUBNETS.c.subnetpool_id.is_(None), SUBNETS.c.subnetpool_id != pool_id))
            .limit(1)).first()
        if stray is not None:
            raise exc.BadRequest(resource="subnetpool",
                                 msg="Subnets of the same address family hosted on the same "
                                     "network must all participate in the same address scope")

    # -- create, update, delete --------------------------------------------------------

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        project = self.core.project_for(ctx, body)
        target = pool_target({"project_id": project, "shared": body["shared"]})
        self.core.policy.enforce(ctx, "create_subnetpool", target)
        enforce_attrs(self.core, ctx, SUBNETPOOL, "create", body, target)
        shape = read_shape(body)
        pool_id = new_id()
        if body["is_default"]:
            self._check_one_default(conn, shape.ip_version, pool_id)
        self._check_scope(conn, ctx, pool_id, body["address_scope_id"], shape)
        conn.execute(insert(SUBNETPOOLS).values(
            id=pool_id, project_id=project, name=body["name"], description=body["description"],
            created_at=now, updated_at=now, revision_number=0, ip_version=shape.ip_version,
            default_prefixlen=shape.default_prefixlen, min_prefixlen=shape.min_prefixlen,
            max_prefixlen=shape.max_prefixlen, shared=body["shared"],
            is_default=body["is_default"], default_quota=body["default_quota"],
            address_scope_id=body["address_scope_id"]))
        conn.execute(insert(SUBNETPOOL_PREFIXES), [
            {"subnetpool_id": pool_id, "cidr": p} for p in shape.prefixes])
        insert_tags(conn, pool_id, body.get("tags", []))
        return self._render_one(conn, self.fetch(conn, Context.admin(), pool_id))

    def _write(self, conn: Connection, ctx: Context, pool_id: str,
               body: dict[str, Any]) -> Row[Any]:
        """Apply an update to a locked pool within the caller's transaction."""
        row = self.fetch(conn, ctx, pool_id, for_update=True)
        target = pool_target(row)
        self.core.policy.enforce(ctx, "update_subnetpool", target)
        enforce_attrs(self.core, ctx, SUBNETPOOL, "update", body, target)
        current = self._prefixes(conn, pool_id)
        if row.address_scope_id and not ctx.is_admin:
            scope = self.scopes.fetch(conn, Context.admin(), row.address_scope_id)
            if scope.project_id != ctx.project_id:
                raise exc.BadRequest(resource="subnetpool", msg=(
                    f"Illegal subnetpool update : subnetpool {pool_id} cannot be updated when "
                    f"associated with shared address scope {row.address_scope_id}"))
        prefixes = body.get("prefixes")
        if prefixes is not None and not netaddr.IPSet(current).issubset(
                netaddr.IPSet(prefixes)):
            raise exc.IllegalSubnetPoolPrefixUpdate(
                msg="Existing prefixes must be a subset of the new prefixes")
        merged = {**dict(row._mapping), **body,
                  "prefixes": prefixes if prefixes is not None else current}
        shape = read_shape(merged)
        if body.get("is_default") and not row.is_default:
            self._check_one_default(conn, shape.ip_version, pool_id)
        scope_id = merged["address_scope_id"]
        self._check_scope(conn, ctx, pool_id, scope_id, shape)
        if scope_id != row.address_scope_id:
            self._check_networks_follow(conn, pool_id, shape.ip_version)
        columns: dict[str, Any] = {k: merged[k] for k in ("name", "description", "default_quota",
                                          "is_default", "address_scope_id") if k in body}
        columns.update(default_prefixlen=shape.default_prefixlen,
                       min_prefixlen=shape.min_prefixlen, max_prefixlen=shape.max_prefixlen)
        bump_revision(conn, SUBNETPOOLS, pool_id, utcnow(), columns)
        self._set_prefixes(conn, pool_id, shape.prefixes)
        return self.fetch(conn, ctx, pool_id)

    @staticmethod
    def _set_prefixes(conn: Connection, pool_id: str, prefixes: tuple[str, ...]) -> None:
        conn.execute(delete(SUBNETPOOL_PREFIXES).where(
            SUBNETPOOL_PREFIXES.c.subnetpool_id == pool_id))
        conn.execute(insert(SUBNETPOOL_PREFIXES), [
            {"subnetpool_id": pool_id, "cidr": p} for p in prefixes])

    def update(self, ctx: Context, pool_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a pool: prefixes may only grow; bounds and scope are checked again."""
        item = self.core.db.write(
            lambda conn: self._render_one(conn, self._write(conn, ctx, pool_id, body)))
        LOG.info("Updated subnet pool %s: %s", pool_id, sorted(body))
        return item

    def add_prefixes(self, ctx: Context, pool_id: str, body: Any) -> dict[str, Any]:
        """PUT .../add_prefixes: the pool's prefixes with these merged in."""
        wanted = parse_prefixes(body)

        def txn(conn: Connection) -> dict[str, Any]:
            self.core.policy.enforce(ctx, "add_prefixes",
                                     pool_target(self.fetch(conn, ctx, pool_id)))
            current = self._prefixes(conn, pool_id)
            if wanted:
                self._write(conn, ctx, pool_id, {"prefixes": current + wanted})
            return {"prefixes": list(compact(self._prefixes(conn, pool_id)))}

        result = self.core.db.write(txn)
        LOG.info("Subnet pool %s: added prefixes %s", pool_id, wanted)
        return result

    def remove_prefixes(self, ctx: Context, pool_id: str, body: Any) -> dict[str, Any]:
        """PUT .../remove_prefixes: the pool's prefixes less these, unless a subnet uses
        any of the addresses removed."""
        wanted = parse_prefixes(body)

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, pool_id, for_update=True)
            self.core.policy.enforce(ctx, "remove_prefixes", pool_target(row))
            current = netaddr.IPSet(self._prefixes(conn, pool_id))
            removed = netaddr.IPSet(wanted)
            if not wanted or current.isdisjoint(removed):
                return {"prefixes": list(compact([str(c) for c in current.iter_cidrs()]))}
            taken = netaddr.IPSet([cidr for cidr, _ in self._taken(conn, pool_id)])
            if not taken.isdisjoint(removed):
                raise exc.IllegalSubnetPoolPrefixUpdate(
                    msg="One or more the prefixes to be removed is in use by a subnet")
            left = compact([str(c) for c in (current - removed).iter_cidrs()])
            if not left:
                raise exc.EmptySubnetPoolPrefixList()
            bump_revision(conn, SUBNETPOOLS, pool_id, utcnow())
            self._set_prefixes(conn, pool_id, left)
            return {"prefixes": list(left)}

        result = self.core.db.write(txn)
        LOG.info("Subnet pool %s: removed prefixes %s", pool_id, wanted)
        return result

    def delete(self, ctx: Context, pool_id: str) -> None:
        """Delete a pool no subnet was taken from."""

        def txn(conn: Connection) -> None:
            row = self.fetch(conn, ctx, pool_id, for_update=True)
            self.core.policy.enforce(ctx, "delete_subnetpool", pool_target(row))
            if self._taken(conn, pool_id):
                raise exc.SubnetPoolDeleteError(reason="Subnet pool has existing allocations")
            conn.execute(delete(SUBNETPOOL_PREFIXES).where(
                SUBNETPOOL_PREFIXES.c.subnetpool_id == pool_id))
            conn.execute(delete(SUBNETPOOLS).where(SUBNETPOOLS.c.id == pool_id))
            delete_tags(conn, [pool_id])

        self.core.db.write(txn)
        LOG.info("Deleted subnet pool %s", pool_id)

    # -- subnets -----------------------------------------------------------------------

    def pool_for(self, conn: Connection, body: dict[str, Any]) -> str | None:
        """The pool a subnet create names: `subnetpool_id`, or with
        `use_default_subnetpool` the default pool of its IP version."""
        pool_id = body.get("subnetpool_id")
        if not body.get("use_default_subnetpool"):
            return pool_id
        if pool_id is not None:
            raise exc.BadRequest(resource="subnets", msg="subnetpool_id and "
                                 "use_default_subnetpool cannot both be specified")
        version = int(body["ip_version"])
        found = conn.execute(select(SUBNETPOOLS.c.id).where(
            SUBNETPOOLS.c.is_default.is_(True), SUBNETPOOLS.c.ip_version == version)).first()
        if found is None:
            raise exc.BadRequest(resource="subnets",
                                 msg=f"No default subnetpool found for IPv{version}")
        return str(found.id)

    def allocate(self, conn: Connection, ctx: Context, pool_id: str, project: str,
                 body: dict[str, Any]) -> str:
        """The CIDR a new subnet of `project` takes from the pool: the one it asks for, if
        free, or the first free block of its `prefixlen` (the pool's default)."""
        pool = self.fetch(conn, ctx, pool_id, for_update=True)
        version = int(body["ip_version"])
        if version != pool.ip_version:
            raise exc.BadRequest(resource="subnets", msg=(
                f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} subnet pool"))
        wanted = body.get("cidr")
        if wanted is None and body.get("allocation_pools"):
            raise exc.BadRequest(resource="subnets", msg="allocation_pools allowed only for "
                                                         "specific subnet requests.")
        prefixlen = netaddr.IPNetwork(wanted).prefixlen if wanted is not None \
            else body.get("prefixlen", pool.default_prefixlen)
        if prefixlen > pool.max_prefixlen:
            raise exc.MaxPrefixSubnetAllocationError(prefixlen=prefixlen,
                                                     max_prefixlen=pool.max_prefixlen)
        if prefixlen < pool.min_prefixlen:
            raise exc.MinPrefixSubnetAllocationError(prefixlen=prefixlen,
                                                     min_prefixlen=pool.min_prefixlen)
        taken = self._taken(conn, pool_id)
        if pool.default_quota is not None:
            used = sum(quota_units(cidr, version) for cidr, owner in taken if owner == project)
            if used + 2 ** max(QUOTA_UNIT[version] - prefixlen, 0) > pool.default_quota:
                raise exc.SubnetPoolQuotaExceeded()
        free = free_blocks(self._prefixes(conn, pool_id), [cidr for cidr, _ in taken])
        if wanted is not None:
            if not any(netaddr.IPNetwork(wanted) in block for block in free):
                raise exc.SubnetAllocationError(reason="Cannot allocate requested subnet "
                                                       "from the available set of prefixes")
            return str(wanted)
        found = carve(free, prefixlen)
        if found is None:
            raise exc.SubnetAllocationError(
                reason=f"Insufficient prefix space to allocate subnet size /{prefixlen}")
        return found
