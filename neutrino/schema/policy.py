"""Who may do what: Neutron's default rules, enforced with oslo.policy.

Rules are registered as defaults, so an operator's policy file overrides them by name as it
would Neutron's (`get_network:provider:network_type`, `create_port:fixed_ips:ip_address`, ...).
Lists are scoped in SQL by the same rules (each service's `scope`), which keeps a list of
10,000 ports from costing 10,000 rule evaluations; an operator's override of a `get_*` rule
therefore governs single reads and writes, while lists keep the default scope.

The defaults follow Neutron's (`neutron/conf/policies/`, checked rule by rule in 2026): a
network owner's rights take `role:member` as well, `reader` never writes, and the `service`
role reads networks and subnets and reads and writes ports. Where a rule differs from
Neutron's a comment says why. Tags are changed under the resource's `update_*` rule (Neutron
has `*:tags` rules with the same defaults for members and readers).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from oslo_config import cfg
from oslo_policy import policy

from neutrino import exceptions as exc
from neutrino.schema.resources import RESOURCES

LOG = logging.getLogger(__name__)

ADMIN = "rule:context_is_admin"
SERVICE = "rule:service_api"
ADMIN_OR_SERVICE = f"{ADMIN} or {SERVICE}"
MEMBER = "rule:admin_or_project_member"
READER = "rule:admin_or_project_reader"
NET_OWNER_MEMBER = "(role:member and rule:network_owner)"
NET_OWNER_READER = "(role:reader and rule:network_owner)"
# Neutron's ADMIN_OR_NET_OWNER_MEMBER: the network's owner, and only with the member role.
NET_OWNER = f"{ADMIN} or {NET_OWNER_MEMBER}"
NET_OWNER_OR_SERVICE = f"{ADMIN_OR_SERVICE} or {NET_OWNER_MEMBER}"
SG_OWNER_MEMBER = "rule:context_is_admin or (role:member and rule:sg_owner)"
SG_OWNER_READER = "rule:context_is_admin or (role:reader and rule:sg_owner)"

BASE_RULES: dict[str, str] = {
    "context_is_admin": "role:admin",
    "service_api": "role:service",
    "admin_only": "rule:context_is_admin",
    "owner": "project_id:%(project_id)s",
    "admin_or_owner": "rule:context_is_admin or rule:owner",
    "project_member": "role:member and project_id:%(project_id)s",
    "project_reader": "role:reader and project_id:%(project_id)s",
    "admin_or_project_member": "rule:context_is_admin or rule:project_member",
    "admin_or_project_reader": "rule:context_is_admin or rule:project_reader",
    "network_owner": "project_id:%(network:project_id)s",
    "admin_or_network_owner": "rule:context_is_admin or rule:network_owner",
    "shared": "True:%(shared)s",
    "external": "True:%(router:external)s",
    "sg_owner": "project_id:%(security_group:project_id)s",
    "admin_or_sg_owner": "rule:context_is_admin or project_id:%(security_group:project_id)s",
    "admin_owner_or_sg_owner": "rule:owner or rule:admin_or_sg_owner",
}

ACTION_RULES: dict[str, str] = {
    "create_network": MEMBER,
    "get_network": f"{READER} or {SERVICE} or rule:shared or rule:external",
    "update_network": MEMBER,
    "delete_network": MEMBER,
    "create_network:shared": ADMIN,
    "update_network:shared": ADMIN,
    "create_network:router:external": ADMIN,
    "update_network:router:external": ADMIN,
    "get_network:router:external": "",
    "get_network:shared": "",
    "create_subnet": NET_OWNER,
    "get_subnet": f"{READER} or {SERVICE} or {NET_OWNER_READER} or rule:shared",
    "update_subnet": f"rule:project_member or {NET_OWNER}",
    "delete_subnet": f"rule:project_member or {NET_OWNER}",
    # Neutron also lets a bare `rule:shared` create ports, so a reader could plug into a
    # shared network; here writing always takes the member role.
    "create_subnetpool": MEMBER,
    "get_subnetpool": f"{READER} or rule:shared",
    "update_subnetpool": MEMBER,
    "delete_subnetpool": MEMBER,
    "add_prefixes": MEMBER,
    "remove_prefixes": MEMBER,
    "create_subnetpool:shared": ADMIN,
    "create_subnetpool:is_default": ADMIN,
    "update_subnetpool:is_default": ADMIN,
    "get_subnetpool:shared": "",
    "get_subnetpool:is_default": "",
    "create_address_scope": MEMBER,
    "get_address_scope": f"{READER} or rule:shared",
    "update_address_scope": MEMBER,
    "delete_address_scope": MEMBER,
    "create_address_scope:shared": ADMIN,
    "update_address_scope:shared": ADMIN,
    "get_address_scope:shared": "",
    # Only admins grant a network to every project (Neutron's restrict_wildcard).
    "restrict_wildcard": "(not True:%(wildcard)s) or rule:context_is_admin",
    "create_rbac_policy": MEMBER,
    "create_rbac_policy:target_tenant": "rule:restrict_wildcard",
    "get_rbac_policy": READER,
    "update_rbac_policy": MEMBER,
    "update_rbac_policy:target_tenant": "rule:restrict_wildcard",
    "delete_rbac_policy": MEMBER,
    "create_port": f"{NET_OWNER_OR_SERVICE} or (role:member and rule:shared)",
    "get_port": f"{ADMIN_OR_SERVICE} or {NET_OWNER_READER} or rule:project_reader",
    "update_port": f"{ADMIN_OR_SERVICE} or rule:project_member",
    "delete_port": f"{NET_OWNER_OR_SERVICE} or rule:project_member",
    "create_port:mac_address": NET_OWNER_OR_SERVICE,
    "update_port:mac_address": f"{ADMIN_OR_SERVICE} or (role:manager and rule:network_owner)",
    "create_port:fixed_ips": f"{NET_OWNER_OR_SERVICE} or rule:shared",
    "create_port:fixed_ips:ip_address": NET_OWNER_OR_SERVICE,
    "create_port:fixed_ips:subnet_id": f"{NET_OWNER_OR_SERVICE} or rule:shared",
    "update_port:fixed_ips": NET_OWNER_OR_SERVICE,
    "create_port:device_owner": NET_OWNER_OR_SERVICE,  # checked for network:* owners only
    "update_port:device_owner": NET_OWNER_OR_SERVICE,
    "create_port:port_security_enabled": NET_OWNER_OR_SERVICE,
    "update_port:port_security_enabled": NET_OWNER_OR_SERVICE,
    "create_port:binding:vnic_type": f"{MEMBER} or {SERVICE}",
    "update_port:binding:vnic_type": f"{ADMIN_OR_SERVICE} or rule:project_member",
    # Neutron gives binding:profile writes to the service role alone; the admin keeps them.
    "create_port:binding:host_id": ADMIN_OR_SERVICE,
    "update_port:binding:host_id": ADMIN_OR_SERVICE,
    "create_port:binding:profile": ADMIN_OR_SERVICE,
    "update_port:binding:profile": ADMIN_OR_SERVICE,
    "get_port:binding:host_id": ADMIN_OR_SERVICE,
    "get_port:binding:profile": ADMIN_OR_SERVICE,
    "get_port:binding:vif_type": ADMIN_OR_SERVICE,
    "get_port:binding:vif_details": ADMIN_OR_SERVICE,
    "get_port:binding:vnic_type": "",
    "get_port:fixed_ips": "",
    "get_port:mac_address": "",
    "get_port:device_owner": "",
    "get_port:port_security_enabled": "",
    "create_port:allowed_address_pairs": f"{NET_OWNER} or {SERVICE}",
    "create_port:allowed_address_pairs:mac_address": f"{NET_OWNER} or {SERVICE}",
    "create_port:allowed_address_pairs:ip_address": f"{NET_OWNER} or {SERVICE}",
    "update_port:allowed_address_pairs": f"{NET_OWNER} or {SERVICE}",
    "update_port:allowed_address_pairs:mac_address": f"{NET_OWNER} or {SERVICE}",
    "update_port:allowed_address_pairs:ip_address": f"{NET_OWNER} or {SERVICE}",
    "get_port:allowed_address_pairs": "",
    "create_security_group": MEMBER,
    "get_security_group": READER,  # Neutron's "or shared": nothing is shared here yet
    "update_security_group": MEMBER,
    "delete_security_group": MEMBER,
    "create_security_group_rule": SG_OWNER_MEMBER,
    "get_security_group_rule": SG_OWNER_READER,
    "delete_security_group_rule": SG_OWNER_MEMBER,
    "create_address_group": MEMBER,
    "get_address_group": READER,
    "update_address_group": MEMBER,
    "delete_address_group": MEMBER,
    "add_addresses": MEMBER,
    "remove_addresses": MEMBER,
    "get_agent": ADMIN,
    "update_agent": ADMIN,
    "delete_agent": ADMIN,
    "get_dhcp-networks": ADMIN,
    "create_dhcp-network": ADMIN,
    "delete_dhcp-network": ADMIN,
    "get_dhcp-agents": ADMIN,
    "create_router": MEMBER,
    "get_router": READER,
    "update_router": MEMBER,
    "delete_router": MEMBER,
    "create_router:external_gateway_info": MEMBER,
    "create_router:external_gateway_info:network_id": MEMBER,
    "create_router:external_gateway_info:enable_snat": ADMIN,
    "create_router:external_gateway_info:external_fixed_ips": ADMIN,
    "update_router:external_gateway_info": MEMBER,
    "update_router:external_gateway_info:network_id": MEMBER,
    "update_router:external_gateway_info:enable_snat": ADMIN,
    "update_router:external_gateway_info:external_fixed_ips": ADMIN,
    "get_router:external_gateway_info": "",
    "create_router:distributed": ADMIN,
    "update_router:distributed": ADMIN,
    "get_router:distributed": ADMIN,
    "create_router:ha": ADMIN,
    "update_router:ha": ADMIN,
    "get_router:ha": ADMIN,
    "add_router_interface": MEMBER,
    "remove_router_interface": MEMBER,
    "add_extraroutes": MEMBER,
    "remove_extraroutes": MEMBER,
    "create_floatingip": MEMBER,
    "create_floatingip:floating_ip_address":
        "rule:context_is_admin or (role:manager and project_id:%(project_id)s)",
    "get_floatingip:floating_ip_address": "",
    "get_floatingip": READER,
    "update_floatingip": MEMBER,
    "delete_floatingip": MEMBER,
    "get_l3-routers": ADMIN,
    "create_l3-router": ADMIN,
    "delete_l3-router": ADMIN,
    "get_l3-agents": ADMIN,
    "get_availability_zone": "role:reader",
    "get_quota": READER,
    "get_network_ip_availability": ADMIN,
    # Providers belong to no project: a reader of any project may list them.
    "get_service_provider": "role:reader",
    "update_quota": ADMIN,
    "delete_quota": ADMIN,
    "agent_channel": "role:service or role:admin",
}


def _attribute_rules() -> dict[str, str]:
    """Rules for policy-guarded attributes not named above: admin only, as Neutron does."""
    rules: dict[str, str] = {}
    for resource in RESOURCES.values():
        for attr in resource.attrs:
            if not attr.policy:
                continue
            actions = ["get"] + (["create"] if attr.post else []) + (["update"] if attr.put else [])
            for action in actions:
                rules.setdefault(f"{action}_{resource.name}:{attr.name}", ADMIN)
    return rules


def list_rules() -> list[policy.RuleDefault]:
    """Every default rule, for the enforcer and for oslopolicy-sample-generator."""
    rules = {**BASE_RULES, **ACTION_RULES}
    for name, check in _attribute_rules().items():
        rules.setdefault(name, check)
    return [policy.RuleDefault(name, check) for name, check in rules.items()]


@dataclass
class Context:
    """The caller of one request."""

    user_id: str | None
    project_id: str | None
    roles: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Keystone's default implied roles: admin implies manager, manager member, member
        # reader.
        roles = {r.strip().lower() for r in self.roles if r.strip()}
        if "admin" in roles:
            roles.add("manager")
        if "manager" in roles:
            roles.add("member")
        if "member" in roles:
            roles.add("reader")
        self.roles = sorted(roles)

    @property
    def is_admin(self) -> bool:
        """Whether the caller has the admin role."""
        return "admin" in self.roles

    @property
    def creds(self) -> dict[str, Any]:
        """Credentials in the shape oslo.policy checks read."""
        return {"user_id": self.user_id, "project_id": self.project_id,
                "tenant_id": self.project_id, "roles": self.roles, "is_admin": self.is_admin}

    @classmethod
    def admin(cls) -> Context:
        """An admin context, for the server's own work."""
        return cls(user_id=None, project_id=None, roles=["admin"])


class Enforcer:
    """oslo.policy with neutrino's defaults registered, and its decisions remembered.

    oslo.policy checks the policy file and inspects every check's signature on each call,
    about 0.3 ms: most of a port create. A decision depends only on the rule, the target's
    values and the caller's credentials, so it is cached under exactly those; the policy
    file is looked at again at most once a second, and a change clears the cache.
    """

    RELOAD_INTERVAL = 1.0
    CACHE_SIZE = 16384

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self._enforcer = policy.Enforcer(conf)
        self._enforcer.register_defaults(list_rules())
        self._enforcer.load_rules()
        self._rules = self._enforcer.rules
        self._checked_at = time.monotonic()
        self._decisions: OrderedDict[tuple[Any, ...], bool] = OrderedDict()
        self._lock = threading.Lock()

    def _reload_if_due(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self.RELOAD_INTERVAL:
            return
        self._checked_at = now
        self._enforcer.load_rules()
        if self._enforcer.rules is not self._rules:
            LOG.info("Policy rules changed; forgetting cached decisions")
            self._rules = self._enforcer.rules
            with self._lock:
                self._decisions.clear()

    def check(self, ctx: Context, action: str, target: dict[str, Any]) -> bool:
        """Whether `ctx` may do `action` on `target`."""
        self._reload_if_due()
        if action not in self._rules:
            return True
        key = (action, tuple(sorted(target.items())), ctx.user_id, ctx.project_id,
               tuple(ctx.roles))
        with self._lock:
            decision = self._decisions.get(key)
            if decision is not None:
                self._decisions.move_to_end(key)
                return decision
        decision = bool(self._enforcer.enforce(action, target, ctx.creds))
        with self._lock:
            self._decisions[key] = decision
            if len(self._decisions) > self.CACHE_SIZE:
                self._decisions.popitem(last=False)
        return decision

    def enforce(self, ctx: Context, action: str, target: dict[str, Any]) -> None:
        """Raise PolicyNotAuthorized unless `ctx` may do `action` on `target`."""
        if not self.check(ctx, action, target):
            raise exc.PolicyNotAuthorized(action=action)

    def hidden_attributes(self, ctx: Context, resource_name: str,
                          target: dict[str, Any]) -> frozenset[str]:
        """Attributes `ctx` may not read on resources like `target`.

        The get rules of attributes depend on the caller's roles, not on the row (all of
        Neutron's defaults for them are admin-only or open), so one evaluation serves a list.
        """
        resource = next(r for r in RESOURCES.values() if r.name == resource_name)
        hidden = {
            a.name for a in resource.attrs
            if a.policy and not self.check(ctx, f"get_{resource_name}:{a.name}", target)
        }
        return frozenset(hidden)
