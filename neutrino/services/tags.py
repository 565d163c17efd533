"""The protocol of resource services, and the tags API on any resource.

Tags are read, replaced, added and removed; each change counts as a revision.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy import Connection, Table, delete, insert, select

from neutrino import exceptions as exc
from neutrino.schema.policy import Context
from neutrino.schema.request import Query
from neutrino.services.common import TAGS, Core, bump_revision, replace_tags, utcnow

LOG = logging.getLogger(__name__)


class Guarded(Protocol):
    """A resource service that can check a caller's access to one of its resources."""

    table: Table

    def check_access(self, conn: Connection, ctx: Context, resource_id: str,
                     action: str) -> None:
        """Raise NotFound if `ctx` cannot see the resource, NotAuthorized if it may not act."""


class ResourceService(Guarded, Protocol):
    """What the API needs of the service of a collection."""

    def get(self, ctx: Context, resource_id: str) -> dict[str, Any]:
        """One resource."""

    def list_page(self, ctx: Context, query: Query) -> tuple[list[dict[str, Any]], bool]:
        """A page of resources and whether more follow."""

    def create(self, ctx: Context, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create resources (all or none)."""

    def update(self, ctx: Context, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a resource."""

    def delete(self, ctx: Context, resource_id: str) -> None:
        """Delete a resource."""


class TagService:
    """Tags of networks, subnets and ports."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def _tags(self, conn: Connection, resource_id: str) -> list[str]:
        return sorted(conn.execute(select(TAGS.c.tag).where(
            TAGS.c.resource_id == resource_id)).scalars())

    def get_all(self, ctx: Context, owner: Guarded, resource_id: str) -> list[str]:
        """The tags of a resource."""
        with self.core.db.read() as conn:
            owner.check_access(conn, ctx, resource_id, "get")
            return self._tags(conn, resource_id)

    def has(self, ctx: Context, owner: Guarded, resource_id: str, tag: str) -> None:
        """Nothing if the resource carries `tag`, else TagNotFound."""
        with self.core.db.read() as conn:
            owner.check_access(conn, ctx, resource_id, "get")
            if tag not in self._tags(conn, resource_id):
                raise exc.TagNotFound(tag=tag, resource=owner.table.name[:-1],
                                      resource_id=resource_id)

    def _change(self, ctx: Context, owner: Guarded, resource_id: str,
                change: Any) -> list[str]:
        def txn(conn: Connection) -> list[str]:
            owner.check_access(conn, ctx, resource_id, "update")
            before = self._tags(conn, resource_id)
            change(conn, before)
            after = self._tags(conn, resource_id)
            if after != before:
                bump_revision(conn, owner.table, resource_id, utcnow())
            return after

        tags = self.core.db.write(txn)
        LOG.info("Tags of %s %s are now %s", owner.table.name[:-1], resource_id, tags)
        return tags

    def replace(self, ctx: Context, owner: Guarded, resource_id: str,
                tags: list[str]) -> list[str]:
        """Set exactly these tags."""
        return self._change(ctx, owner, resource_id,
                            lambda conn, _before: replace_tags(conn, resource_id, tags))

    def add(self, ctx: Context, owner: Guarded, resource_id: str, tag: str) -> None:
        """Add one tag (adding a present tag changes nothing)."""

        def change(conn: Connection, before: list[str]) -> None:
            if tag not in before:
                conn.execute(insert(TAGS).values(resource_id=resource_id, tag=tag))

        self._change(ctx, owner, resource_id, change)

    def add_many(self, ctx: Context, owner: Guarded, resource_id: str,
                 tags: list[str]) -> list[str]:
        """Add these tags to those the resource has (`POST .../tags`, `tag-creation`)."""
        return self._change(ctx, owner, resource_id, lambda conn, before: replace_tags(
            conn, resource_id, sorted(set(before) | set(tags))))

    def remove(self, ctx: Context, owner: Guarded, resource_id: str, tag: str) -> None:
        """Remove one tag, or TagNotFound."""

        def change(conn: Connection, before: list[str]) -> None:
            if tag not in before:
                raise exc.TagNotFound(tag=tag, resource=owner.table.name[:-1],
                                      resource_id=resource_id)
            conn.execute(delete(TAGS).where(TAGS.c.resource_id == resource_id,
                                            TAGS.c.tag == tag))

        self._change(ctx, owner, resource_id, change)

    def clear(self, ctx: Context, owner: Guarded, resource_id: str) -> None:
        """Remove every tag."""
        self._change(ctx, owner, resource_id,
                     lambda conn, _before: replace_tags(conn, resource_id, []))
