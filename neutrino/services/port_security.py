"""A port's security: port security itself, its security groups, its allowed address pairs.

Neutron's rules, as the port service applies them on create and update:
- `port_security_enabled` is the network's value unless given; ports of `network:*`
  owners (router, DHCP, floating IP ports) are trusted: no port security, no groups.
- With port security and no `security_groups` given, a port gets its project's default
  group; groups need port security and an IP address (400), and port security cannot be
  turned off while groups remain (409).
- Groups must be the port's project's (others' answer 404, as if absent) and all stateful
  or all stateless (409).
- Allowed address pairs need port security (409), at most `max_allowed_address_pair`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, insert, select

from neutrino import exceptions as exc
from neutrino.db.models import ALLOWED_ADDRESS_PAIRS, SECURITY_GROUPS, SG_PORT_BINDINGS
from neutrino.schema.policy import Context
from neutrino.services import changes

TRUSTED_PREFIX = "network:"


_INSERT_BINDINGS = insert(SG_PORT_BINDINGS)  # prepared once: every new port binds

def is_trusted(device_owner: str) -> bool:
    """Ports the network itself owns (router, DHCP, floating IP) are never filtered."""
    return device_owner.startswith(TRUSTED_PREFIX)


def hosts_of(*hosts: str | None) -> tuple[str | None, ...]:
    """The distinct hosts among old and new bindings; (None,) when bound nowhere."""
    found = tuple(dict.fromkeys(h for h in hosts if h))
    return found or (None,)


def pairs_of(conn: Connection, port_ids: Iterable[str] | ColumnElement[bool],
             ) -> dict[str, list[dict[str, str]]]:
    """The allowed address pairs of ports, in address order, by port id."""
    where = port_ids if isinstance(port_ids, ColumnElement) else \
        ALLOWED_ADDRESS_PAIRS.c.port_id.in_(list(port_ids))
    pairs: dict[str, list[dict[str, str]]] = defaultdict(list)
    for port_id, ip, mac in conn.execute(
            select(ALLOWED_ADDRESS_PAIRS.c.port_id, ALLOWED_ADDRESS_PAIRS.c.ip_address,
                   ALLOWED_ADDRESS_PAIRS.c.mac_address).where(where)
            .order_by(ALLOWED_ADDRESS_PAIRS.c.ip_address, ALLOWED_ADDRESS_PAIRS.c.mac_address)):
        pairs[port_id].append({"ip_address": ip, "mac_address": mac})
    return pairs


def check_pairs(pairs: list[dict[str, str]], enabled: bool, limit: int) -> None:
    """Pairs need port security, and there may be no more than `limit` of them."""
    if len(pairs) > limit:
        raise exc.AllowedAddressPairExhausted(quota=limit)
    if pairs and not enabled:
        raise exc.AddressPairAndPortSecurityRequired()


def set_pairs(conn: Connection, port_id: str, mac: str, pairs: list[dict[str, str]],
              replace: bool) -> list[dict[str, str]]:
    """Store a port's pairs (a pair without a MAC takes the port's); returns them as
    `pairs_of` would read them back."""
    if replace:
        conn.execute(delete(ALLOWED_ADDRESS_PAIRS).where(
            ALLOWED_ADDRESS_PAIRS.c.port_id == port_id))
    rows = sorted({(p["ip_address"], p.get("mac_address", mac)) for p in pairs})
    if rows:
        conn.execute(insert(ALLOWED_ADDRESS_PAIRS), [
            {"port_id": port_id, "mac_address": m, "ip_address": ip} for ip, m in rows])
    return [{"ip_address": ip, "mac_address": m} for ip, m in rows]


def check_groups(conn: Connection, ctx: Context, project: str, group_ids: list[str]) -> None:
    """The groups exist and are the project's (any, for an admin), and agree on
    statefulness."""
    if not group_ids:
        return
    rows = conn.execute(select(SECURITY_GROUPS.c.id, SECURITY_GROUPS.c.project_id,
                               SECURITY_GROUPS.c.stateful)
                        .where(SECURITY_GROUPS.c.id.in_(group_ids))).all()
    valid = {r.id for r in rows if ctx.is_admin or r.project_id == project}
    missing = sorted(set(group_ids) - valid)
    if missing:
        raise exc.SecurityGroupNotFound(id=", ".join(missing))
    if len({bool(r.stateful) for r in rows}) > 1:
        raise exc.SecurityGroupConflict(reason="Cannot apply both stateful and stateless "
                                               "security groups on the same port at the same "
                                               "time")


def bind_groups(conn: Connection, port_id: str, group_ids: Iterable[str],
                replace: bool) -> None:
    """Make the port's groups exactly these (replace) or add them (a new port)."""
    if replace:
        conn.execute(delete(SG_PORT_BINDINGS).where(SG_PORT_BINDINGS.c.port_id == port_id))
    rows = [{"port_id": port_id, "security_group_id": g,
             "member_bucket": changes.member_bucket(port_id)} for g in sorted(set(group_ids))]
    if rows:
        conn.execute(_INSERT_BINDINGS, rows)


def requested_groups(body: dict[str, Any]) -> list[str] | None:
    """The groups a body asks for ([] for null), or None when it does not say."""
    if "security_groups" not in body:
        return None
    return list(body["security_groups"] or [])


def check_groups_allowed(groups: list[str], enabled: bool) -> None:
    """Groups asked for need port security (not an address: Neutron's ML2 takes groups on a
    port of a network without subnets, and so does tempest)."""
    if groups and not enabled:
        raise exc.PortSecurityAndIPRequiredForSecurityGroups()
