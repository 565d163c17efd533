"""Pieces every resource service uses: clock, ids, standard attributes, tags, revisions."""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from oslo_config import cfg
from sqlalchemy import ColumnElement, Connection, Row, Table, delete, insert, select, update

from neutrino import exceptions as exc
from neutrino.db import listing
from neutrino.db.api import Database
from neutrino.db.listing import Page
from neutrino.db.models import TAGS
from neutrino.schema.policy import Context, Enforcer
from neutrino.schema.request import Query
from neutrino.schema.resources import MISSING, Resource

LOG = logging.getLogger(__name__)


def utcnow() -> str:
    """The current time as it is stored and rendered: `2026-11-20T23:22:01Z`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A new resource id."""
    return str(uuid.uuid4())


def load_tags(conn: Connection, ids: Iterable[str] | Page) -> dict[str, list[str]]:
    """Tags of the given resources (or of a page's), sorted, by resource id."""
    if isinstance(ids, Page):
        where = ids.holds(TAGS.c.resource_id)
    else:
        where = TAGS.c.resource_id.in_(list(ids))
    tags: dict[str, list[str]] = defaultdict(list)
    for resource_id, tag in conn.execute(select(TAGS.c.resource_id, TAGS.c.tag)
                                         .where(where)).all():
        tags[resource_id].append(tag)
    for values in tags.values():
        values.sort()
    return tags


def insert_tags(conn: Connection, resource_id: str, tags: Iterable[str]) -> list[str]:
    """Tag a new resource; return its tags sorted."""
    wanted = sorted(set(tags))
    if wanted:
        conn.execute(insert(TAGS), [{"resource_id": resource_id, "tag": t} for t in wanted])
    return wanted


def replace_tags(conn: Connection, resource_id: str, tags: Iterable[str]) -> list[str]:
    """Set the tags of a resource to exactly `tags`; return them sorted."""
    conn.execute(delete(TAGS).where(TAGS.c.resource_id == resource_id))
    return insert_tags(conn, resource_id, tags)


def delete_tags(conn: Connection, resource_ids: Iterable[str]) -> None:
    """Forget the tags of deleted resources."""
    ids = list(resource_ids)
    for start in range(0, len(ids), 5000):
        conn.execute(delete(TAGS).where(TAGS.c.resource_id.in_(ids[start:start + 5000])))


def bump_revision(conn: Connection, table: Table, resource_id: str, now: str,
                  values: dict[str, Any] | None = None) -> None:
    """Apply `values` to a row and count the change in its revision number."""
    conn.execute(update(table).where(table.c.id == resource_id).values(
        **(values or {}), updated_at=now, revision_number=table.c.revision_number + 1))


def _nothing(*_args: Any) -> None:
    return None


@dataclass
class Core:
    """What services share: configuration, database, policy, and hooks between services.

    The hooks let the resource services call the DHCP scheduler and the change feed without
    depending on them: `notify` after a committed write, `dhcp_needed` when a network gains
    a DHCP subnet or a port on one, `dhcp_subnet` when a DHCP subnet is added.
    """

    conf: cfg.ConfigOpts
    db: Database
    policy: Enforcer
    notify: Callable[[], None] = _nothing
    dhcp_needed: Callable[[Connection, str], None] = _nothing
    dhcp_subnet: Callable[[Connection, str, str], None] = _nothing
    quota_check: Callable[[Connection, str, Counter[str]], None] = _nothing

    def project_for(self, ctx: Context, body: dict[str, Any]) -> str:
        """The project a new resource belongs to: the caller's, or (admins) the named one."""
        requested = body.get("project_id")
        if requested is not None and requested != (ctx.project_id or "") and not ctx.is_admin:
            raise exc.BadRequest(
                resource="resource",
                msg="Specifying 'project_id' or 'tenant_id' other than the authenticated "
                    "project in request requires admin privileges")
        return str(requested if requested is not None else ctx.project_id or "")


def enforce_attrs(core: Core, ctx: Context, resource: Resource, action: str,
                  body: dict[str, Any], target: dict[str, Any]) -> None:
    """Enforce the attribute rules (`create_port:mac_address`, ...) for what `body` sets.

    On create, a value equal to the attribute's default was not asked for, so it is not
    checked: a member's network is created with `shared: False` without being an admin.
    """
    for attr in resource.attrs:
        if not attr.policy or attr.name not in body:
            continue
        if action == "create" and attr.default is not MISSING and body[attr.name] == attr.default:
            continue
        core.policy.enforce(ctx, f"{action}_{resource.name}:{attr.name}", target)


class ResourceServiceBase:
    """What the services of the API's collections share: reading one resource or a page of
    them within the caller's scope, rendering, and bulk create."""

    table: Table
    resource: Resource  # the API definition of the rows of `table`
    quota_resource: str | None = None  # the quota an API create of it counts against

    def __init__(self, core: Core) -> None:
        self.core = core

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see, as conditions on `table` (none: everything)."""
        return []

    def fetch(self, conn: Connection, ctx: Context, resource_id: str) -> Any:
        """The row `ctx` may see, or the resource's NotFound (some services return the row
        with its parent, and then read one resource themselves)."""
        raise NotImplementedError

    def get(self, ctx: Context, resource_id: str) -> dict[str, Any]:
        """One resource."""
        with self.core.db.read() as conn:
            row = self.fetch(conn, ctx, resource_id)
            return self._render_for(conn, ctx, Page([dict(row._mapping)], False))[0]

    def list_page(self, ctx: Context, query: Query) -> tuple[list[dict[str, Any]], bool]:
        """A page of the resources `ctx` may see, and whether more follow."""
        with self.core.db.read() as conn:
            page = listing.list_rows(conn, self.resource, self.table, query, self.scope(ctx))
            return self._render_for(conn, ctx, page), page.more

    def _render_for(self, conn: Connection, ctx: Context, page: Page) -> list[dict[str, Any]]:
        """A page as `ctx` sees it (the same for every caller unless a service says)."""
        return self._render_page(conn, page)

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        """The API view of every row of a page (children and tags loaded in bulk)."""
        raise NotImplementedError

    def _render_one(self, conn: Connection, row: Row[Any]) -> dict[str, Any]:
        return self._render_page(conn, Page([dict(row._mapping)], False))[0]

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        """Create one resource within the caller's transaction; return its API view."""
        raise NotImplementedError

    def insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
               now: str) -> dict[str, Any]:
        """Create one resource within the caller's transaction, without a quota check (the
        server's own resources: DHCP ports, HA networks); its API view."""
        return self._insert(conn, ctx, body, now)

    def _describe(self, item: dict[str, Any]) -> str:
        """What the log says of a new resource besides its id."""
        return ""

    def create(self, ctx: Context, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create resources in one transaction: all of them or none."""

        def txn(conn: Connection) -> list[dict[str, Any]]:
            if self.quota_resource is not None:
                self.core.quota_check(conn, self.quota_resource,
                                      Counter(self.core.project_for(ctx, b) for b in bodies))
            now = utcnow()
            return [self._insert(conn, ctx, body, now) for body in bodies]

        created = self.core.db.write(txn)
        self.core.notify()
        kind = self.table.name[:-1]
        for item in created:
            LOG.info("Created %s %s %s", kind, item["id"], self._describe(item))
        return created
