"""Network IP availability (Neutron's `network-ip-availability`): for each network and its
subnets, how many addresses the pools hold and how many are allocated. Admins only."""

from __future__ import annotations

from collections import Counter
from typing import Any

import netaddr
from sqlalchemy import Connection, func, select

from neutrino import exceptions as exc
from neutrino.db.models import ALLOCS, NETWORKS, SUBNETS
from neutrino.schema.policy import Context
from neutrino.services.common import Core

# Filters the list takes, as Neutron's (others are ignored there too).
FILTERS = ("network_id", "network_name", "project_id", "tenant_id", "ip_version")


def pool_size(subnet: dict[str, Any]) -> int:
    """Addresses a subnet's allocation pools hold (its whole CIDR without pools)."""
    pools = subnet["allocation_pools"] or []
    if not pools:
        return int(netaddr.IPNetwork(subnet["cidr"]).size)
    return sum(netaddr.IPRange(p["start"], p["end"]).size for p in pools)


class IpAvailabilityService:
    """Totals and allocations per network and subnet."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def list_all(self, ctx: Context, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """Every network matching the filters, with its subnets' figures."""
        self.core.policy.enforce(ctx, "get_network_ip_availability", {})
        with self.core.db.read() as conn:
            return self._figures(conn, filters)

    def get(self, ctx: Context, network_id: str) -> dict[str, Any]:
        """One network's figures (NetworkNotFound if there is no such network)."""
        self.core.policy.enforce(ctx, "get_network_ip_availability", {})
        with self.core.db.read() as conn:
            found = self._figures(conn, {"network_id": [network_id]})
        if not found:
            raise exc.NetworkNotFound(net_id=network_id)
        return found[0]

    @staticmethod
    def _figures(conn: Connection, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        nets = select(NETWORKS.c.id, NETWORKS.c.name, NETWORKS.c.project_id)
        for key, column in (("network_id", NETWORKS.c.id), ("network_name", NETWORKS.c.name),
                            ("project_id", NETWORKS.c.project_id),
                            ("tenant_id", NETWORKS.c.project_id)):
            if filters.get(key):
                nets = nets.where(column.in_(filters[key]))
        networks = {r.id: r for r in conn.execute(nets.order_by(NETWORKS.c.id))}
        subnet_query = select(SUBNETS.c.id, SUBNETS.c.name, SUBNETS.c.network_id,
                              SUBNETS.c.cidr, SUBNETS.c.ip_version,
                              SUBNETS.c.allocation_pools).where(
            SUBNETS.c.network_id.in_(list(networks))).order_by(SUBNETS.c.created_at,
                                                              SUBNETS.c.id)
        versions = {int(v) for v in filters.get("ip_version", []) if str(v).isdigit()}
        if filters.get("ip_version"):
            subnet_query = subnet_query.where(SUBNETS.c.ip_version.in_(versions))
        subnets = [dict(r._mapping) for r in conn.execute(subnet_query)]
        used = Counter({subnet_id: int(n) for subnet_id, n in conn.execute(
            select(ALLOCS.c.subnet_id, func.count()).where(
                ALLOCS.c.subnet_id.in_([s["id"] for s in subnets]))
            .group_by(ALLOCS.c.subnet_id))})
        out: dict[str, dict[str, Any]] = {}
        for network_id, row in networks.items():
            out[network_id] = {"network_id": network_id, "network_name": row.name,
                               "project_id": row.project_id, "tenant_id": row.project_id,
                               "subnet_ip_availability": [], "total_ips": 0, "used_ips": 0}
        for subnet in subnets:
            figures = {"subnet_id": subnet["id"], "subnet_name": subnet["name"],
                       "cidr": subnet["cidr"], "ip_version": subnet["ip_version"],
                       "total_ips": pool_size(subnet), "used_ips": used[subnet["id"]]}
            network = out[subnet["network_id"]]
            network["subnet_ip_availability"].append(figures)
            network["total_ips"] += figures["total_ips"]
            network["used_ips"] += figures["used_ips"]
        if filters.get("ip_version"):  # as Neutron's inner join: networks with such subnets
            return [n for n in out.values() if n["subnet_ip_availability"]]
        return list(out.values())
