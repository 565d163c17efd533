"""A port's own DHCP options (`extra_dhcp_opt`): stored per (name, IP version), read in
bulk for a page of ports and for the DHCP agents, merged on update as Neutron merges them
(a null value removes an option, a new name adds one, a known one changes)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, insert, select

from neutrino.db.models import EXTRA_DHCP_OPTS


def opts_of(conn: Connection, port_ids: Iterable[str] | ColumnElement[bool],
            ) -> dict[str, list[dict[str, Any]]]:
    """The options of ports (given by id or by a condition on their id), by port."""
    where = port_ids if isinstance(port_ids, ColumnElement) \
        else EXTRA_DHCP_OPTS.c.port_id.in_(list(port_ids))
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for port_id, name, version, value in conn.execute(
            select(EXTRA_DHCP_OPTS.c.port_id, EXTRA_DHCP_OPTS.c.opt_name,
                   EXTRA_DHCP_OPTS.c.ip_version, EXTRA_DHCP_OPTS.c.opt_value)
            .where(where).order_by(EXTRA_DHCP_OPTS.c.ip_version, EXTRA_DHCP_OPTS.c.opt_name)):
        found[port_id].append({"opt_name": name, "opt_value": value, "ip_version": version})
    return found


def merged(current: list[dict[str, Any]], changes: list[dict[str, Any]],
           ) -> list[dict[str, Any]]:
    """Options after an update: each change sets or (null value) removes its option."""
    by_key = {(o["opt_name"], o["ip_version"]): o for o in current}
    for change in changes:
        key = (change["opt_name"], change["ip_version"])
        if change["opt_value"] is None:
            by_key.pop(key, None)
        else:
            by_key[key] = change
    return sorted(by_key.values(), key=lambda o: (o["ip_version"], o["opt_name"]))


def set_opts(conn: Connection, port_id: str, wanted: list[dict[str, Any]],
             replace: bool) -> list[dict[str, Any]]:
    """Store a port's options (those with a value); return them as rendered."""
    kept = merged([], wanted)
    if replace:
        conn.execute(delete(EXTRA_DHCP_OPTS).where(EXTRA_DHCP_OPTS.c.port_id == port_id))
    if kept:
        conn.execute(insert(EXTRA_DHCP_OPTS), [{"port_id": port_id, **o} for o in kept])
    return kept
