"""Address scopes (`address-scope`): sets of subnet pools whose prefixes never overlap.

A scope holds pools of one IP version; a network shows the scope of its subnets' pool as
`ipv4_address_scope` / `ipv6_address_scope`. A shared scope takes pools from any project
and cannot become private again; a scope with pools cannot be deleted.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, insert, or_, select, update

from neutrino import exceptions as exc
from neutrino.db.listing import Page
from neutrino.db.models import ADDRESS_SCOPES, SUBNETPOOLS
from neutrino.schema.policy import Context
from neutrino.schema.resources import ADDRESS_SCOPE
from neutrino.services.common import ResourceServiceBase, enforce_attrs, new_id

LOG = logging.getLogger(__name__)


def scope_target(row: Row[Any] | dict[str, Any]) -> dict[str, Any]:
    """The policy target of an address scope."""
    m = row._mapping if isinstance(row, Row) else row
    return {"project_id": m["project_id"], "tenant_id": m["project_id"],
            "shared": bool(m["shared"])}


class AddressScopeService(ResourceServiceBase):
    """The rules of address scopes."""

    table = ADDRESS_SCOPES
    resource = ADDRESS_SCOPE

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: its project's scopes and shared ones."""
        if ctx.is_admin:
            return []
        return [or_(ADDRESS_SCOPES.c.project_id == (ctx.project_id or ""),
                    ADDRESS_SCOPES.c.shared.is_(True))]

    def fetch(self, conn: Connection, ctx: Context, scope_id: str) -> Row[Any]:
        """The scope, or AddressScopeNotFound if absent or hidden from `ctx`."""
        row = conn.execute(select(ADDRESS_SCOPES).where(ADDRESS_SCOPES.c.id == scope_id)).first()
        if row is None or not self.core.policy.check(ctx, "get_address_scope",
                                                     scope_target(row)):
            raise exc.AddressScopeNotFound(address_scope_id=scope_id)
        return row

    def check_access(self, conn: Connection, ctx: Context, scope_id: str, action: str) -> None:
        """Raise unless `ctx` may do `action` on the scope."""
        self.core.policy.enforce(ctx, f"{action}_address_scope",
                                 scope_target(self.fetch(conn, ctx, scope_id)))

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        return [ADDRESS_SCOPE.render(r) for r in page.rows]

    def _describe(self, item: dict[str, Any]) -> str:
        return f"({item['name'] or '-'}, IPv{item['ip_version']})"

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        project = self.core.project_for(ctx, body)
        target = scope_target({"project_id": project, "shared": body["shared"]})
        self.core.policy.enforce(ctx, "create_address_scope", target)
        enforce_attrs(self.core, ctx, ADDRESS_SCOPE, "create", body, target)
        row = {"id": new_id(), "project_id": project, "name": body["name"],
               "shared": body["shared"], "ip_version": int(body["ip_version"])}
        conn.execute(insert(ADDRESS_SCOPES).values(**row))
        return ADDRESS_SCOPE.render(row)

    def update(self, ctx: Context, scope_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Rename a scope, or share it (admins); a shared scope stays shared."""

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, scope_id)
            target = scope_target(row)
            self.core.policy.enforce(ctx, "update_address_scope", target)
            enforce_attrs(self.core, ctx, ADDRESS_SCOPE, "update", body, target)
            if row.shared and body.get("shared") is False:
                raise exc.AddressScopeUpdateError(address_scope_id=scope_id,
                                                  reason="Shared address scope can't be "
                                                         "unshared")
            if body:
                conn.execute(update(ADDRESS_SCOPES).where(ADDRESS_SCOPES.c.id == scope_id)
                             .values(**body))
            return self._render_one(conn, self.fetch(conn, ctx, scope_id))

        item = self.core.db.write(txn)
        LOG.info("Updated address scope %s: %s", scope_id, sorted(body))
        return item

    def delete(self, ctx: Context, scope_id: str) -> None:
        """Delete a scope no subnet pool belongs to."""

        def txn(conn: Connection) -> None:
            row = self.fetch(conn, ctx, scope_id)
            self.core.policy.enforce(ctx, "delete_address_scope", scope_target(row))
            used = conn.execute(select(SUBNETPOOLS.c.id).where(
                SUBNETPOOLS.c.address_scope_id == scope_id).limit(1)).first()
            if used is not None:
                raise exc.AddressScopeInUse(address_scope_id=scope_id)
            conn.execute(delete(ADDRESS_SCOPES).where(ADDRESS_SCOPES.c.id == scope_id))

        self.core.db.write(txn)
        LOG.info("Deleted address scope %s", scope_id)
