"""RBAC policies (`rbac-policies`): a network shared with one project or with all of them,
or made external for one, as the owner, the project granted and a third project see it,
through the HTTP API, the CLI and openstacksdk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN, ALICE, BOB, _server
from tests.functional.test_api import error, ok
from tests.support import Server, openstack_cli


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    """An http_basic server on each backend: admin, alice of project-a, bob of project-b
    (and carol of project-c, who is granted nothing)."""
    yield from _server(tmp_path_factory.mktemp(f"rbac-{backend}"), backend, "http_basic")


@pytest.fixture(scope="module")
def carol(server: Server) -> Iterator[httpx.Client]:
    """A member of project-c."""
    server.add_user("carol", "carolpass", "project-c")
    with server.http(basic=("carol", "carolpass")) as client:
        yield client


@pytest.fixture(scope="module")
def sqlite_rbac(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same on SQLite only, for the CLI and the SDK: what they send does not depend on
    the database."""
    yield from _server(tmp_path_factory.mktemp("rbac-cli"), "sqlite", "http_basic")


@pytest.fixture
def cleanup(admin: httpx.Client) -> Iterator[None]:
    """Remove what a test made."""
    yield
    _clean(admin)


def _clean(admin: httpx.Client) -> None:
    """Remove every router, port and network (their policies go with them)."""
    for router in ok(admin.get("/v2.0/routers"))["routers"]:
        admin.put(f"/v2.0/routers/{router['id']}", json={"router": {
            "external_gateway_info": {}}})
        ok(admin.delete(f"/v2.0/routers/{router['id']}"), 204)
    for port in ok(admin.get("/v2.0/ports"))["ports"]:
        if not port["device_owner"].startswith("network:"):
            ok(admin.delete(f"/v2.0/ports/{port['id']}"), 204)
    for net in ok(admin.get("/v2.0/networks"))["networks"]:
        ok(admin.delete(f"/v2.0/networks/{net['id']}"), 204)
    assert ok(admin.get("/v2.0/rbac-policies"))["rbac_policies"] == []


def _network(client: httpx.Client, name: str, cidr: str, **extra: Any) -> dict[str, Any]:
    net = ok(client.post("/v2.0/networks", json={"network": {"name": name, **extra}}),
             201)["network"]
    ok(client.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": cidr,
        "enable_dhcp": not extra.get("router:external", False)}}), 201)
    return dict(net)


def _policy(client: httpx.Client, network: str, target: str,
            action: str = "access_as_shared") -> Any:
    return ok(client.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": network, "target_tenant": target,
        "action": action}}), 201)


def _sees(client: httpx.Client, network: str) -> bool:
    return network in {n["id"] for n in ok(client.get("/v2.0/networks"))["networks"]}


def test_a_network_shared_with_one_project(alice: httpx.Client, bob: httpx.Client,
                                           carol: httpx.Client, cleanup: None) -> None:
    """Bob sees Alice's network (shared, for him), its subnet, and plugs a port into it;
    Carol sees nothing; the grant cannot go while Bob's port depends on it."""
    net = _network(alice, "granted", "10.70.0.0/24")
    assert not _sees(bob, net["id"])
    policy = _policy(alice, net["id"], "project-b")["rbac_policy"]
    assert policy == {"id": policy["id"], "object_type": "network", "object_id": net["id"],
                      "target_tenant": "project-b", "action": "access_as_shared",
                      "project_id": "project-a", "tenant_id": "project-a"}
    shown = ok(bob.get(f"/v2.0/networks/{net['id']}"))["network"]
    assert shown["shared"] is True
    assert ok(alice.get(f"/v2.0/networks/{net['id']}"))["network"]["shared"] is False
    assert [n["id"] for n in ok(bob.get("/v2.0/networks", params={"shared": "true"}))[
        "networks"]] == []  # filters read the stored value: shared with everyone
    assert [s["cidr"] for s in ok(bob.get("/v2.0/subnets", params={
        "network_id": net["id"]}))["subnets"]] == ["10.70.0.0/24"]
    # Neutron's `shared` filter on subnets: the networks shared with the caller.
    assert [s["network_id"] for s in ok(bob.get("/v2.0/subnets", params={
        "shared": "true"}))["subnets"]] == [net["id"]]
    assert ok(bob.get("/v2.0/subnets", params={"shared": "false"}))["subnets"] == []
    assert [s["network_id"] for s in ok(alice.get("/v2.0/subnets", params={
        "shared": "false"}))["subnets"]] == [net["id"]]
    error(bob.get("/v2.0/subnets", params={"shared": "maybe"}), 400, "BadRequest")
    port = ok(bob.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 201)["port"]
    assert port["project_id"] == "project-b"
    error(bob.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": "10.71.0.0/24"}}), 403,
        "PolicyNotAuthorized")
    assert not _sees(carol, net["id"])
    error(carol.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 404,
          "NetworkNotFound")
    # Bob's port depends on the grant: neither removed nor moved to Carol.
    url = f"/v2.0/rbac-policies/{policy['id']}"
    error(alice.delete(url), 409, "RbacPolicyInUse")
    error(alice.put(url, json={"rbac_policy": {"target_tenant": "project-c"}}), 409,
          "RbacPolicyInUse")
    error(bob.get(url), 404, "RbacPolicyNotFound")  # the policy is Alice's
    ok(bob.delete(f"/v2.0/ports/{port['id']}"), 204)
    moved = ok(alice.put(url, json={"rbac_policy": {"target_tenant": "project-c"}}))
    assert moved["rbac_policy"]["target_tenant"] == "project-c"
    assert _sees(carol, net["id"]) and not _sees(bob, net["id"])
    ok(alice.delete(url), 204)
    assert not _sees(carol, net["id"])


def test_shared_means_a_grant_to_everyone(admin: httpx.Client, alice: httpx.Client,
                                          bob: httpx.Client, cleanup: None) -> None:
    """`shared: true` is a `*` policy: listed, removable, and made by admins only; unsharing
    keeps the ports of projects with grants of their own."""
    net = _network(alice, "everyone", "10.72.0.0/24")
    error(alice.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "target_tenant": "*",
        "action": "access_as_shared"}}), 403, "PolicyNotAuthorized")
    ok(admin.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": True}}))
    [wildcard] = ok(admin.get("/v2.0/rbac-policies", params={
        "object_id": net["id"]}))["rbac_policies"]
    assert (wildcard["target_tenant"], wildcard["action"], wildcard["project_id"]) == (
        "*", "access_as_shared", "project-a")
    assert ok(bob.get(f"/v2.0/networks/{net['id']}"))["network"]["shared"] is True
    port = ok(bob.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 201)["port"]
    error(admin.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": False}}),
          409, "InvalidSharedSetting")
    _policy(alice, net["id"], "project-b")  # Bob's own grant: his port no longer needs `*`
    ok(alice.delete(f"/v2.0/rbac-policies/{wildcard['id']}"), 204)
    assert ok(admin.get(f"/v2.0/networks/{net['id']}"))["network"]["shared"] is False
    assert ok(bob.get(f"/v2.0/networks/{net['id']}"))["network"]["shared"] is True
    ok(bob.delete(f"/v2.0/ports/{port['id']}"), 204)


def test_an_external_network_for_one_project(admin: httpx.Client, alice: httpx.Client,
                                             bob: httpx.Client, cleanup: None) -> None:
    """`access_as_external` to Bob makes the network external for him alone: his router's
    gateway goes on it, Alice does not see it, and the last such grant cannot go while the
    gateway is there."""
    net = _network(admin, "ext-for-bob", "198.19.0.0/24")
    policy = _policy(admin, net["id"], "project-b", "access_as_external")["rbac_policy"]
    assert ok(admin.get(f"/v2.0/networks/{net['id']}"))["network"]["router:external"] is True
    assert _sees(bob, net["id"]) and not _sees(alice, net["id"])
    router = ok(bob.post("/v2.0/routers", json={"router": {
        "name": "bob-r", "external_gateway_info": {"network_id": net["id"]}}}), 201)["router"]
    error(alice.post("/v2.0/routers", json={"router": {
        "name": "alice-r", "external_gateway_info": {"network_id": net["id"]}}}), 404,
        "NetworkNotFound")
    url = f"/v2.0/rbac-policies/{policy['id']}"
    error(admin.delete(url), 409, "RbacPolicyInUse")
    ok(bob.put(f"/v2.0/routers/{router['id']}", json={"router": {"external_gateway_info": {}}}))
    ok(admin.delete(url), 204)
    assert ok(admin.get(f"/v2.0/networks/{net['id']}"))["network"]["router:external"] is False
    # router:external set on the network itself is a `*` external grant.
    ok(admin.put(f"/v2.0/networks/{net['id']}", json={"network": {"router:external": True}}))
    [wildcard] = ok(admin.get("/v2.0/rbac-policies", params={
        "action": "access_as_external"}))["rbac_policies"]
    assert wildcard["target_tenant"] == "*" and _sees(alice, net["id"])


def test_bad_policies(admin: httpx.Client, alice: httpx.Client, bob: httpx.Client,
                      cleanup: None) -> None:
    """Neutron's errors: actions and types, duplicates, other projects' networks."""
    net = _network(alice, "bad", "10.73.0.0/24")

    def refused(body: dict[str, Any], status: int, kind: str,
                client: httpx.Client = alice) -> str:
        return error(client.post("/v2.0/rbac-policies", json={"rbac_policy": {
            "object_type": "network", "object_id": net["id"], "target_tenant": "project-b",
            "action": "access_as_shared", **body}}), status, kind)

    assert refused({"action": "access_as_owner"}, 400, "InvalidActionForType") == (
        "Invalid action 'access_as_owner' for object type 'network'. Valid actions: "
        "['access_as_shared', 'access_as_external']")
    assert refused({"object_type": "wallet"}, 400, "InvalidInput") == (
        "Invalid input for operation: 'wallet' is not a valid RBAC object type.")
    refused({"target_tenant": "has space"}, 400, "InvalidInput")
    refused({"object_id": "not-a-uuid"}, 400, "InvalidInput")
    refused({}, 404, "NetworkNotFound", bob)  # a network Bob cannot see
    _policy(alice, net["id"], "project-b")
    assert refused({}, 409, "DuplicateRbacPolicy") == \
        "An RBAC policy already exists with those values."
    refused({"object_type": " Network "}, 409, "DuplicateRbacPolicy")  # normalised
    # Bob sees the network now, but granting it is its owner's (or an admin's) to do.
    assert refused({"target_tenant": "project-c"}, 400, "InvalidInput", bob) == (
        "Invalid input for operation: Only admins can manipulate policies on networks they "
        "do not own.")
    ok(admin.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "network", "object_id": net["id"], "target_tenant": "project-c",
        "action": "access_as_shared"}}), 201)
    assert len(ok(admin.get("/v2.0/rbac-policies"))["rbac_policies"]) == 2
    assert len(ok(alice.get("/v2.0/rbac-policies"))["rbac_policies"]) == 1  # hers only


@pytest.mark.cli
def test_rbac_through_the_cli(sqlite_rbac: Server) -> None:
    """`openstack network rbac create|list|show|delete` (`--target-project` resolves the
    project through Keystone, which issue 12 brings)."""
    server = sqlite_rbac
    alice, admin = server.cli_env(*ALICE), server.cli_env(*ADMIN)
    openstack_cli(alice, "network", "create", "cli-rbac-net")
    made = openstack_cli(admin, "network", "rbac", "create", "--type", "network",
                         "--action", "access_as_shared", "--target-all-projects",
                         "cli-rbac-net", "-f", "json")
    assert (made["target_project_id"], made["action"], made["object_type"]) == (
        "*", "access_as_shared", "network")
    listed = openstack_cli(admin, "network", "rbac", "list", "--long", "-f", "json")
    assert [(r["ID"], r["Action"]) for r in listed] == [(made["id"], "access_as_shared")]
    shown = openstack_cli(admin, "network", "rbac", "show", made["id"], "-f", "json")
    assert shown["object_id"] == made["object_id"]
    bob = server.cli_env(*BOB)
    assert openstack_cli(bob, "network", "show", "cli-rbac-net", "-f", "json")["shared"]
    openstack_cli(admin, "network", "rbac", "delete", made["id"])
    assert openstack_cli(bob, "network", "show", "cli-rbac-net", check=False).returncode != 0
    with server.http(basic=ADMIN) as client:
        _clean(client)


def test_rbac_through_openstacksdk(sqlite_rbac: Server) -> None:
    """openstacksdk's RBAC policy calls, with a project id as the target."""
    server = sqlite_rbac
    alice = server.sdk(*ALICE)
    net = alice.network.create_network(name="sdk-rbac-net")
    policy = alice.network.create_rbac_policy(object_type="network", object_id=net.id,
                                              action="access_as_shared",
                                              target_project_id="project-b")
    assert (policy.target_project_id, policy.project_id) == ("project-b", "project-a")
    bob = server.sdk(*BOB)
    assert bob.network.get_network(net.id).is_shared is True
    moved = alice.network.update_rbac_policy(policy, target_project_id="project-c")
    assert moved.target_project_id == "project-c"
    assert [p.id for p in alice.network.rbac_policies()] == [policy.id]
    alice.network.delete_rbac_policy(policy)
    assert list(alice.network.rbac_policies()) == []
    alice.network.delete_network(net)


def test_rbac_is_advertised(alice: httpx.Client) -> None:
    """The extension is listed (its quota, Neutron's 10, is in test_quotas' defaults)."""
    aliases = {e["alias"] for e in ok(alice.get("/v2.0/extensions"))["extensions"]}
    assert "rbac-policies" in aliases
