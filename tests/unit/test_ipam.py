"""IPAM: subnet geometry (pure, table-driven) and the address picker on a real database."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import insert

from neutrino import exceptions as exc
from neutrino.db.api import Database
from neutrino.db.models import Base, IPAllocation, Network, Port, Subnet
from neutrino.services import ipam


@pytest.mark.parametrize(("cidr", "gateway", "pools"), [
    ("10.0.0.0/24", "10.0.0.1", [("10.0.0.2", "10.0.0.254")]),
    ("10.0.0.0/30", "10.0.0.1", [("10.0.0.2", "10.0.0.2")]),
    ("10.0.0.0/31", "10.0.0.0", [("10.0.0.1", "10.0.0.1")]),
    ("10.0.0.0/32", "10.0.0.0", []),
    ("2001:db8::/64", "2001:db8::1", [("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")]),
])
def test_default_gateway_and_pools(cidr: str, gateway: str,
                                   pools: list[tuple[str, str]]) -> None:
    """The first usable address is the gateway; the pools are the rest of the usable range."""
    assert ipam.default_gateway(cidr) == gateway
    assert ipam.default_pools(cidr, gateway) == [{"start": a, "end": b} for a, b in pools]


def test_pools_without_gateway_and_with_a_gateway_inside() -> None:
    """No gateway leaves the range whole; a gateway in the middle splits it."""
    assert ipam.default_pools("10.0.0.0/29", None) == [{"start": "10.0.0.1", "end": "10.0.0.6"}]
    assert ipam.default_pools("10.0.0.0/29", "10.0.0.3") == [
        {"start": "10.0.0.1", "end": "10.0.0.2"}, {"start": "10.0.0.4", "end": "10.0.0.6"}]


@pytest.mark.parametrize(("pools", "gateway", "error"), [
    ([("10.0.0.9", "10.0.0.2")], "10.0.0.1", exc.InvalidAllocationPool),
    ([("10.0.0.0", "10.0.0.9")], None, exc.OutOfBoundsAllocationPool),
    ([("10.0.0.2", "10.0.0.255")], None, exc.OutOfBoundsAllocationPool),
    ([("10.0.1.2", "10.0.1.9")], None, exc.OutOfBoundsAllocationPool),
    ([("10.0.0.2", "10.0.0.9"), ("10.0.0.9", "10.0.0.20")], None, exc.OverlappingAllocationPools),
    ([("10.0.0.1", "10.0.0.9")], "10.0.0.5", exc.GatewayConflictWithAllocationPools),
    ([("2001:db8::2", "2001:db8::9")], None, exc.InvalidAllocationPool),
])
def test_bad_pools(pools: list[tuple[str, str]], gateway: str | None,
                   error: type[Exception]) -> None:
    """Each way a pool can be wrong has its own error."""
    with pytest.raises(error):
        ipam.validate_pools("10.0.0.0/24", gateway,
                            [{"start": a, "end": b} for a, b in pools])


@pytest.mark.parametrize(("gateway", "valid"), [
    ("10.0.0.1", True), ("10.0.0.254", True), ("10.0.0.0", False), ("10.0.0.255", False),
    ("10.0.1.1", False), ("2001:db8::1", False),
])
def test_gateway_must_be_usable(gateway: str, valid: bool) -> None:
    """A gateway is a usable address of its subnet."""
    if valid:
        ipam.validate_gateway("10.0.0.0/24", gateway)
    else:
        with pytest.raises(exc.BadRequest):
            ipam.validate_gateway("10.0.0.0/24", gateway)


def test_ip_key_sorts_like_addresses() -> None:
    """Keys compare as the addresses do, across octet boundaries and families."""
    addresses = ["10.0.0.9", "10.0.0.10", "10.0.1.0", "2001:db8::1"]
    keys = [ipam.ip_key(a) for a in addresses]
    assert keys == sorted(keys) and all(len(k) == 32 for k in keys)


@pytest.fixture
def db(tmp_path: object) -> Iterator[Database]:
    """An embedded database with one network and subnet 10.0.0.0/28."""
    database = Database("sqlite:///:memory:")
    Base.metadata.create_all(database.engine)
    now = datetime(2026, 1, 1)
    std = {"project_id": "p", "name": "", "description": "", "created_at": now,
           "updated_at": now, "revision_number": 0}

    def setup(conn: object) -> None:
        conn.execute(insert(Network.__table__).values(  # type: ignore[attr-defined]
            id="n", mtu=1450, network_type="vxlan", availability_zone_hints=[], **std))
        conn.execute(insert(Subnet.__table__).values(  # type: ignore[attr-defined]
            id="s", network_id="n", ip_version=4, cidr="10.0.0.0/28", gateway_ip="10.0.0.1",
            allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.14"}], dns_nameservers=[],
            host_routes=[], service_types=[], **std))

    database.write(setup)
    yield database
    database.dispose()


SUBNET = {"id": "s", "ip_version": 4, "allocation_pools": [
    {"start": "10.0.0.2", "end": "10.0.0.14"}]}


def _take(db: Database, address: str, n: int) -> None:
    def txn(conn: object) -> None:
        conn.execute(insert(Port.__table__).values(  # type: ignore[attr-defined]
            id=f"p{n}", network_id="n", mac_address=f"fa:16:3e:00:00:{n:02x}",
            binding_vif_details={}, binding_profile={}, project_id="p", name="", description="",
            created_at=datetime(2026, 1, 1), updated_at=datetime(2026, 1, 1), revision_number=0))
        conn.execute(insert(IPAllocation.__table__).values(  # type: ignore[attr-defined]
            subnet_id="s", ip_address=address, ip_key=ipam.ip_key(address), port_id=f"p{n}",
            network_id="n"))

    db.write(txn)


def test_picker_fills_the_pool_then_reports_it_full(db: Database) -> None:
    """Every address of the pool is handed out once, then None."""
    rng = random.Random(7)
    seen = []
    for n in range(13):
        with db.read() as conn:
            address = ipam.pick_address(conn, SUBNET, rng)
        assert address is not None
        seen.append(address)
        _take(db, address, n)
    assert sorted(seen, key=ipam.ip_key) == [f"10.0.0.{i}" for i in range(2, 15)]
    with db.read() as conn:
        assert ipam.pick_address(conn, SUBNET, rng) is None


def test_picker_finds_the_last_free_address(db: Database) -> None:
    """With one address left, random probes may miss it; the scan does not."""
    for n, i in enumerate(i for i in range(2, 15) if i != 11):
        _take(db, f"10.0.0.{i}", n)
    for seed in range(20):
        with db.read() as conn:
            assert ipam.pick_address(conn, SUBNET, random.Random(seed)) == "10.0.0.11"
