"""IP address management: subnet geometry as pure functions, and the address picker.

Addresses are picked at random within the pools, not lowest-first: concurrent creators then
rarely want the same address, and finding one costs a single indexed look-up however full
the subnet is. When random probes keep hitting used addresses the picker scans the pools in
address order, so a nearly full subnet still finds its last free address and a full one
answers `IpAddressGenerationFailure`. The database's unique key settles any remaining race.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import netaddr
from sqlalchemy import Connection, bindparam, select

from neutrino import exceptions as exc
from neutrino.db.models import ALLOCS
from neutrino.services.networks import DHCP_OWNER

RANDOM_PROBES = 6
SCAN_CHUNK = 2048
SCAN_CHOICES = 64


AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


def serves(subnet: dict[str, Any], device_owner: str) -> bool:
    """Whether a subnet addresses ports of `device_owner` (subnet-service-types): it has no
    service types, or they name the device owner; a DHCP port may use any subnet with DHCP
    enabled, as in Neutron."""
    types = subnet["service_types"]
    return not types or device_owner in types or (
        device_owner == DHCP_OWNER and bool(subnet["enable_dhcp"]))


def is_auto_address(subnet: dict[str, Any]) -> bool:
    """An IPv6 subnet whose ports take their EUI-64 address (SLAAC, DHCPv6-stateless), as
    Neutron decides it: the address mode, or the RA mode when no address mode is set."""
    if subnet["ip_version"] != 6:
        return False
    mode = subnet.get("ipv6_address_mode")
    if mode is None:
        mode = subnet.get("ipv6_ra_mode")
    return mode in AUTO_ADDRESS_MODES


def eui64_address(subnet: dict[str, Any], mac: str) -> str:
    """A port's address on an auto-addressed subnet: the /64 prefix and the MAC's modified
    EUI-64 interface identifier."""
    prefix = netaddr.IPNetwork(subnet["cidr"])
    return str(netaddr.EUI(mac).ipv6(prefix.network))


def allocation(subnet_id: str, address: str, port_id: str, network_id: str) -> dict[str, str]:
    """An `ipallocations` row."""
    return {"subnet_id": subnet_id, "ip_address": address, "ip_key": ip_key(address),
            "port_id": port_id, "network_id": network_id}


def ip_key(address: str | netaddr.IPAddress) -> str:
    """The sortable key of an address: its integer value as 32 hex digits."""
    return f"{int(netaddr.IPAddress(address)):032x}"


def key_to_ip(key: int, version: int) -> str:
    """The address whose integer value is `key`."""
    return str(netaddr.IPAddress(key, version=version))


def _usable(net: netaddr.IPNetwork) -> tuple[int, int]:
    """First and last addresses hosts may use: IPv4 loses network and broadcast, IPv6 the
    subnet-router anycast address (except in the tiniest subnets)."""
    first, last = net.first, net.last
    if net.version == 4:
        if net.prefixlen <= 30:
            first, last = first + 1, last - 1
    elif net.prefixlen <= 126:
        first += 1
    return first, last


def default_gateway(cidr: str) -> str:
    """The first usable address of the subnet."""
    net = netaddr.IPNetwork(cidr)
    return str(netaddr.IPAddress(_usable(net)[0], version=net.version))


def default_pools(cidr: str, gateway: str | None) -> list[dict[str, str]]:
    """The whole usable range of the subnet, less the gateway."""
    net = netaddr.IPNetwork(cidr)
    first, last = _usable(net)
    ranges = [(first, last)]
    if gateway is not None:
        gw = int(netaddr.IPAddress(gateway))
        if first <= gw <= last:
            ranges = [(a, b) for a, b in ((first, gw - 1), (gw + 1, last)) if a <= b]
    return [{"start": key_to_ip(a, net.version), "end": key_to_ip(b, net.version)}
            for a, b in ranges]


def validate_gateway(cidr: str, gateway: str | None) -> None:
    """A gateway must be a usable address of the subnet."""
    if gateway is None:
        return
    net = netaddr.IPNetwork(cidr)
    ip = netaddr.IPAddress(gateway)
    first, last = _usable(net)
    if ip.version != net.version or not first <= int(ip) <= last:
        raise exc.BadRequest(resource="subnet",
                             msg=f"Gateway is not valid on subnet: {gateway} in {cidr}")


def validate_pools(cidr: str, gateway: str | None, pools: Sequence[dict[str, str]]) -> None:
    """Pools must be ordered, inside the usable range, disjoint, and free of the gateway."""
    net = netaddr.IPNetwork(cidr)
    first, last = _usable(net)
    ranges = []
    for pool in pools:
        start, end = netaddr.IPAddress(pool["start"]), netaddr.IPAddress(pool["end"])
        text = f"{pool['start']}-{pool['end']}"
        if start.version != net.version or end.version != net.version or start > end:
            raise exc.InvalidAllocationPool(pool=text)
        if not (first <= int(start) and int(end) <= last):
            raise exc.OutOfBoundsAllocationPool(pool=text, subnet_cidr=cidr)
        ranges.append((int(start), int(end), text))
    ranges.sort()
    for (_, end_a, text_a), (start_b, _, text_b) in itertools.pairwise(ranges):
        if start_b <= end_a:
            raise exc.OverlappingAllocationPools(pool_1=text_a, pool_2=text_b, subnet_cidr=cidr)
    if gateway is not None:
        gw = int(netaddr.IPAddress(gateway))
        for start, end, text in ranges:
            if start <= gw <= end:
                raise exc.GatewayConflictWithAllocationPools(ip_address=gateway, pool=text)


def check_address(subnet: dict[str, Any], address: str) -> None:
    """A requested fixed IP must be a usable address of its subnet."""
    net = netaddr.IPNetwork(subnet["cidr"])
    ip = netaddr.IPAddress(address)
    first, last = _usable(net)
    if ip.version != net.version or not first <= int(ip) <= last:
        raise exc.InvalidIpForSubnet(ip_address=address)


def address_in_subnet(subnet: dict[str, Any], address: str) -> bool:
    """Whether `address` lies within the subnet's CIDR."""
    ip = netaddr.IPAddress(address)
    net = netaddr.IPNetwork(subnet["cidr"])
    return ip.version == net.version and ip in net


def _pool_ranges(subnet: dict[str, Any]) -> list[tuple[int, int]]:
    return [(int(netaddr.IPAddress(p["start"])), int(netaddr.IPAddress(p["end"])))
            for p in subnet["allocation_pools"]]


# Built once: SQLAlchemy then computes its cache key once, not on every probe.
_IS_ALLOCATED = select(ALLOCS.c.port_id).where(
    ALLOCS.c.subnet_id == bindparam("subnet_id"), ALLOCS.c.ip_key == bindparam("ip_key"))


def is_allocated(conn: Connection, subnet_id: str, address: str) -> bool:
    """Whether the address is taken on the subnet."""
    row = conn.execute(_IS_ALLOCATED, {"subnet_id": subnet_id,
                                       "ip_key": ip_key(address)}).first()
    return row is not None


def pick_address(conn: Connection, subnet: dict[str, Any],
                 rng: random.Random | None = None) -> str | None:
    """A free address from the subnet's pools, or None if they are full."""
    rng = rng or random.SystemRandom()
    ranges = _pool_ranges(subnet)
    if not ranges:
        return None
    version = subnet["ip_version"]
    sizes = [b - a + 1 for a, b in ranges]
    for _ in range(RANDOM_PROBES):
        start, end = rng.choices(ranges, weights=sizes)[0]
        candidate = rng.randint(start, end)
        address = key_to_ip(candidate, version)
        if not is_allocated(conn, subnet["id"], address):
            return address
    free = _scan_for_free(conn, subnet["id"], ranges, SCAN_CHOICES)
    return key_to_ip(rng.choice(free), version) if free else None


def _scan_for_free(conn: Connection, subnet_id: str, ranges: list[tuple[int, int]],
                   wanted: int) -> list[int]:
    """Up to `wanted` free addresses, lowest first, walking the allocations in key order.

    The caller picks one at random: concurrent creators scanning a nearly full subnet would
    otherwise all want its lowest free address and all but one lose the race.
    """
    free: list[int] = []
    for start, end in ranges:
        expected = start
        while expected <= end and len(free) < wanted:
            rows = conn.execute(
                select(ALLOCS.c.ip_key)
                .where(ALLOCS.c.subnet_id == subnet_id,
                       ALLOCS.c.ip_key >= f"{expected:032x}", ALLOCS.c.ip_key <= f"{end:032x}")
                .order_by(ALLOCS.c.ip_key).limit(SCAN_CHUNK)).scalars().all()
            for key in rows:
                value = int(key, 16)
                while expected < value and len(free) < wanted:
                    free.append(expected)
                    expected += 1
                expected = value + 1
            if len(rows) < SCAN_CHUNK:
                while expected <= end and len(free) < wanted:
                    free.append(expected)
                    expected += 1
        if len(free) >= wanted:
            break
    return free


def lowest_free(conn: Connection, subnet: dict[str, Any]) -> str | None:
    """The lowest free address of the subnet's pools (routers' gateways and floating IPs take
    these, as operators expect: the gateway is "usually the lowest address of the pool")."""
    free = _scan_for_free(conn, subnet["id"], _pool_ranges(subnet), 1)
    return key_to_ip(free[0], subnet["ip_version"]) if free else None
