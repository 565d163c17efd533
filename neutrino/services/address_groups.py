"""Address groups: named sets of CIDRs that security group rules name as their remote.

Addresses are kept in network form (10.0.0.5 is 10.0.0.5/32, 10.0.0.1/24 is 10.0.0.0/24)
and change only through `add_addresses` and `remove_addresses`; each change is logged for
the agents (`changes.record_address_group`) in its transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, insert, select

from neutrino import exceptions as exc
from neutrino.db.listing import Page
from neutrino.db.models import ADDRESS_GROUP_ADDRESSES, ADDRESS_GROUPS, SECURITY_GROUP_RULES
from neutrino.schema import validators as v
from neutrino.schema.policy import Context
from neutrino.schema.resources import ADDRESS_GROUP
from neutrino.services import changes
from neutrino.services.common import ResourceServiceBase, bump_revision, new_id, utcnow

LOG = logging.getLogger(__name__)


def ag_target(project_id: str) -> dict[str, Any]:
    """The policy target of an address group."""
    return {"project_id": project_id, "tenant_id": project_id}


def parse_addresses(body: Any) -> list[str]:
    """The addresses of an add_addresses/remove_addresses body, which is bare as in
    Neutron: `{"addresses": [CIDR, ...]}` (the answer is `{"address_group": {...}}`)."""
    if not isinstance(body, dict) or set(body) != {"addresses"}:
        raise exc.BadRequest(resource="address_group",
                             msg="Body must be {'addresses': [...]}")
    try:
        return list(v.cidr_list(bare_addresses=True)(body["addresses"]) or [])
    except v.Invalid as err:
        raise exc.InvalidInput(error_message=f"Invalid input for addresses. Reason: {err}") \
            from None


class AddressGroupService(ResourceServiceBase):
    """The rules of address groups."""

    table = ADDRESS_GROUPS
    resource = ADDRESS_GROUP

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: its project's address groups."""
        if ctx.is_admin:
            return []
        return [ADDRESS_GROUPS.c.project_id == (ctx.project_id or "")]

    def fetch(self, conn: Connection, ctx: Context, ag_id: str) -> Row[Any]:
        """The address group, or AddressGroupNotFound if absent or hidden from `ctx`."""
        row = conn.execute(select(ADDRESS_GROUPS).where(ADDRESS_GROUPS.c.id == ag_id)).first()
        if row is None or not self.core.policy.check(ctx, "get_address_group",
                                                     ag_target(row.project_id)):
            raise exc.AddressGroupNotFound(address_group_id=ag_id)
        return row

    def check_access(self, conn: Connection, ctx: Context, ag_id: str, action: str) -> None:
        """Raise unless `ctx` may do `action` on the address group."""
        row = self.fetch(conn, ctx, ag_id)
        self.core.policy.enforce(ctx, f"{action}_address_group", ag_target(row.project_id))

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        addresses: dict[str, list[str]] = defaultdict(list)
        for ag_id, address in conn.execute(
                select(ADDRESS_GROUP_ADDRESSES.c.address_group_id,
                       ADDRESS_GROUP_ADDRESSES.c.address)
                .where(page.holds(ADDRESS_GROUP_ADDRESSES.c.address_group_id))
                .order_by(ADDRESS_GROUP_ADDRESSES.c.address)):
            addresses[ag_id].append(address)
        return [ADDRESS_GROUP.render(r, addresses=addresses.get(r["id"], []))
                for r in page.rows]

    def _describe(self, item: dict[str, Any]) -> str:
        return f"({item['name'] or '-'}: {item['addresses']})"

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        project = self.core.project_for(ctx, body)
        self.core.policy.enforce(ctx, "create_address_group", ag_target(project))
        ag_id = new_id()
        conn.execute(insert(ADDRESS_GROUPS).values(
            id=ag_id, project_id=project, name=body["name"], description=body["description"],
            created_at=now, updated_at=now, revision_number=0))
        addresses = body.get("addresses") or []
        if addresses:
            conn.execute(insert(ADDRESS_GROUP_ADDRESSES),
                         [{"address_group_id": ag_id, "address": a} for a in addresses])
        changes.record_address_group(conn, ag_id)
        return self._render_one(conn, self.fetch(conn, Context.admin(), ag_id))

    def update(self, ctx: Context, ag_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Rename or describe an address group (addresses change through the actions)."""

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, ag_id)
            self.core.policy.enforce(ctx, "update_address_group", ag_target(row.project_id))
            bump_revision(conn, ADDRESS_GROUPS, ag_id, utcnow(),
                          {k: body[k] for k in ("name", "description") if k in body})
            return self._render_one(conn, self.fetch(conn, ctx, ag_id))

        item = self.core.db.write(txn)
        LOG.info("Updated address group %s: %s", ag_id, sorted(body))
        return item

    def _change(self, ctx: Context, ag_id: str, body: Any, adding: bool) -> dict[str, Any]:
        wanted = parse_addresses(body)
        action = "add_addresses" if adding else "remove_addresses"

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, ag_id)
            self.core.policy.enforce(ctx, action, ag_target(row.project_id))
            have = set(conn.execute(select(ADDRESS_GROUP_ADDRESSES.c.address).where(
                ADDRESS_GROUP_ADDRESSES.c.address_group_id == ag_id)).scalars())
            if adding:
                present = sorted(a for a in wanted if a in have)
                if present:
                    raise exc.AddressesAlreadyExist(addresses=present, address_group_id=ag_id)
                if wanted:
                    conn.execute(insert(ADDRESS_GROUP_ADDRESSES), [
                        {"address_group_id": ag_id, "address": a} for a in wanted])
            else:
                absent = sorted(a for a in wanted if a not in have)
                if absent:
                    raise exc.AddressesNotFound(addresses=absent, address_group_id=ag_id)
                conn.execute(delete(ADDRESS_GROUP_ADDRESSES).where(
                    ADDRESS_GROUP_ADDRESSES.c.address_group_id == ag_id,
                    ADDRESS_GROUP_ADDRESSES.c.address.in_(wanted)))
            if wanted:
                bump_revision(conn, ADDRESS_GROUPS, ag_id, utcnow())
                changes.record_address_group(conn, ag_id)
            return {"address_group": self._render_one(conn, self.fetch(conn, ctx, ag_id))}

        result = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Address group %s: %s %s", ag_id, "added" if adding else "removed", wanted)
        return result

    def add_addresses(self, ctx: Context, ag_id: str, body: Any) -> dict[str, Any]:
        """PUT .../add_addresses."""
        return self._change(ctx, ag_id, body, adding=True)

    def remove_addresses(self, ctx: Context, ag_id: str, body: Any) -> dict[str, Any]:
        """PUT .../remove_addresses."""
        return self._change(ctx, ag_id, body, adding=False)

    def delete(self, ctx: Context, ag_id: str) -> None:
        """Delete an address group no rule names."""

        def txn(conn: Connection) -> None:
            row = self.fetch(conn, ctx, ag_id)
            self.core.policy.enforce(ctx, "delete_address_group", ag_target(row.project_id))
            used = conn.execute(select(SECURITY_GROUP_RULES.c.id).where(
                SECURITY_GROUP_RULES.c.remote_address_group_id == ag_id).limit(1)).first()
            if used is not None:
                raise exc.AddressGroupInUse(address_group_id=ag_id)
            conn.execute(delete(ADDRESS_GROUP_ADDRESSES).where(
                ADDRESS_GROUP_ADDRESSES.c.address_group_id == ag_id))
            conn.execute(delete(ADDRESS_GROUPS).where(ADDRESS_GROUPS.c.id == ag_id))
            changes.record_address_group(conn, ag_id)

        self.core.db.write(txn)
        self.core.notify()
        LOG.info("Deleted address group %s", ag_id)
