"""Security group rules: created (alone or in bulk), read and deleted, never updated.

A rule is normalised as Neutron does before it is stored: legacy IPv6 ICMP names become
`ipv6-icmp`, the whole port range 1-65535 becomes no range, a bare remote address gets its
/32 or /128. Two rules of a group are the same rule when direction, ethertype, ports,
protocol (by number), remotes and prefix agree, "anywhere" (0.0.0.0/0, ::/0, none) counting
as one prefix. The pure checks are functions of the rule (`normalize`, `rule_key`); the
service adds what needs the database: the groups exist for the rule's project, and no
equal rule exists.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import netaddr
from sqlalchemy import ColumnElement, Connection, Row, delete, insert, select

from neutrino import exceptions as exc
from neutrino.db import listing
from neutrino.db.listing import Page
from neutrino.db.models import (
    ADDRESS_GROUPS,
    DEFAULT_SECURITY_GROUPS,
    SECURITY_GROUP_RULES,
    SECURITY_GROUPS,
)
from neutrino.schema.policy import Context
from neutrino.schema.request import Query
from neutrino.schema.resources import SECURITY_GROUP_RULE
from neutrino.schema.validators import PROTOCOLS
from neutrino.services import changes
from neutrino.services.common import ResourceServiceBase, bump_revision, new_id, utcnow
from neutrino.services.security_groups import (
    SecurityGroupService,
    default_group_ids,
    render_rule,
)

LOG = logging.getLogger(__name__)
PORT_PROTOCOLS = (PROTOCOLS["dccp"], PROTOCOLS["sctp"], PROTOCOLS["tcp"], PROTOCOLS["udp"],
                  PROTOCOLS["udplite"])
PORT_PROTOCOL_NAMES = "DCCP, SCTP, TCP, UDP, UDPLITE"
ICMP_PROTOCOLS = (PROTOCOLS["icmp"], PROTOCOLS["ipv6-icmp"])
IPV6_ONLY = ("ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts",
             "ipv6-route", "41", "44", "58", "59", "60", "43")
ANYWHERE = ("0.0.0.0/0", "::/0", None)


def protocol_number(protocol: str | None) -> int | None:
    """A stored protocol as its number (None: any)."""
    if protocol is None:
        return None
    return int(protocol) if protocol.isdigit() else PROTOCOLS[protocol]


def _check_ports(rule: dict[str, Any]) -> None:
    """What a port range means depends on the protocol: ports, ICMP type and code, or
    nothing at all."""
    low, high = rule["port_range_min"], rule["port_range_max"]
    if low is None and high is None:
        return
    number = protocol_number(rule["protocol"])
    if number is None:
        raise exc.SecurityGroupProtocolRequiredWithPorts()
    if number in PORT_PROTOCOLS:
        if low == 0 or high == 0:
            raise exc.SecurityGroupInvalidPortValue(port=0)
        if low is None or high is None or low > high:
            raise exc.SecurityGroupInvalidPortRange()
    elif number in ICMP_PROTOCOLS:
        for attr, field, value in (("port_range_min", "type", low),
                                   ("port_range_max", "code", high)):
            if value is not None and not 0 <= value <= 255:
                raise exc.SecurityGroupInvalidIcmpValue(field=field, attr=attr, value=value)
        if low is None:
            raise exc.SecurityGroupMissingIcmpType(value=high)
    else:
        raise exc.SecurityGroupInvalidProtocolForPort(protocol=number,
                                                      valid_port_protocols=PORT_PROTOCOL_NAMES)


def normalize(rule: dict[str, Any]) -> dict[str, Any]:
    """A parsed rule body in Neutron's canonical form, or the error Neutron gives."""
    out = dict(rule)
    if out["ethertype"] == "IPv6":
        if out["protocol"] in ("icmp", "icmpv6"):
            out["protocol"] = "ipv6-icmp"
        elif out["protocol"] == "1":
            out["protocol"] = "58"
    if (out["port_range_min"], out["port_range_max"]) == (1, 65535):
        out["port_range_min"] = out["port_range_max"] = None
    _check_ports(out)
    prefix = out["remote_ip_prefix"]
    out["normalized_cidr"] = None
    if prefix is not None:
        net = netaddr.IPNetwork(prefix)
        if out["ethertype"] != f"IPv{net.version}":
            raise exc.SecurityGroupRuleParameterConflict(ethertype=out["ethertype"],
                                                         cidr=prefix)
        out["normalized_cidr"] = str(net.cidr)
    if out["protocol"] in IPV6_ONLY and out["ethertype"] == "IPv4":
        raise exc.SecurityGroupEthertypeConflictWithProtocol(ethertype=out["ethertype"],
                                                            protocol=out["protocol"])
    remotes = [k for k in ("remote_ip_prefix", "remote_group_id", "remote_address_group_id")
               if out.get(k)]
    if len(remotes) > 1:
        raise exc.SecurityGroupMultipleRemoteEntites()
    return out


def rule_key(rule: Any) -> tuple[Any, ...]:
    """What makes two rules of a group the same rule."""
    prefix = rule["remote_ip_prefix"]
    return (rule["security_group_id"], rule["direction"], rule["ethertype"],
            rule["port_range_min"], rule["port_range_max"], protocol_number(rule["protocol"]),
            rule["remote_group_id"], rule["remote_address_group_id"],
            None if prefix in ANYWHERE else prefix)


def rule_target(project_id: str, group_project_id: str) -> dict[str, Any]:
    """The policy target of a rule: its project and its group's."""
    return {"project_id": project_id, "tenant_id": project_id,
            "security_group:project_id": group_project_id}


class SecurityGroupRuleService(ResourceServiceBase):
    """The rules of security group rules."""

    table = SECURITY_GROUP_RULES
    resource = SECURITY_GROUP_RULE

    def __init__(self, groups: SecurityGroupService) -> None:
        super().__init__(groups.core)
        self.groups = groups

    # -- reading ----------------------------------------------------------------------------

    def scope(self, ctx: Context) -> list[ColumnElement[bool]]:
        """What `ctx` may see: the rules of its project's groups."""
        if ctx.is_admin:
            return []
        own = select(SECURITY_GROUPS.c.id).where(SECURITY_GROUPS.c.project_id
                                                 == (ctx.project_id or ""))
        return [SECURITY_GROUP_RULES.c.security_group_id.in_(own)]

    def fetch(self, conn: Connection, ctx: Context, rule_id: str) -> tuple[Row[Any], Row[Any]]:
        """The rule and its group, or SecurityGroupRuleNotFound if hidden from `ctx`."""
        row = conn.execute(select(SECURITY_GROUP_RULES).where(
            SECURITY_GROUP_RULES.c.id == rule_id)).first()
        if row is not None:
            group = conn.execute(select(SECURITY_GROUPS).where(
                SECURITY_GROUPS.c.id == row.security_group_id)).one()
            if self.core.policy.check(ctx, "get_security_group_rule",
                                      rule_target(row.project_id, group.project_id)):
                return row, group
        raise exc.SecurityGroupRuleNotFound(id=rule_id)

    def check_access(self, conn: Connection, ctx: Context, rule_id: str, action: str) -> None:
        """Raise unless `ctx` may do `action` (get, delete) on the rule."""
        row, group = self.fetch(conn, ctx, rule_id)
        self.core.policy.enforce(ctx, f"{action}_security_group_rule",
                                 rule_target(row.project_id, group.project_id))

    def _render_page(self, conn: Connection, page: Page) -> list[dict[str, Any]]:
        defaults = default_group_ids(conn, {r["security_group_id"] for r in page.rows})
        return [render_rule(r, r["security_group_id"] in defaults) for r in page.rows]

    def get(self, ctx: Context, rule_id: str) -> dict[str, Any]:
        """One rule."""
        with self.core.db.read() as conn:
            return self._render_one(conn, self.fetch(conn, ctx, rule_id)[0])

    def list_page(self, ctx: Context, query: Query) -> tuple[list[dict[str, Any]], bool]:
        """A page of rules and whether more follow."""
        self.groups.ensure_default_for_list(ctx, query)
        where = self.scope(ctx)
        in_default = set(query.filters.pop("belongs_to_default_sg", []))
        if len(in_default) == 1:
            defaults = select(DEFAULT_SECURITY_GROUPS.c.security_group_id)
            column = SECURITY_GROUP_RULES.c.security_group_id
            where.append(column.in_(defaults) if True in in_default else
                         column.not_in(defaults))
        with self.core.db.read() as conn:
            page = listing.list_rows(conn, SECURITY_GROUP_RULE, SECURITY_GROUP_RULES, query,
                                     where)
            return self._render_page(conn, page), page.more

    # -- writes -----------------------------------------------------------------------------

    def create(self, ctx: Context, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create rules of one group and one project, all or none."""
        if len({b["security_group_id"] for b in bodies}) > 1:
            raise exc.SecurityGroupNotSingleGroupRules()
        projects = {self.core.project_for(ctx, b) for b in bodies}
        if len(projects) > 1:
            raise exc.SecurityGroupRulesNotSingleProject()
        project = projects.pop()
        rules = [normalize(b) for b in bodies]
        group_id = rules[0]["security_group_id"]

        def txn(conn: Connection) -> list[dict[str, Any]]:
            # The row lock serialises concurrent creates on the group, so the duplicate
            # check below sees every committed rule.
            group = self.groups.fetch(conn, ctx, group_id, for_update=True)
            self.core.policy.enforce(ctx, "create_security_group_rule",
                                     rule_target(project, group.project_id))
            self.core.quota_check(conn, "security_group_rule", Counter({project: len(rules)}))
            for rule in rules:
                self._check_remotes(conn, ctx, project, rule)
            self._check_duplicates(conn, rules)
            now = utcnow()
            rows = [{"id": new_id(), "project_id": project, "security_group_id": group_id,
                     "direction": r["direction"], "ethertype": r["ethertype"],
                     "protocol": r["protocol"], "port_range_min": r["port_range_min"],
                     "port_range_max": r["port_range_max"],
                     "remote_ip_prefix": r["remote_ip_prefix"],
                     "normalized_cidr": r["normalized_cidr"],
                     "remote_group_id": r["remote_group_id"],
                     "remote_address_group_id": r["remote_address_group_id"],
                     "description": r["description"], "created_at": now, "updated_at": now,
                     "revision_number": 0} for r in rules]
            conn.execute(insert(SECURITY_GROUP_RULES), rows)
            bump_revision(conn, SECURITY_GROUPS, group_id, now)
            changes.record_group(conn, group_id)
            in_default = bool(default_group_ids(conn, [group_id]))
            return [render_rule(r, in_default) for r in rows]

        created = self.core.db.write(txn)
        self.core.notify()
        for item in created:
            LOG.info("Created security group rule %s in group %s: %s %s %s %s-%s %s",
                     item["id"], group_id, item["direction"], item["ethertype"],
                     item["protocol"] or "any", item["port_range_min"],
                     item["port_range_max"], item["remote_ip_prefix"]
                     or item["remote_group_id"] or item["remote_address_group_id"] or "any")
        return created

    def _check_remotes(self, conn: Connection, ctx: Context, project: str,
                       rule: dict[str, Any]) -> None:
        """A remote group or address group must be the rule's project's (or, for an
        admin, exist)."""
        for key, table, error in (
                ("remote_group_id", SECURITY_GROUPS, lambda i: exc.SecurityGroupNotFound(id=i)),
                ("remote_address_group_id", ADDRESS_GROUPS,
                 lambda i: exc.AddressGroupNotFound(address_group_id=i))):
            remote = rule.get(key)
            if remote is None:
                continue
            owner = conn.execute(select(table.c.project_id).where(table.c.id == remote)).first()
            if owner is None or not (ctx.is_admin or owner.project_id == project):
                raise error(remote)

    def _check_duplicates(self, conn: Connection, rules: list[dict[str, Any]]) -> None:
        keys: set[tuple[Any, ...]] = set()
        for rule in rules:
            key = rule_key(rule)
            if key in keys:
                raise exc.DuplicateSecurityGroupRuleInPost()
            keys.add(key)
        for existing in conn.execute(select(SECURITY_GROUP_RULES).where(
                SECURITY_GROUP_RULES.c.security_group_id == rules[0]["security_group_id"])):
            if rule_key(existing._mapping) in keys:
                raise exc.SecurityGroupRuleExists(rule_id=existing.id)

    def update(self, ctx: Context, rule_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Rules are immutable: delete and create instead."""
        raise exc.HTTPMethodNotAllowed()

    def delete(self, ctx: Context, rule_id: str) -> None:
        """Delete a rule (members may delete their default group's rules too)."""

        def txn(conn: Connection) -> str:
            row, group = self.fetch(conn, ctx, rule_id)
            self.core.policy.enforce(ctx, "delete_security_group_rule",
                                     rule_target(row.project_id, group.project_id))
            conn.execute(delete(SECURITY_GROUP_RULES).where(
                SECURITY_GROUP_RULES.c.id == rule_id))
            bump_revision(conn, SECURITY_GROUPS, group.id, utcnow())
            changes.record_group(conn, group.id)
            return str(group.id)

        group_id = self.core.db.write(txn)
        self.core.notify()
        LOG.info("Deleted security group rule %s of group %s", rule_id, group_id)
