"""Quotas: how many of each resource a project may have (Neutron's `quotas` and
`quota_details` extensions).

Limits are `[QUOTAS] quota_<resource>` unless a project has its own row. A create counts the
project's resources inside its own transaction: on SQLite the writer holds the database; on
PostgreSQL and MariaDB it first locks the project's row in `quota_locks`, so that two
concurrent creates cannot both take the last unit. What the server makes on its own (DHCP
ports, a router's gateway port, the default security group) is counted but never refused,
as in Neutron, which checks quotas on API requests only.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select
from sqlalchemy.dialects import mysql, postgresql

from neutrino import exceptions as exc
from neutrino.db.models import (
    FLOATINGIPS,
    NETWORK_RBACS,
    NETWORKS,
    PORTS,
    QUOTA_LOCKS,
    QUOTAS,
    ROUTERS,
    SECURITY_GROUP_RULES,
    SECURITY_GROUPS,
    SUBNETPOOLS,
    SUBNETS,
)
from neutrino.schema import validators as v
from neutrino.schema.policy import Context
from neutrino.services.common import Core

LOG = logging.getLogger(__name__)
DB_INTEGER_MAX = 2**31 - 1  # a quota limit is a signed 32-bit column in Neutron

# The resources quotas count, and where (each row has a project_id).
COUNTED: dict[str, Table] = {
    "network": NETWORKS, "subnet": SUBNETS, "port": PORTS, "router": ROUTERS,
    "floatingip": FLOATINGIPS, "security_group": SECURITY_GROUPS,
    "security_group_rule": SECURITY_GROUP_RULES, "subnetpool": SUBNETPOOLS,
    "rbac_policy": NETWORK_RBACS,
}


_PROJECT_LIMIT = select(QUOTAS.c.limit).where(QUOTAS.c.project_id == bindparam("project_id"),
                                              QUOTAS.c.resource == bindparam("resource"))


def unlimited() -> dict[str, int]:
    """A `[QUOTAS]` section lifting every limit: for benchmarks and test servers whose
    workloads make tens of thousands of resources in one project."""
    return {"default_quota": -1, **{f"quota_{r}": -1 for r in COUNTED}}


def _target(project_id: str) -> dict[str, str]:
    return {"project_id": project_id, "tenant_id": project_id}


class QuotaService:
    """Limits, usage and the check every API create makes."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def default(self, resource: str) -> int:
        """A resource's configured limit (`quota_<resource>`, else `default_quota`)."""
        quotas = self.core.conf.QUOTAS
        return int(getattr(quotas, f"quota_{resource}", quotas.default_quota))

    def defaults(self) -> dict[str, int]:
        """The configured limit of every counted resource."""
        return {r: self.default(r) for r in COUNTED}

    def _limits(self, conn: Connection, project_id: str) -> dict[str, int]:
        limits = self.defaults()
        for resource, limit in conn.execute(select(QUOTAS.c.resource, QUOTAS.c.limit).where(
                QUOTAS.c.project_id == project_id)):
            if resource in limits:
                limits[resource] = int(limit)
        return limits

    @staticmethod
    def _used(conn: Connection, project_id: str, resource: str) -> int:
        table = COUNTED[resource]
        return int(conn.execute(select(func.count()).select_from(table).where(
            table.c.project_id == project_id)).scalar() or 0)

    def _lock(self, conn: Connection, project_id: str, resource: str) -> None:
        """Serialise the project's creates of `resource` until the transaction ends."""
        dialect = conn.dialect.name
        if dialect == "sqlite":
            return  # the writer already holds the database (BEGIN IMMEDIATE)
        row = {"project_id": project_id, "resource": resource}
        if dialect == "postgresql":
            conn.execute(postgresql.insert(QUOTA_LOCKS).values(row).on_conflict_do_nothing())
        else:
            conn.execute(mysql.insert(QUOTA_LOCKS).values(row).prefix_with("IGNORE"))
        conn.execute(select(QUOTA_LOCKS.c.project_id).where(
            QUOTA_LOCKS.c.project_id == project_id, QUOTA_LOCKS.c.resource == resource)
            .with_for_update())

    def _limit(self, conn: Connection, project_id: str, resource: str) -> int:
        """One resource's limit for a project (one prepared read: every create asks)."""
        own = conn.execute(_PROJECT_LIMIT, {"project_id": project_id,
                                            "resource": resource}).scalar()
        return int(own) if own is not None else self.default(resource)

    def check(self, conn: Connection, resource: str, wanted: Counter[str]) -> None:
        """Refuse (OverQuota) creates that would take a project past its limit; `wanted`
        counts the new resources by project. Called inside the creating transaction."""
        for project_id, count in sorted(wanted.items()):
            limit = self._limit(conn, project_id, resource)
            if limit < 0:
                continue
            self._lock(conn, project_id, resource)
            used = self._used(conn, project_id, resource)
            if used + count > limit:
                LOG.info("Project %s is at its %s quota (%d of %d; %d more asked)",
                         project_id, resource, used, limit, count)
                raise exc.OverQuota(overs=[resource])

    # -- the API ----------------------------------------------------------------------

    def show(self, ctx: Context, project_id: str) -> dict[str, int]:
        """A project's limits."""
        self.core.policy.enforce(ctx, "get_quota", _target(project_id))
        with self.core.db.read() as conn:
            return self._limits(conn, project_id)

    def show_default(self, ctx: Context, project_id: str) -> dict[str, int]:
        """The limits a project without its own has."""
        self.core.policy.enforce(ctx, "get_quota", _target(project_id))
        return self.defaults()

    def details(self, ctx: Context, project_id: str) -> dict[str, dict[str, int]]:
        """A project's limits with what it uses (nothing is reserved: creates count in
        their own transaction)."""
        self.core.policy.enforce(ctx, "get_quota", _target(project_id))
        with self.core.db.read() as conn:
            limits = self._limits(conn, project_id)
            return {r: {"limit": limit, "used": self._used(conn, project_id, r),
                        "reserved": 0} for r, limit in limits.items()}

    def list_all(self, ctx: Context) -> list[dict[str, Any]]:
        """Every project with limits of its own."""
        self.core.policy.enforce(ctx, "get_quota", _target(ctx.project_id or ""))
        with self.core.db.read() as conn:
            projects = sorted(set(conn.execute(select(QUOTAS.c.project_id)).scalars()))
            if not ctx.is_admin:
                projects = [p for p in projects if p == ctx.project_id]
            return [{**self._limits(conn, p), "project_id": p, "tenant_id": p}
                    for p in projects]

    def caller_project(self, ctx: Context) -> str:
        """The caller's own project (`GET /v2.0/quotas/project`), which a client asks for
        before it shows "its" quotas."""
        if not ctx.project_id:
            raise exc.QuotaMissingTenant()
        return ctx.project_id

    def update(self, ctx: Context, project_id: str, body: Any) -> dict[str, int]:
        """Set some of a project's limits (admins). A limit below what the project already
        uses is refused unless the body says `force: true`, as Neutron checks since 2025.1
        (`check_limit`, which asked for the check before, is accepted and changes nothing)."""
        self.core.policy.enforce(ctx, "update_quota", _target(project_id))
        changes, force = parse_quota_body(body)

        def txn(conn: Connection) -> dict[str, int]:
            for resource, limit in sorted(changes.items()):
                if force or limit < 0:
                    continue
                used = self._used(conn, project_id, resource)
                if used > limit:
                    raise exc.HTTPBadRequest(
                        msg=f"Quota limit {limit} for {resource} must be greater than or "
                            f"equal to already used {used}")
            for resource, limit in changes.items():
                conn.execute(delete(QUOTAS).where(QUOTAS.c.project_id == project_id,
                                                  QUOTAS.c.resource == resource))
                conn.execute(insert(QUOTAS).values(project_id=project_id, resource=resource,
                                                   limit=limit))
            return self._limits(conn, project_id)

        limits = self.core.db.write(txn)
        LOG.info("Quotas of project %s set: %s", project_id,
                 ", ".join(f"{r}={n}" for r, n in sorted(changes.items())))
        return limits

    def reset(self, ctx: Context, project_id: str) -> None:
        """Give a project the default limits again (admins)."""
        self.core.policy.enforce(ctx, "delete_quota", _target(project_id))
        self.core.db.write(lambda conn: conn.execute(delete(QUOTAS).where(
            QUOTAS.c.project_id == project_id)))
        LOG.info("Quotas of project %s reset to the defaults", project_id)


def parse_quota_body(body: Any) -> tuple[dict[str, int], bool]:
    """`{"quota": {"network": 5, ..., "force": bool, "check_limit": bool}}`: limits of -1
    or more for counted resources, and whether they may go below what is used."""
    item = body.get("quota") if isinstance(body, dict) else None
    if not isinstance(item, dict):
        raise exc.HTTPBadRequest(msg="Unable to find 'quota' in request body")
    item = dict(item)
    flags = {}
    for flag in ("force", "check_limit"):
        if flag in item:
            try:
                flags[flag] = v.boolean()(item.pop(flag))
            except v.Invalid as err:
                raise exc.InvalidInput(
                    error_message=f"Invalid input for {flag}. Reason: {err}") from None
    unknown = sorted(k for k in item if k not in COUNTED)
    if unknown:
        raise exc.HTTPBadRequest(msg=f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    out: dict[str, int] = {}
    for resource, raw in item.items():
        try:
            limit = v.integer()(raw)
        except v.Invalid as err:
            raise exc.InvalidInput(
                error_message=f"Invalid input for {resource}. Reason: {err}") from None
        if limit < -1:
            raise exc.InvalidInput(error_message=f"Invalid input for {resource}. Reason: "
                                   f"Quota limit {limit} must be equal to or greater than -1")
        if limit > DB_INTEGER_MAX:
            raise exc.InvalidInput(error_message=f"Invalid input for {resource}. Reason: "
                                   f"'{limit}' is not in range -1 through {DB_INTEGER_MAX}")
        out[resource] = limit
    return out, flags.get("force") is True
