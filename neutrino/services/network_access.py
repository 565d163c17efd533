"""Who may use a network besides its owner: the grants of `rbac-policies`.

A grant gives one project, or every project (`*`), `access_as_shared` (ports on the
network, its subnets visible) or `access_as_external` (router gateways and floating IPs on
it). The grants are the truth; the network's `shared` column mirrors its `*` shared grant
and `external` its having any external grant (`sync` keeps them), so that the lists most
callers make need no join. `shared` as a caller sees it is whether the network is shared
with the caller's project, as Neutron renders it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, exists, insert, or_, select, update

from neutrino import exceptions as exc
from neutrino.db.listing import Page
from neutrino.db.models import NETWORK_RBACS, NETWORKS, PORTS, ROUTERS
from neutrino.services.common import new_id

SHARED = "access_as_shared"
EXTERNAL = "access_as_external"
WILDCARD = "*"
ACTIONS = (SHARED, EXTERNAL)


def visible(project: str) -> ColumnElement[bool]:
    """Networks granted to `project` (or to everyone) in any way."""
    return NETWORKS.c.id.in_(select(NETWORK_RBACS.c.object_id).where(
        NETWORK_RBACS.c.target_project.in_([project, WILDCARD])))


def shared_with(project: str) -> ColumnElement[bool]:
    """Networks whose ports `project` may make: shared with everyone or with it."""
    return or_(NETWORKS.c.shared.is_(True), NETWORKS.c.id.in_(
        select(NETWORK_RBACS.c.object_id).where(NETWORK_RBACS.c.action == SHARED,
                                                NETWORK_RBACS.c.target_project == project)))


def granted(conn: Connection, network_id: str, project: str) -> frozenset[str]:
    """The actions granted on a network to `project` (or to everyone)."""
    return frozenset(conn.execute(select(NETWORK_RBACS.c.action).where(
        NETWORK_RBACS.c.object_id == network_id,
        NETWORK_RBACS.c.target_project.in_([project, WILDCARD]))).scalars())


def is_shared_for(conn: Connection, network: Row[Any], project: str | None) -> bool:
    """Whether `project` sees the network as shared (its owner: only if shared with all)."""
    if network.shared or not project or project == network.project_id:
        return bool(network.shared)
    return SHARED in granted(conn, network.id, project)


def is_external_for(conn: Connection, network: Row[Any], project: str) -> bool:
    """Whether `project` may put router gateways and floating IPs on the network."""
    if not network.external:
        return False
    return project == network.project_id or EXTERNAL in granted(conn, network.id, project)


def shared_in_page(conn: Connection, page: Page, project: str | None) -> set[str]:
    """The networks of a page shared with `project` by a grant of its own."""
    if not project:
        return set()
    return set(conn.execute(select(NETWORK_RBACS.c.object_id).where(
        page.holds(NETWORK_RBACS.c.object_id), NETWORK_RBACS.c.action == SHARED,
        NETWORK_RBACS.c.target_project == project)).scalars())


def grant(conn: Connection, network_id: str, owner: str, target: str,
          action: str) -> dict[str, Any]:
    """Insert a grant (the caller checked it is new) and mirror it on the network."""
    row = {"id": new_id(), "project_id": owner, "object_type": "network",
           "object_id": network_id, "target_project": target, "action": action}
    conn.execute(insert(NETWORK_RBACS).values(**row))
    sync(conn, network_id)
    return row


def revoke(conn: Connection, network_id: str, action: str, target: str | None = None) -> None:
    """Delete a network's grants of `action` (to `target`, or all of them)."""
    where = [NETWORK_RBACS.c.object_id == network_id, NETWORK_RBACS.c.action == action]
    if target is not None:
        where.append(NETWORK_RBACS.c.target_project == target)
    conn.execute(delete(NETWORK_RBACS).where(*where))
    sync(conn, network_id)


def sync(conn: Connection, network_id: str) -> None:
    """Set the network's `shared` and `external` columns from its grants."""
    grants = NETWORK_RBACS.c
    conn.execute(update(NETWORKS).where(NETWORKS.c.id == network_id).values(
        shared=exists().where(grants.object_id == network_id, grants.action == SHARED,
                              grants.target_project == WILDCARD),
        external=exists().where(grants.object_id == network_id,
                                grants.action == EXTERNAL)))


def check_no_ports_depend(conn: Connection, network: Row[Any], target: str) -> None:
    """Losing the shared grant to `target` must not strand its ports on the network:
    ports of the owner, of projects with grants of their own, and the server's own
    (project '') do not depend on it; a `*` grant left covers everyone."""
    grants = NETWORK_RBACS.c
    others = select(grants.target_project).where(
        grants.object_id == network.id, grants.action == SHARED,
        grants.target_project != target)
    if target != WILDCARD and conn.execute(select(grants.id).where(
            grants.object_id == network.id, grants.action == SHARED,
            grants.target_project == WILDCARD).limit(1)).first() is not None:
        return
    ports = select(PORTS.c.id).where(PORTS.c.network_id == network.id,
                                     PORTS.c.project_id.not_in([network.project_id, ""]),
                                     ~PORTS.c.device_owner.startswith("network:"))
    if target == WILDCARD:
        ports = ports.where(PORTS.c.project_id.not_in(others))
    else:
        ports = ports.where(PORTS.c.project_id == target)
    if conn.execute(ports.limit(1)).first() is not None:
        raise exc.InvalidSharedSetting(network=network.id)


def check_no_routers_depend(conn: Connection, network: Row[Any], target: str,
                            new_target: str | None = None) -> None:
    """Losing the external grant to `target` (moving it to `new_target`) must not strand
    routers whose gateway is on the network: those of the owner, of projects with grants of
    their own and of the new target stay."""
    grants = NETWORK_RBACS.c
    gateways = select(PORTS.c.id).where(PORTS.c.network_id == network.id,
                                        PORTS.c.device_owner == "network:router_gateway")
    routers = select(ROUTERS.c.id).where(ROUTERS.c.gw_port_id.in_(gateways),
                                         ROUTERS.c.project_id != network.project_id)
    if new_target is not None:
        routers = routers.where(ROUTERS.c.project_id != new_target)
    if target == WILDCARD:
        routers = routers.where(ROUTERS.c.project_id.not_in(select(grants.target_project).where(
            grants.object_id == network.id, grants.action == EXTERNAL,
            grants.target_project != WILDCARD)))
    else:
        if conn.execute(select(grants.id).where(
                grants.object_id == network.id, grants.action == EXTERNAL,
                grants.target_project == WILDCARD).limit(1)).first() is not None:
            return
        routers = routers.where(ROUTERS.c.project_id == target)
    if conn.execute(routers.limit(1)).first() is not None:
        raise exc.RbacPolicyInUse(object_id=network.id, details=(
            "There are routers attached to this network that depend on this policy for "
            "access."))
