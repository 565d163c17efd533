"""Subnet pools and address scopes (`subnet_allocation`, `default-subnetpools`,
`subnetpool-prefix-ops`, `address-scope`): subnets carved from pools, as a member, a
shared pool's user and an admin see them, through the HTTP API, the CLI and openstacksdk."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, ALICE, _server
from tests.functional.test_api import error, ok
from tests.support import Server, openstack_cli


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    """An http_basic server on each backend (the pool's lock differs): admin, alice of
    project-a, bob of project-b."""
    yield from _server(tmp_path_factory.mktemp(f"pools-{backend}"), backend, "http_basic")


def _pool(client: httpx.Client, name: str, prefixes: list[str], status: int = 201,
          **extra: Any) -> dict[str, Any]:
    reply = client.post("/v2.0/subnetpools", json={"subnetpool": {
        "name": name, "prefixes": prefixes, **extra}})
    return dict(ok(reply, status)["subnetpool"])


def _network(client: httpx.Client, name: str) -> str:
    return str(ok(client.post("/v2.0/networks", json={"network": {"name": name}}),
                  201)["network"]["id"])


def _subnet(client: httpx.Client, network: str, **body: Any) -> httpx.Response:
    return client.post("/v2.0/subnets", json={"subnet": {
        "network_id": network, "ip_version": 4, **body}})


@pytest.fixture(scope="module")
def sqlite_pools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same on SQLite only, for the CLI and the SDK: what they send does not depend on
    the database."""
    yield from _server(tmp_path_factory.mktemp("pools-cli"), "sqlite", "http_basic")


def _clean(admin: httpx.Client) -> None:
    """Remove every network, pool and scope."""
    for net in ok(admin.get("/v2.0/networks"))["networks"]:
        ok(admin.delete(f"/v2.0/networks/{net['id']}"), 204)
    for pool in ok(admin.get("/v2.0/subnetpools"))["subnetpools"]:
        ok(admin.delete(f"/v2.0/subnetpools/{pool['id']}"), 204)
    for scope in ok(admin.get("/v2.0/address-scopes"))["address_scopes"]:
        ok(admin.delete(f"/v2.0/address-scopes/{scope['id']}"), 204)


@pytest.fixture
def cleanup(admin: httpx.Client) -> Iterator[None]:
    """Remove what the test made."""
    yield
    _clean(admin)


def test_a_pool_and_its_checks(alice: httpx.Client, cleanup: None) -> None:
    """Neutron's defaults (min /8, max /32, default the min; answered as strings, as
    Neutron answers them), prefixes compacted, and the
    errors of bad prefixes and bounds; only admins share pools or make them default."""
    pool = _pool(alice, "p1", ["10.80.1.0/24", "10.80.0.0/24", "10.80.0.128/25"])
    assert {k: pool[k] for k in ("name", "prefixes", "ip_version", "min_prefixlen",
                                 "max_prefixlen", "default_prefixlen", "default_quota",
                                 "shared", "is_default", "address_scope_id", "project_id",
                                 "revision_number", "tags")} == {
        "name": "p1", "prefixes": ["10.80.0.0/23"], "ip_version": 4, "min_prefixlen": "8",
        "max_prefixlen": "32", "default_prefixlen": "8", "default_quota": None, "shared": False,
        "is_default": False, "address_scope_id": None, "project_id": "project-a",
        "revision_number": 0, "tags": []}
    assert ok(alice.get(f"/v2.0/subnetpools/{pool['id']}"))["subnetpool"] == pool
    six = _pool(alice, "p6", ["2001:db8:80::/48"])
    assert (six["ip_version"], six["min_prefixlen"], six["max_prefixlen"]) == (6, "64", "128")

    def refused(body: dict[str, Any], status: int, kind: str) -> str:
        return error(alice.post("/v2.0/subnetpools", json={"subnetpool": body}), status, kind)

    assert refused({"name": "e", "prefixes": []}, 400, "EmptySubnetPoolPrefixList")
    assert refused({"name": "m", "prefixes": ["10.81.0.0/16", "2001:db8::/32"]}, 400,
                   "PrefixVersionMismatch")
    assert refused({"name": "b", "prefixes": ["10.81.0.0/16"], "min_prefixlen": 26,
                    "max_prefixlen": 24}, 400, "IllegalSubnetPoolPrefixBounds") == \
        "Illegal prefix bounds: min_prefixlen=26, max_prefixlen=24."
    assert refused({"name": "d", "prefixes": ["10.81.0.0/16"], "min_prefixlen": 20,
                    "default_prefixlen": 16}, 400, "IllegalSubnetPoolPrefixBounds") == \
        "Illegal prefix bounds: default_prefixlen=16, min_prefixlen=20."
    assert refused({"name": "x", "prefixes": ["10.81.0.0/16"], "max_prefixlen": 33}, 400,
                   "IllegalSubnetPoolPrefixBounds")
    refused({"prefixes": ["10.81.0.0/16"]}, 400, "HTTPBadRequest")  # a pool needs a name
    refused({"name": " ", "prefixes": ["10.81.0.0/16"]}, 400, "InvalidInput")
    refused({"name": "s", "prefixes": ["10.81.0.0/16"], "shared": True}, 403,
            "PolicyNotAuthorized")
    refused({"name": "s", "prefixes": ["10.81.0.0/16"], "is_default": True}, 403,
            "PolicyNotAuthorized")


def test_subnets_are_carved_from_the_pool(alice: httpx.Client, bob: httpx.Client,
                                          cleanup: None) -> None:
    """Any block of a length (the tightest free one first) or a given CIDR if free, with
    Neutron's errors for bounds, taken space, exhaustion and mixed pools on a network."""
    pool = _pool(alice, "carve", ["10.82.0.0/22"], min_prefixlen=23, max_prefixlen=28,
                 default_prefixlen=24)
    net = _network(alice, "carve-net")
    first = ok(_subnet(alice, net, subnetpool_id=pool["id"]), 201)["subnet"]
    assert (first["cidr"], first["gateway_ip"], first["allocation_pools"],
            first["subnetpool_id"]) == ("10.82.0.0/24", "10.82.0.1",
                                        [{"start": "10.82.0.2", "end": "10.82.0.254"}],
                                        pool["id"])
    small = ok(_subnet(alice, net, subnetpool_id=pool["id"], prefixlen=26), 201)["subnet"]
    assert small["cidr"] == "10.82.1.0/26"  # the /24 left beside the free /23, not the /23
    given = ok(_subnet(alice, net, subnetpool_id=pool["id"], cidr="10.82.2.0/24",
                       gateway_ip=None), 201)["subnet"]
    assert (given["cidr"], given["gateway_ip"]) == ("10.82.2.0/24", None)
    assert error(_subnet(alice, net, subnetpool_id=pool["id"], cidr="10.82.0.128/25"), 409,
                 "SubnetAllocationError") == ("Failed to allocate subnet: Cannot allocate "
                                              "requested subnet from the available set of "
                                              "prefixes.")
    error(_subnet(alice, net, subnetpool_id=pool["id"], cidr="192.0.2.0/24"), 409,
          "SubnetAllocationError")
    assert error(_subnet(alice, net, subnetpool_id=pool["id"], prefixlen=29), 400,
                 "MaxPrefixSubnetAllocationError") == (
        "Unable to allocate subnet with prefix length 29, maximum allowed prefix is 28.")
    error(_subnet(alice, net, subnetpool_id=pool["id"], prefixlen=22), 400,
          "MinPrefixSubnetAllocationError")
    error(_subnet(alice, net, subnetpool_id=pool["id"], cidr="10.82.3.0/24", prefixlen=24),
          400, "BadRequest")
    error(_subnet(alice, net, subnetpool_id=pool["id"],
                  allocation_pools=[{"start": "10.82.3.2", "end": "10.82.3.9"}]), 400,
          "BadRequest")
    error(_subnet(alice, net), 400, "BadRequest")  # neither a cidr nor a pool
    error(_subnet(alice, net, ip_version=6, subnetpool_id=pool["id"]), 400, "BadRequest")
    error(_subnet(alice, net, cidr="10.83.0.0/24"), 400, "NetworkSubnetPoolAffinityError")
    last = ok(_subnet(alice, net, subnetpool_id=pool["id"]), 201)["subnet"]
    assert last["cidr"] == "10.82.3.0/24"
    # What is left is the /24 the /26 was taken from, less the /26: no /24 fits.
    assert error(_subnet(alice, net, subnetpool_id=pool["id"]), 409,
                 "SubnetAllocationError") == ("Failed to allocate subnet: Insufficient prefix "
                                              "space to allocate subnet size /24.")
    error(alice.delete(f"/v2.0/subnetpools/{pool['id']}"), 400, "SubnetPoolDeleteError")
    ok(alice.delete(f"/v2.0/subnets/{first['id']}"), 204)
    again = ok(_subnet(alice, net, subnetpool_id=pool["id"]), 201)["subnet"]
    assert again["cidr"] == "10.82.0.0/24"  # a deleted subnet's block is free again
    # Another project neither sees the pool nor takes subnets from it.
    error(bob.get(f"/v2.0/subnetpools/{pool['id']}"), 404, "SubnetPoolNotFound")
    error(_subnet(bob, _network(bob, "bob-net"), subnetpool_id=pool["id"]), 404,
          "SubnetPoolNotFound")
    assert ok(bob.get("/v2.0/subnetpools"))["subnetpools"] == []


def test_prefixes_grow_and_shrink_only_where_free(alice: httpx.Client, cleanup: None) -> None:
    """An update's prefixes must hold the old ones; add_prefixes merges, remove_prefixes
    refuses what a subnet uses."""
    pool = _pool(alice, "grow", ["10.84.0.0/24"], default_prefixlen=26, min_prefixlen=24)
    url = f"/v2.0/subnetpools/{pool['id']}"
    assert error(alice.put(url, json={"subnetpool": {"prefixes": ["10.84.1.0/24"]}}), 400,
                 "IllegalSubnetPoolPrefixUpdate") == ("Illegal update to prefixes: Existing "
                                                      "prefixes must be a subset of the new "
                                                      "prefixes.")
    grown = ok(alice.put(url, json={"subnetpool": {"prefixes": [
        "10.84.0.0/24", "10.84.1.0/24"], "name": "grown"}}))["subnetpool"]
    assert (grown["prefixes"], grown["name"], grown["revision_number"]) == (
        ["10.84.0.0/23"], "grown", 1)
    assert ok(alice.put(url + "/add_prefixes", json={"prefixes": ["10.84.8.0/24"]})) == {
        "prefixes": ["10.84.0.0/23", "10.84.8.0/24"]}
    ok(_subnet(alice, _network(alice, "grow-net"), subnetpool_id=pool["id"],
               cidr="10.84.8.0/26"), 201)
    error(alice.put(url + "/remove_prefixes", json={"prefixes": ["10.84.8.0/24"]}), 400,
          "IllegalSubnetPoolPrefixUpdate")
    assert ok(alice.put(url + "/remove_prefixes", json={"prefixes": ["10.84.1.0/24"]})) == {
        "prefixes": ["10.84.0.0/24", "10.84.8.0/24"]}
    error(alice.put(url + "/add_prefixes", json={"prefixes": ["2001:db8::/64"]}), 400,
          "PrefixVersionMismatch")
    error(alice.put(url + "/add_prefixes", json={"cidrs": []}), 400, "BadRequest")
    error(alice.put(url, json={"subnetpool": {"default_prefixlen": 20}}), 400,
          "IllegalSubnetPoolPrefixBounds")


def test_the_default_pool(admin: httpx.Client, alice: httpx.Client, cleanup: None) -> None:
    """One default pool per IP version (admins set it); `use_default_subnetpool` takes a
    subnet from it, and without one is refused."""
    pool = _pool(admin, "default4", ["10.85.0.0/16"], default_prefixlen=24, is_default=True,
                 shared=True)
    assert pool["is_default"] is True
    error(admin.post("/v2.0/subnetpools", json={"subnetpool": {
        "name": "another", "prefixes": ["10.86.0.0/16"], "is_default": True}}), 400,
        "InvalidInput")
    net = _network(alice, "default-net")
    made = ok(_subnet(alice, net, use_default_subnetpool=True), 201)["subnet"]
    assert (made["cidr"], made["subnetpool_id"]) == ("10.85.0.0/24", pool["id"])
    assert "use_default_subnetpool" not in made
    error(_subnet(alice, net, use_default_subnetpool=True, subnetpool_id=pool["id"]), 400,
          "BadRequest")
    assert error(_subnet(alice, net, ip_version=6, use_default_subnetpool=True), 400,
                 "BadRequest") == "Bad subnets request: No default subnetpool found for IPv6."
    error(alice.put(f"/v2.0/subnetpools/{pool['id']}", json={"subnetpool": {
        "is_default": False}}), 403, "PolicyNotAuthorized")


def test_a_projects_share_of_a_pool(admin: httpx.Client, alice: httpx.Client,
                                    bob: httpx.Client, cleanup: None) -> None:
    """`default_quota` counts a project's addresses in the pool (/32s for IPv4)."""
    pool = _pool(admin, "quota", ["10.87.0.0/16"], default_prefixlen=24, shared=True,
                 default_quota=512)
    net = _network(alice, "quota-net")
    for _ in range(2):
        ok(_subnet(alice, net, subnetpool_id=pool["id"]), 201)
    assert error(_subnet(alice, net, subnetpool_id=pool["id"]), 409,
                 "SubnetPoolQuotaExceeded") == "Per-project subnet pool prefix quota exceeded."
    ok(_subnet(bob, _network(bob, "quota-bob"), subnetpool_id=pool["id"]), 201)


def test_address_scopes(admin: httpx.Client, alice: httpx.Client, bob: httpx.Client,
                        cleanup: None) -> None:
    """Pools of a scope never overlap and are of its IP version; a network shows its
    subnets' scope; a scope with pools stays; only admins share scopes, for good."""
    scope = ok(alice.post("/v2.0/address-scopes", json={"address_scope": {
        "name": "s4", "ip_version": 4}}), 201)["address_scope"]
    assert scope == {"id": scope["id"], "name": "s4", "ip_version": 4, "shared": False,
                     "project_id": "project-a", "tenant_id": "project-a"}
    pool = _pool(alice, "scoped", ["10.88.0.0/16"], default_prefixlen=24,
                 address_scope_id=scope["id"])
    error(alice.post("/v2.0/subnetpools", json={"subnetpool": {
        "name": "clash", "prefixes": ["10.88.128.0/17"], "address_scope_id": scope["id"]}}),
        409, "AddressScopePrefixConflict")
    error(alice.post("/v2.0/subnetpools", json={"subnetpool": {
        "name": "v6", "prefixes": ["2001:db8:88::/48"], "address_scope_id": scope["id"]}}),
        400, "IllegalSubnetPoolIpVersionAssociationToAddressScope")
    error(bob.post("/v2.0/subnetpools", json={"subnetpool": {
        "name": "bobs", "prefixes": ["10.89.0.0/16"], "address_scope_id": scope["id"]}}),
        404, "AddressScopeNotFound")
    net = _network(alice, "scoped-net")
    ok(_subnet(alice, net, subnetpool_id=pool["id"]), 201)
    shown = ok(alice.get(f"/v2.0/networks/{net}"))["network"]
    assert (shown["ipv4_address_scope"], shown["ipv6_address_scope"]) == (scope["id"], None)
    error(alice.delete(f"/v2.0/address-scopes/{scope['id']}"), 409, "AddressScopeInUse")
    error(alice.put(f"/v2.0/address-scopes/{scope['id']}", json={"address_scope": {
        "shared": True}}), 403, "PolicyNotAuthorized")
    ok(admin.put(f"/v2.0/address-scopes/{scope['id']}", json={"address_scope": {
        "shared": True}}))
    assert ok(bob.get(f"/v2.0/address-scopes/{scope['id']}"))["address_scope"]["shared"]
    error(admin.put(f"/v2.0/address-scopes/{scope['id']}", json={"address_scope": {
        "shared": False}}), 400, "AddressScopeUpdateError")
    error(alice.post("/v2.0/address-scopes", json={"address_scope": {
        "name": "x", "ip_version": 5}}), 400, "InvalidInput")
    error(bob.get("/v2.0/address-scopes/" + str(uuid.uuid4())), 404, "AddressScopeNotFound")


def test_concurrent_subnets_never_share_a_block(server: Server, cleanup: None) -> None:
    """Twelve clients race for the eight /24s of a /21: eight subnets, eight blocks."""
    with server.http(basic=ALICE) as alice:
        pool = _pool(alice, "race", ["10.90.0.0/21"], default_prefixlen=24, min_prefixlen=16)
        nets = [_network(alice, f"race-{i}") for i in range(12)]
    statuses: list[int] = []
    cidrs: list[str] = []
    start = threading.Barrier(12)

    def take(network: str) -> None:
        with server.http(basic=ALICE) as client:
            start.wait()
            reply = _subnet(client, network, subnetpool_id=pool["id"])
            statuses.append(reply.status_code)
            if reply.status_code == 201:
                cidrs.append(reply.json()["subnet"]["cidr"])

    threads = [threading.Thread(target=take, args=(n,)) for n in nets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [201] * 8 + [409] * 4, statuses
    assert sorted(cidrs) == [f"10.90.{i}.0/24" for i in range(8)]


@pytest.mark.cli
def test_pools_and_scopes_through_the_cli(sqlite_pools: Server) -> None:
    """Seed 000's style of commands: address scope, subnet pool and subnet create from a
    pool, with a prefix length and with the default pool, then set, show and delete."""
    server = sqlite_pools
    alice, admin = server.cli_env(*ALICE), server.cli_env(*ADMIN)
    scope = openstack_cli(alice, "address", "scope", "create", "--ip-version", "4", "cli-s4",
                          "-f", "json")
    pool = openstack_cli(alice, "subnet", "pool", "create", "--pool-prefix", "10.91.0.0/16",
                         "--default-prefix-length", "24", "--min-prefix-length", "20",
                         "--address-scope", "cli-s4", "cli-pool", "-f", "json")
    assert (pool["prefixes"], pool["default_prefixlen"], pool["address_scope_id"]) == (
        ["10.91.0.0/16"], 24, scope["id"])
    openstack_cli(alice, "network", "create", "cli-pool-net")
    subnet = openstack_cli(alice, "subnet", "create", "--network", "cli-pool-net",
                           "--subnet-pool", "cli-pool", "--prefix-length", "26", "cli-sub",
                           "-f", "json")
    assert (subnet["cidr"], subnet["subnetpool_id"]) == ("10.91.0.0/26", pool["id"])
    net = openstack_cli(alice, "network", "show", "cli-pool-net", "-f", "json")
    assert net["ipv4_address_scope"] == scope["id"]
    openstack_cli(alice, "subnet", "pool", "set", "--pool-prefix", "10.92.0.0/16",
                  "cli-pool")
    shown = openstack_cli(alice, "subnet", "pool", "show", "cli-pool", "-f", "json")
    assert shown["prefixes"] == ["10.91.0.0/16", "10.92.0.0/16"]
    listed = openstack_cli(alice, "subnet", "pool", "list", "-f", "json")
    assert [p["Name"] for p in listed] == ["cli-pool"]
    openstack_cli(admin, "subnet", "pool", "create", "--pool-prefix", "10.93.0.0/16",
                  "--default-prefix-length", "25", "--default", "--share", "cli-default")
    made = openstack_cli(alice, "subnet", "create", "--network", "cli-pool-net",
                         "--use-default-subnet-pool", "--ip-version", "6", "cli-none",
                         check=False)
    assert made.returncode != 0 and "No default subnetpool found for IPv6" in made.stderr
    openstack_cli(alice, "network", "create", "cli-default-net")
    by_default = openstack_cli(alice, "subnet", "create", "--network", "cli-default-net",
                               "--use-default-subnet-pool", "cli-def", "-f", "json")
    assert by_default["cidr"] == "10.93.0.0/25"
    refused = openstack_cli(alice, "address", "scope", "delete", "cli-s4", check=False)
    assert refused.returncode != 0
    openstack_cli(alice, "subnet", "delete", "cli-sub")
    openstack_cli(alice, "subnet", "pool", "delete", "cli-pool")
    openstack_cli(alice, "address", "scope", "delete", "cli-s4")
    with server.http(basic=ADMIN) as client:
        _clean(client)


def test_pools_through_openstacksdk(sqlite_pools: Server) -> None:
    """openstacksdk's subnet pool, address scope and subnet-from-pool calls."""
    server = sqlite_pools
    conn = server.sdk(*ALICE)
    scope = conn.network.create_address_scope(name="sdk-s4", ip_version=4)
    pool = conn.network.create_subnet_pool(name="sdk-pool", prefixes=["10.94.0.0/16"],
                                           default_prefix_length=24,
                                           address_scope_id=scope.id)
    assert (pool.default_prefix_length, pool.ip_version, pool.address_scope_id) == (
        24, 4, scope.id)
    net = conn.network.create_network(name="sdk-pool-net")
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4,
                                        subnet_pool_id=pool.id, prefixlen=28)
    assert (subnet.cidr, subnet.subnet_pool_id) == ("10.94.0.0/28", pool.id)
    assert conn.network.find_subnet_pool("sdk-pool").id == pool.id
    assert [s.name for s in conn.network.address_scopes()] == ["sdk-s4"]
    updated = conn.network.update_subnet_pool(pool, name="sdk-renamed")
    assert updated.name == "sdk-renamed"
    conn.network.delete_subnet(subnet)
    conn.network.delete_subnet_pool(pool)
    conn.network.delete_address_scope(scope)
    assert list(conn.network.subnet_pools()) == []


def test_pools_are_advertised_and_listed(alice: httpx.Client) -> None:
    """The extensions are advertised and `GET /v2.0/` names subnet pools as Neutron does."""
    aliases = {e["alias"] for e in ok(alice.get("/v2.0/extensions"))["extensions"]}
    assert {"subnet_allocation", "default-subnetpools", "subnetpool-prefix-ops",
            "address-scope"} <= aliases
    names = [r["collection"] for r in ok(alice.get("/v2.0/"))["resources"]]
    assert names == ["networks", "subnets", "subnetpools", "ports"]
