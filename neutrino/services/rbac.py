"""RBAC policies (`rbac-policies`): a network's owner grants it to one project, or an
admin to every project (`*`), as shared or as external.

A policy is a row of `networkrbacs` (`network_access` reads and mirrors them). Taking a
grant away is refused while the project it named depends on it: ports it has on a shared
network, routers whose gateway is on an external one. The network made shared or external
through its own attributes has `*` policies too, listed here as in Neutron.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, select, update

from neutrino import exceptions as exc
from neutrino.db.listing import Page
from neutrino.db.models import NETWORK_RBACS, NETWORKS
from neutrino.schema.policy import Context
from neutrino.schema.resources import RBAC_POLICY
from neutrino.services import changes
from neutrino.services import network_access as access
from neutrino.services.common import Core, ResourceServiceBase, bump_revision, utcnow
from neutrino.services.networks import NetworkService, check_not_a_gateway

LOG = logging.getLogger(__name__)
ACTIONS = {"network": access.ACTIONS}


def rbac_target(project_id: str, target_project: str) -> dict[str, Any]:
    """The policy target of an RBAC policy (`wildcard`: whether it names every project)."""
    return {"project_id": project_id, "tenant_id": project_id,
            "wildcard": target_project == access.WILDCARD}


def touch_network(conn: Connection, network_id: str) -> None:
    """A grant made, moved or taken: the network's revision goes up, as in Neutron, and
    its agents hear of it."""
    bump_revision(conn, NETWORKS, network_id, utcnow())
    changes.record(conn, "network", network_id, changes.network(network_id))


class RbacPolicyService(ResourceServiceBase):
    """The rules of RBAC policies on networks."""

    table = NETWORK_RBACS
    resource = RBAC_POLICY
    quota_resource = "rbac_policy"

    def __init__(self, core: Core, networks: NetworkService) -> None:
        super().__init__(core)
        self.networks = networks

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: the policies its project made."""
        if ctx.is_admin:
            return []
        return [NETWORK_RBACS.c.project_id == (ctx.project_id or "")]

    def fetch(self, conn: Connection, ctx: Context, policy_id: str) -> Row[Any]:
        """The policy, or RbacPolicyNotFound if absent or hidden from `ctx`."""
        row = conn.execute(select(NETWORK_RBACS).where(NETWORK_RBACS.c.id == policy_id)).first()
        if row is None:
            raise exc.RbacPolicyNotFound(id=policy_id, object_type="unknown")
        if not self.core.policy.check(ctx, "get_rbac_policy",
                                      rbac_target(row.project_id, row.target_project)):
            raise exc.RbacPolicyNotFound(id=policy_id, object_type=row.object_type)
        return row

    def check_access(self, conn: Connection, ctx: Context, policy_id: str, action: str) -> None:
        """Raise unless `ctx` may do `action` on the policy."""
        row = self.fetch(conn, ctx, policy_id)
        self.core.policy.enforce(ctx, f"{action}_rbac_policy",
                                 rbac_target(row.project_id, row.target_project))

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        return [RBAC_POLICY.render(r) for r in page.rows]

    def _describe(self, item: dict[str, Any]) -> str:
        return (f"({item['action']} of {item['object_type']} {item['object_id']} to "
                f"{item['target_tenant']})")

    def _network(self, conn: Connection, ctx: Context, network_id: str) -> Row[Any]:
        """The network a policy is on, which only its owner or an admin may grant."""
        network = self.networks.fetch(conn, ctx, network_id, for_update=True)
        if not ctx.is_admin and network.project_id != ctx.project_id:
            raise exc.InvalidInput(error_message="Only admins can manipulate policies on "
                                                 "networks they do not own")
        return network

    @staticmethod
    def _check_new(conn: Connection, network_id: str, target: str, action: str) -> None:
        found = conn.execute(select(NETWORK_RBACS.c.id).where(
            NETWORK_RBACS.c.object_id == network_id, NETWORK_RBACS.c.action == action,
            NETWORK_RBACS.c.target_project == target).limit(1)).first()
        if found is not None:
            raise exc.DuplicateRbacPolicy()

    @staticmethod
    def _check_nothing_depends(conn: Connection, network: Row[Any], policy: Row[Any],
                               new_target: str | None = None) -> None:
        """Taking the grant of `policy` away (or moving it to `new_target`) strands nothing
        of its target's."""
        if policy.target_project == network.project_id:
            return  # an owner's grant to itself gives nothing
        try:
            if policy.action == access.SHARED:
                access.check_no_ports_depend(conn, network, policy.target_project)
            else:
                access.check_no_routers_depend(conn, network, policy.target_project,
                                               new_target)
        except exc.InvalidSharedSetting:
            raise exc.RbacPolicyInUse(object_id=network.id, details=(
                "Ports of the project use the network through this policy")) from None

    def _insert(self, conn: Connection, ctx: Context, body: dict[str, Any],
                now: str) -> dict[str, Any]:
        project = self.core.project_for(ctx, body)
        target = rbac_target(project, body["target_tenant"])
        self.core.policy.enforce(ctx, "create_rbac_policy", target)
        self.core.policy.enforce(ctx, "create_rbac_policy:target_tenant", target)
        kind, action = body["object_type"], body["action"]
        if action not in ACTIONS[kind]:
            raise exc.InvalidActionForType(action=action, object_type=kind,
                                           valid_actions=list(ACTIONS[kind]))
        network = self._network(conn, ctx, body["object_id"])
        self._check_new(conn, network.id, body["target_tenant"], action)
        row = access.grant(conn, network.id, project, body["target_tenant"], action)
        touch_network(conn, network.id)
        return RBAC_POLICY.render(row)

    def update(self, ctx: Context, policy_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Grant the same access to another project (the old one must not depend on it)."""

        def txn(conn: Connection) -> dict[str, Any]:
            row = self.fetch(conn, ctx, policy_id)
            new_target = body.get("target_tenant", row.target_project)
            target = rbac_target(row.project_id, new_target)
            self.core.policy.enforce(ctx, "update_rbac_policy", target)
            self.core.policy.enforce(ctx, "update_rbac_policy:target_tenant", target)
            network = self._network(conn, ctx, row.object_id)
            if new_target != row.target_project:
                self._check_nothing_depends(conn, network, row, new_target)
                self._check_new(conn, network.id, new_target, row.action)
                conn.execute(update(NETWORK_RBACS).where(NETWORK_RBACS.c.id == policy_id)
                             .values(target_project=new_target))
                access.sync(conn, network.id)
                touch_network(conn, network.id)
            return self._render_one(conn, self.fetch(conn, ctx, policy_id))

        item = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Updated RBAC policy %s: %s", policy_id, sorted(body))
        return item

    def delete(self, ctx: Context, policy_id: str) -> None:
        """Take a grant away; the last external grant makes the network internal."""

        def txn(conn: Connection) -> None:
            row = self.fetch(conn, ctx, policy_id)
            self.core.policy.enforce(ctx, "delete_rbac_policy",
                                     rbac_target(row.project_id, row.target_project))
            network = self._network(conn, ctx, row.object_id)
            self._check_nothing_depends(conn, network, row)
            if row.action == access.EXTERNAL and conn.execute(
                    select(NETWORK_RBACS.c.id).where(
                        NETWORK_RBACS.c.object_id == network.id,
                        NETWORK_RBACS.c.action == access.EXTERNAL,
                        NETWORK_RBACS.c.id != policy_id).limit(1)).first() is None:
                check_not_a_gateway(conn, network.id)  # the network would turn internal
            conn.execute(delete(NETWORK_RBACS).where(NETWORK_RBACS.c.id == policy_id))
            access.sync(conn, network.id)
            touch_network(conn, network.id)

        self.core.db.write(txn)
        self.core.notify()
        LOG.info("Deleted RBAC policy %s", policy_id)
