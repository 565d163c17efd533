"""What a Linux bridge agent is sent to enforce security groups on its host.

Keys besides its networks (whose ports carry their groups, port security and allowed
address pairs):
- `("security_group", G)`: the rules of a group that a filtered port of the host is in;
- `("sg_members", "R:bb")`: one of `MEMBER_BUCKETS` buckets of the addresses of a group R
  that such rules name as remote group (a port joining R changes one bucket);
- `("address_group", A)`: the CIDRs of an address group such rules name.
A group's state always travels with its members' and address groups' keys (`related`): a
rule naming a new remote group brings that group's members along.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, select

from neutrino.agent.contract import Key
from neutrino.db.models import (
    ADDRESS_GROUP_ADDRESSES,
    ALLOCS,
    ALLOWED_ADDRESS_PAIRS,
    PORTS,
    SECURITY_GROUP_RULES,
    SECURITY_GROUPS,
    SG_PORT_BINDINGS,
)
from neutrino.services.changes import (
    ADDRESS_GROUP,
    MEMBER_BUCKETS,
    MEMBERS,
    SECURITY_GROUP,
    Scope,
)

KINDS = frozenset({SECURITY_GROUP, MEMBERS, ADDRESS_GROUP})
FEW_BUCKETS = 4  # up to this many buckets of a group are read one by one
RULE_COLUMNS = (SECURITY_GROUP_RULES.c.id, SECURITY_GROUP_RULES.c.direction,
                SECURITY_GROUP_RULES.c.ethertype, SECURITY_GROUP_RULES.c.protocol,
                SECURITY_GROUP_RULES.c.port_range_min, SECURITY_GROUP_RULES.c.port_range_max,
                SECURITY_GROUP_RULES.c.remote_ip_prefix, SECURITY_GROUP_RULES.c.remote_group_id,
                SECURITY_GROUP_RULES.c.remote_address_group_id)


def bucket_keys(group_id: str) -> set[Key]:
    """Every member bucket key of a group."""
    return {(MEMBERS, f"{group_id}:{b:02x}") for b in range(MEMBER_BUCKETS)}


def local_groups(conn: Connection, host: str) -> set[str]:
    """Groups of the filtered ports bound to a host."""
    return set(conn.execute(
        select(SG_PORT_BINDINGS.c.security_group_id).distinct()
        .join(PORTS, PORTS.c.id == SG_PORT_BINDINGS.c.port_id)
        .where(PORTS.c.binding_host_id == host, PORTS.c.port_security_enabled.is_(True))
    ).scalars())


def _remotes(conn: Connection, groups: Iterable[str]) -> tuple[set[str], set[str]]:
    """(remote groups, address groups) that the rules of some groups name."""
    ids = sorted(set(groups))
    if not ids:
        return set(), set()
    remote, addresses = set(), set()
    for group_id, address_group_id in conn.execute(
            select(SECURITY_GROUP_RULES.c.remote_group_id,
                   SECURITY_GROUP_RULES.c.remote_address_group_id)
            .where(SECURITY_GROUP_RULES.c.security_group_id.in_(ids))):
        if group_id:
            remote.add(group_id)
        if address_group_id:
            addresses.add(address_group_id)
    return remote, addresses


def scopes(conn: Connection, host: str) -> dict[Scope, set[Key]]:
    """Change scope -> the host agent's security keys it may alter."""
    groups = local_groups(conn, host)
    remote, address_groups = _remotes(conn, groups)
    out: dict[Scope, set[Key]] = {(SECURITY_GROUP, g): {(SECURITY_GROUP, g)} for g in groups}
    for group_id in remote:
        for key in bucket_keys(group_id):
            out[key] = {key}
    for address_group_id in address_groups:
        out[(ADDRESS_GROUP, address_group_id)] = {(ADDRESS_GROUP, address_group_id)}
    return out


def related(conn: Connection, key: Key) -> set[Key]:
    """Keys whose state must travel with a key's: a group's remote members and address
    groups."""
    if key[0] != SECURITY_GROUP:
        return set()
    remote, address_groups = _remotes(conn, [key[1]])
    out = {(ADDRESS_GROUP, a) for a in address_groups}
    for group_id in remote:
        out |= bucket_keys(group_id)
    return out


def state(conn: Connection, key: Key, agent: Row[Any]) -> dict[str, Any] | None:
    """The desired state of a security key for a host's agent (None: not wanted there)."""
    kind, object_id = key
    groups = local_groups(conn, agent.host)
    if kind == SECURITY_GROUP:
        if object_id not in groups:
            return None
        row = conn.execute(select(SECURITY_GROUPS.c.id, SECURITY_GROUPS.c.stateful)
                           .where(SECURITY_GROUPS.c.id == object_id)).first()
        if row is None:
            return None
        rules = [dict(r._mapping) for r in conn.execute(
            select(*RULE_COLUMNS).where(SECURITY_GROUP_RULES.c.security_group_id == object_id)
            .order_by(SECURITY_GROUP_RULES.c.id))]
        return {"id": row.id, "stateful": bool(row.stateful), "rules": rules}
    if kind == MEMBERS:
        return states_of(conn, [key], agent)[key]
    _, address_groups = _remotes(conn, groups)
    if kind == ADDRESS_GROUP:
        if object_id not in address_groups:
            return None
        addresses = conn.execute(select(ADDRESS_GROUP_ADDRESSES.c.address).where(
            ADDRESS_GROUP_ADDRESSES.c.address_group_id == object_id)).scalars().all()
        return {"id": object_id, "addresses": sorted(addresses)}
    return None


def states_of(conn: Connection, keys: Iterable[Key], agent: Row[Any]
              ) -> dict[Key, dict[str, Any] | None]:
    """The states of many security keys at once: the host's groups are read once, and a
    group's members once for all its buckets (a rule naming a group of ten thousand sends
    its 64 buckets: one read, not 64)."""
    wanted = sorted(set(keys))
    out: dict[Key, dict[str, Any] | None] = {}
    buckets: dict[str, list[Key]] = {}
    rest = []
    for key in wanted:
        if key[0] == MEMBERS:
            buckets.setdefault(key[1].partition(":")[0], []).append(key)
        else:
            rest.append(key)
    for key in rest:
        out[key] = state(conn, key, agent)
    if buckets:
        remote, _ = _remotes(conn, local_groups(conn, agent.host))
        for group_id, group_keys in buckets.items():
            every = None
            if group_id in remote and len(group_keys) > FEW_BUCKETS:
                every = _bucketed(conn, group_id)
            for key in group_keys:
                bucket = key[1].partition(":")[2]
                if group_id not in remote:
                    out[key] = None
                    continue
                found = sorted(every.get(int(bucket, 16), ())) if every is not None \
                    else members(conn, group_id, int(bucket, 16))
                out[key] = {"group_id": group_id, "bucket": bucket, "addresses": found}
    return out


def _bucketed(conn: Connection, group_id: str) -> dict[int, set[str]]:
    """A group's member addresses by bucket."""
    owner = {r.port_id: r.member_bucket for r in conn.execute(
        select(SG_PORT_BINDINGS.c.port_id, SG_PORT_BINDINGS.c.member_bucket)
        .where(SG_PORT_BINDINGS.c.security_group_id == group_id))}
    out: dict[int, set[str]] = {}
    if not owner:
        return out
    members_of = select(SG_PORT_BINDINGS.c.port_id).where(
        SG_PORT_BINDINGS.c.security_group_id == group_id)
    for table in (ALLOCS, ALLOWED_ADDRESS_PAIRS):
        for port_id, address in conn.execute(select(table.c.port_id, table.c.ip_address)
                                             .where(table.c.port_id.in_(members_of))):
            out.setdefault(owner[port_id], set()).add(address)
    return out


def members(conn: Connection, group_id: str, bucket: int) -> list[str]:
    """The addresses of a group's member ports in one bucket: fixed IPs and allowed
    address pairs."""
    ports = select(SG_PORT_BINDINGS.c.port_id).where(
        SG_PORT_BINDINGS.c.security_group_id == group_id,
        SG_PORT_BINDINGS.c.member_bucket == bucket)
    out = set(conn.execute(select(ALLOCS.c.ip_address)
                           .where(ALLOCS.c.port_id.in_(ports))).scalars())
    out |= set(conn.execute(select(ALLOWED_ADDRESS_PAIRS.c.ip_address)
                            .where(ALLOWED_ADDRESS_PAIRS.c.port_id.in_(ports))).scalars())
    return sorted(out)


def port_security(conn: Connection, ports: list[dict[str, Any]]) -> None:
    """Add each port's groups and allowed address pairs (port security is a column)."""
    ids = [p["id"] for p in ports]
    if not ids:
        return
    groups: dict[str, list[str]] = {}
    for port_id, group_id in conn.execute(
            select(SG_PORT_BINDINGS.c.port_id, SG_PORT_BINDINGS.c.security_group_id)
            .where(SG_PORT_BINDINGS.c.port_id.in_(ids))):
        groups.setdefault(port_id, []).append(group_id)
    pairs: dict[str, list[dict[str, str]]] = {}
    for port_id, mac, address in conn.execute(
            select(ALLOWED_ADDRESS_PAIRS.c.port_id, ALLOWED_ADDRESS_PAIRS.c.mac_address,
                   ALLOWED_ADDRESS_PAIRS.c.ip_address)
            .where(ALLOWED_ADDRESS_PAIRS.c.port_id.in_(ids))):
        pairs.setdefault(port_id, []).append({"mac_address": mac, "ip_address": address})
    for port in ports:
        port["security_groups"] = sorted(groups.get(port["id"], []))
        port["allowed_address_pairs"] = sorted(pairs.get(port["id"], []),
                                               key=lambda p: (p["ip_address"],
                                                              p["mac_address"]))
