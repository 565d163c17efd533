"""Security groups: each project's `default` group, made on first use, and other groups.

A new group comes with Neutron's template rules: two egress rules (IPv4 and IPv6, any
protocol, anywhere), and for `default` also two ingress rules from the group itself. One
default per project is the `default_security_groups` key, so two requests racing to make
it leave one: the loser's transaction is retried and finds the winner's. Every write logs
the group's change (`changes.record_group`) in its transaction; rules are in
`security_group_rules.py`.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, bindparam, delete, insert, select

from neutrino import exceptions as exc
from neutrino.db import listing
from neutrino.db.listing import Page
from neutrino.db.models import (
    DEFAULT_SECURITY_GROUPS,
    SECURITY_GROUP_RULES,
    SECURITY_GROUPS,
    SG_PORT_BINDINGS,
)
from neutrino.schema.policy import Context
from neutrino.schema.request import Query
from neutrino.schema.resources import SECURITY_GROUP, SECURITY_GROUP_RULE
from neutrino.services import changes
from neutrino.services.common import (
    ResourceServiceBase,
    bump_revision,
    delete_tags,
    insert_tags,
    load_tags,
    new_id,
    replace_tags,
    utcnow,
)

LOG = logging.getLogger(__name__)
DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"


def group_target(project_id: str) -> dict[str, Any]:
    """The policy target of a group."""
    return {"project_id": project_id, "tenant_id": project_id}


def render_rule(m: Any, in_default: bool) -> dict[str, Any]:
    """A rule row as the API shows it."""
    return SECURITY_GROUP_RULE.render(m, belongs_to_default_sg=in_default)


def default_group_ids(conn: Connection, group_ids: Iterable[str] | ColumnElement[bool],
                      ) -> set[str]:
    """Which of the groups are their project's default."""
    where = group_ids if isinstance(group_ids, ColumnElement) else \
        DEFAULT_SECURITY_GROUPS.c.security_group_id.in_(list(group_ids))
    return set(conn.execute(select(DEFAULT_SECURITY_GROUPS.c.security_group_id)
                            .where(where)).scalars())


def template_rules(group_id: str, project: str, default: bool,
                   now: str) -> list[dict[str, Any]]:
    """The rules a new group starts with (Neutron's default template)."""
    rules: list[tuple[str, str, str | None]] = [("egress", "IPv4", None),
                                                ("egress", "IPv6", None)]
    if default:
        rules += [("ingress", "IPv4", group_id), ("ingress", "IPv6", group_id)]
    return [{"id": new_id(), "project_id": project, "security_group_id": group_id,
             "direction": direction, "ethertype": ethertype, "protocol": None,
             "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
             "normalized_cidr": None, "remote_group_id": remote,
             "remote_address_group_id": None, "description": "", "created_at": now,
             "updated_at": now, "revision_number": 0}
            for direction, ethertype, remote in rules]


def insert_group(conn: Connection, project: str, name: str, description: str,
                 stateful: bool, default: bool, now: str) -> str:
    """A new group with its template rules, logged for the agents; its id."""
    group_id = new_id()
    conn.execute(insert(SECURITY_GROUPS).values(
        id=group_id, project_id=project, name=name, description=description,
        created_at=now, updated_at=now, revision_number=0, stateful=stateful))
    if default:
        conn.execute(insert(DEFAULT_SECURITY_GROUPS).values(project_id=project,
                                                            security_group_id=group_id))
    conn.execute(insert(SECURITY_GROUP_RULES), template_rules(group_id, project, default, now))
    changes.record_group(conn, group_id)
    return group_id


def port_groups(conn: Connection, port_ids: Iterable[str] | ColumnElement[bool],
                ) -> dict[str, list[str]]:
    """The security groups of ports, sorted, by port id."""
    where = port_ids if isinstance(port_ids, ColumnElement) else \
        SG_PORT_BINDINGS.c.port_id.in_(list(port_ids))
    groups: dict[str, list[str]] = defaultdict(list)
    for port_id, group_id in conn.execute(select(SG_PORT_BINDINGS.c.port_id,
                                                 SG_PORT_BINDINGS.c.security_group_id)
                                          .where(where)):
        groups[port_id].append(group_id)
    for values in groups.values():
        values.sort()
    return groups


# Prepared once: every port created with port security asks it.
_DEFAULT_OF = select(DEFAULT_SECURITY_GROUPS.c.security_group_id).where(
    DEFAULT_SECURITY_GROUPS.c.project_id == bindparam("project_id"))


class SecurityGroupService(ResourceServiceBase):
    """The rules of security groups."""

    table = SECURITY_GROUPS
    resource = SECURITY_GROUP
    quota_resource = "security_group"

    # -- the default group ------------------------------------------------------------------

    def ensure_default(self, conn: Connection, ctx: Context, project: str) -> str | None:
        """The project's default group, made now if it has none. None when `ctx` may not
        make another project's (Neutron's rule: only admins do)."""
        found = conn.execute(_DEFAULT_OF, {"project_id": project}).scalar()
        if found is not None:
            return str(found)
        if project != (ctx.project_id or "") and not ctx.is_admin:
            return None
        group_id = insert_group(conn, project, DEFAULT_NAME, DEFAULT_DESCRIPTION, True, True,
                                utcnow())
        LOG.info("Created the default security group %s of project %s", group_id, project)
        return group_id

    def ensure_default_for_list(self, ctx: Context, query: Query) -> None:
        """Before a list: the project listed (or the caller's) has its default group."""
        wanted = query.filters.get("project_id") or [ctx.project_id]
        project = wanted[0]
        if not project or not isinstance(project, str) or (
                project != ctx.project_id and not ctx.is_admin):
            return
        with self.core.db.read() as conn:
            if conn.execute(select(DEFAULT_SECURITY_GROUPS.c.project_id).where(
                    DEFAULT_SECURITY_GROUPS.c.project_id == project)).first() is not None:
                return
        if self.core.db.write(lambda conn: self.ensure_default(conn, ctx, project)):
            self.core.notify()

    # -- reading ----------------------------------------------------------------------------

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: its project's groups."""
        if ctx.is_admin:
            return []
        return [SECURITY_GROUPS.c.project_id == (ctx.project_id or "")]

    def fetch(self, conn: Connection, ctx: Context, group_id: str,
              for_update: bool = False) -> Row[Any]:
        """The group row, or SecurityGroupNotFound if absent or hidden from `ctx`."""
        stmt = select(SECURITY_GROUPS).where(SECURITY_GROUPS.c.id == group_id)
        if for_update and not self.core.db.is_sqlite:
            stmt = stmt.with_for_update()
        row = conn.execute(stmt).first()
        if row is None or not self.core.policy.check(ctx, "get_security_group",
                                                     group_target(row.project_id)):
            raise exc.SecurityGroupNotFound(id=group_id)
        return row

    def check_access(self, conn: Connection, ctx: Context, group_id: str,
                     action: str) -> None:
        """Raise unless `ctx` may do `action` (get, update, delete) on the group."""
        row = self.fetch(conn, ctx, group_id)
        self.core.policy.enforce(ctx, f"{action}_security_group", group_target(row.project_id))

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        rules: dict[str, list[dict[str, Any]]] = defaultdict(list)
        defaults = default_group_ids(conn, page.holds(
            DEFAULT_SECURITY_GROUPS.c.security_group_id))
        for rule in conn.execute(select(SECURITY_GROUP_RULES).where(
                page.holds(SECURITY_GROUP_RULES.c.security_group_id))
                .order_by(SECURITY_GROUP_RULES.c.created_at, SECURITY_GROUP_RULES.c.id)):
            m = rule._mapping
            rules[m["security_group_id"]].append(
                render_rule(m, m["security_group_id"] in defaults))
        tags = load_tags(conn, page)
        return [SECURITY_GROUP.render(r, tags=tags.get(r["id"], []), shared=False,
                                      security_group_rules=rules.get(r["id"], []))
                for r in page.rows]

    def list_page(self, ctx: Context, query: Query) -> tuple[list[dict[str, Any]], bool]:
        """A page of groups and whether more follow (no group is shared)."""
        self.ensure_default_for_list(ctx, query)
        shared = query.filters.pop("shared", None)
        if shared is not None and False not in shared:
            return [], False
        with self.core.db.read() as conn:
            page = listing.list_rows(conn, SECURITY_GROUP, SECURITY_GROUPS, query,
                                     self.scope(ctx))
            return self._render_page(conn, page), page.more

    # -- writes -----------------------------------------------------------------------------

    def _describe(self, item: dict[str, Any]) -> str:
        return f"({item['name'] or '-'}, project {item['project_id']})"

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        project = self.core.project_for(ctx, body)
        self.core.policy.enforce(ctx, "create_security_group", group_target(project))
        self.ensure_default(conn, ctx, project)
        # The group's template rules count against the rules quota, as in Neutron.
        self.core.quota_check(conn, "security_group_rule", Counter(
            {project: len(template_rules("", project, False, now))}))
        group_id = insert_group(conn, project, body["name"], body["description"],
                                body["stateful"], False, now)
        insert_tags(conn, group_id, body.get("tags", []))
        return self._render_one(conn, self.fetch(conn, Context.admin(), group_id))

    def update(self, ctx: Context, group_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Rename, describe, tag, or make (un)stateful a group no port uses."""

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, group_id)
            self.core.policy.enforce(ctx, "update_security_group", group_target(row.project_id))
            if "name" in body and (row.name == DEFAULT_NAME or default_group_ids(
                    conn, [group_id])):
                raise exc.SecurityGroupCannotUpdateDefault()
            if "stateful" in body and body["stateful"] != row.stateful and self._in_use(
                    conn, group_id):
                raise exc.SecurityGroupInUse(id=group_id)
            values: dict[str, Any] = {k: body[k] for k in ("name", "description", "stateful")
                                      if k in body}
            bump_revision(conn, SECURITY_GROUPS, group_id, utcnow(), values)
            if "tags" in body:
                replace_tags(conn, group_id, body["tags"])
            changes.record_group(conn, group_id)
            return self._render_one(conn, self.fetch(conn, ctx, group_id))

        group = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Updated security group %s: %s", group_id, sorted(body))
        return group

    @staticmethod
    def _in_use(conn: Connection, group_id: str) -> bool:
        return conn.execute(select(SG_PORT_BINDINGS.c.port_id).where(
            SG_PORT_BINDINGS.c.security_group_id == group_id).limit(1)).first() is not None

    def delete(self, ctx: Context, group_id: str) -> None:
        """Delete a group no port uses; only an admin deletes a default group. Rules of
        other groups naming it as their remote go with it, as in Neutron."""

        def txn(conn: Connection) -> None:
            row = self.fetch(conn, ctx, group_id)
            self.core.policy.enforce(ctx, "delete_security_group", group_target(row.project_id))
            if self._in_use(conn, group_id):
                raise exc.SecurityGroupInUse(id=group_id)
            if not ctx.is_admin and default_group_ids(conn, [group_id]):
                raise exc.SecurityGroupCannotRemoveDefault()
            others = set(conn.execute(select(SECURITY_GROUP_RULES.c.security_group_id).where(
                SECURITY_GROUP_RULES.c.remote_group_id == group_id,
                SECURITY_GROUP_RULES.c.security_group_id != group_id)).scalars())
            conn.execute(delete(SECURITY_GROUP_RULES).where(
                (SECURITY_GROUP_RULES.c.security_group_id == group_id)
                | (SECURITY_GROUP_RULES.c.remote_group_id == group_id)))
            conn.execute(delete(DEFAULT_SECURITY_GROUPS).where(
                DEFAULT_SECURITY_GROUPS.c.security_group_id == group_id))
            conn.execute(delete(SECURITY_GROUPS).where(SECURITY_GROUPS.c.id == group_id))
            delete_tags(conn, [group_id])
            now = utcnow()
            for other in sorted(others):
                bump_revision(conn, SECURITY_GROUPS, other, now)
                changes.record_group(conn, other)
            changes.record_group(conn, group_id)

        self.core.db.write(txn)
        self.core.notify()
        LOG.info("Deleted security group %s", group_id)
