"""Who may do what, role by role and verb by verb, against Neutron's default policies.

Every resource is made afresh by a member of project `owner`, then each caller tries each
verb on it: the admin, a member and a reader of `owner`, a `service` user of another
project, and a member of another project. `ok` is a 2xx; otherwise the status expected.
Where the expectation differs from Neutron's defaults the row says why.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import _server
from tests.functional.test_api import ok
from tests.support import Server

ROLES = ("admin", "member", "reader", "service", "other")
HEADERS = {
    "admin": {},
    "member": {"X-Project-Id": "owner", "X-Roles": "member"},
    "reader": {"X-Project-Id": "owner", "X-Roles": "reader"},
    "service": {"X-Project-Id": "svc", "X-Roles": "service"},
    "other": {"X-Project-Id": "other", "X-Roles": "member"},
}
PATHS = {"network": "networks", "subnet": "subnets", "port": "ports", "router": "routers",
         "floatingip": "floatingips", "security_group": "security-groups",
         "security_group_rule": "security-group-rules", "address_group": "address-groups",
         "subnetpool": "subnetpools", "address_scope": "address-scopes",
         "rbac_policy": "rbac-policies"}

# (resource, verb): the outcome for admin, member, reader, service, other.
EXPECTED: dict[tuple[str, str], str] = {
    ("network", "create"): "ok ok 403 403 ok",
    ("network", "get"): "ok ok ok ok 404",  # Neutron's get_network includes the service role
    ("network", "update"): "ok ok 403 403 404",
    ("network", "tag"): "ok ok 403 403 404",
    ("network", "delete"): "ok ok 403 403 404",
    ("subnet", "create"): "ok ok 403 403 404",
    ("subnet", "get"): "ok ok ok ok 404",
    ("subnet", "update"): "ok ok 403 403 404",
    ("subnet", "tag"): "ok ok 403 403 404",
    ("subnet", "delete"): "ok ok 403 403 404",
    # Neutron lets the service role create ports on any network; here its port would
    # belong to its own project, on a network it neither owns nor shares: 404.
    ("port", "create"): "ok ok 403 404 404",
    ("port", "get"): "ok ok ok ok 404",
    ("port", "update"): "ok ok 403 ok 404",
    ("port", "tag"): "ok ok 403 ok 404",
    ("port", "delete"): "ok ok 403 ok 404",
    ("router", "create"): "ok ok 403 403 ok",
    ("router", "get"): "ok ok ok 404 404",
    ("router", "update"): "ok ok 403 404 404",
    ("router", "tag"): "ok ok 403 404 404",
    ("router", "delete"): "ok ok 403 404 404",
    ("floatingip", "create"): "ok ok 403 403 ok",
    ("floatingip", "get"): "ok ok ok 404 404",
    ("floatingip", "update"): "ok ok 403 404 404",
    ("floatingip", "tag"): "ok ok 403 404 404",
    ("floatingip", "delete"): "ok ok 403 404 404",
    ("security_group", "create"): "ok ok 403 403 ok",
    ("security_group", "get"): "ok ok ok 404 404",
    ("security_group", "update"): "ok ok 403 404 404",
    ("security_group", "tag"): "ok ok 403 404 404",
    ("security_group", "delete"): "ok ok 403 404 404",
    ("security_group_rule", "create"): "ok ok 403 404 404",
    ("security_group_rule", "get"): "ok ok ok 404 404",
    ("security_group_rule", "delete"): "ok ok 403 404 404",
    ("address_group", "create"): "ok ok 403 403 ok",
    ("address_group", "get"): "ok ok ok 404 404",
    ("address_group", "update"): "ok ok 403 404 404",
    ("address_group", "add_addresses"): "ok ok 403 404 404",
    ("address_group", "delete"): "ok ok 403 404 404",
    ("subnetpool", "create"): "ok ok 403 403 ok",
    ("subnetpool", "get"): "ok ok ok 404 404",
    ("subnetpool", "update"): "ok ok 403 404 404",
    ("subnetpool", "tag"): "ok ok 403 404 404",
    ("subnetpool", "add_prefixes"): "ok ok 403 404 404",
    ("subnetpool", "delete"): "ok ok 403 404 404",
    ("address_scope", "create"): "ok ok 403 403 ok",
    ("address_scope", "get"): "ok ok ok 404 404",
    ("address_scope", "update"): "ok ok 403 404 404",
    ("address_scope", "delete"): "ok ok 403 404 404",
    # Policies on the owner's network; the service user and the other project cannot see
    # that network (a 404 from the network's lookup).
    ("rbac_policy", "create"): "ok ok 403 403 404",
    ("rbac_policy", "get"): "ok ok ok 404 404",
    ("rbac_policy", "update"): "ok ok 403 404 404",
    ("rbac_policy", "delete"): "ok ok 403 404 404",
}


@pytest.fixture(scope="module")
def roles_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A noauth server on SQLite: identities come from the headers."""
    yield from _server(tmp_path_factory.mktemp("roles"), "sqlite", "noauth")


@pytest.fixture(scope="module")
def world(roles_server: Server) -> dict[str, Any]:
    """The owner's network (with a subnet) and an external network with a subnet."""
    with roles_server.http() as admin:
        net = ok(admin.post("/v2.0/networks", json={"network": {
            "name": "owner-net", "project_id": "owner"}}), 201)["network"]
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.60.0.0/16", "ip_version": 4,
            "project_id": "owner"}}), 201)
        ext = ok(admin.post("/v2.0/networks", json={"network": {
            "name": "ext", "router:external": True}}), 201)["network"]
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": ext["id"], "cidr": "198.51.100.0/24", "ip_version": 4,
            "enable_dhcp": False}}), 201)
    return {"network": net, "external": ext}


def _body(kind: str, world: dict[str, Any], made: dict[str, Any]) -> dict[str, Any]:
    """A create body of `kind` (rules go into the owner's fresh group)."""
    name = f"r-{uuid.uuid4().hex[:6]}"
    bodies: dict[str, dict[str, Any]] = {
        "network": {"name": name},
        "subnet": {"network_id": world["network"]["id"], "ip_version": 4,
                   "cidr": f"10.{uuid.uuid4().int % 200 + 1}.{uuid.uuid4().int % 250}.0/28"},
        "port": {"network_id": world["network"]["id"], "name": name},
        "router": {"name": name},
        "floatingip": {"floating_network_id": world["external"]["id"]},
        "security_group": {"name": name},
        "security_group_rule": {"security_group_id": made.get("group", ""),
                                "direction": "ingress", "protocol": "tcp",
                                "port_range_min": uuid.uuid4().int % 60000 + 1,
                                "port_range_max": 65535},
        "address_group": {"name": name, "addresses": ["192.0.2.0/28"]},
        "subnetpool": {"name": name, "prefixes": [
            f"172.{uuid.uuid4().int % 16 + 16}.{uuid.uuid4().int % 250}.0/24"]},
        "address_scope": {"name": name, "ip_version": 4},
        "rbac_policy": {"object_type": "network", "object_id": world["network"]["id"],
                        "target_tenant": name, "action": "access_as_shared"},
    }
    return {kind: bodies[kind]}


def _make(client: httpx.Client, kind: str, world: dict[str, Any]) -> dict[str, Any]:
    """A fresh resource of `kind`, made by the owner's member."""
    made: dict[str, Any] = {}
    if kind == "security_group_rule":
        made["group"] = _make(client, "security_group", world)["id"]
    if kind == "subnet":  # a network of the owner's own, so that subnets never overlap
        world = {**world, "network": _make(client, "network", world)}
    resp = client.post(f"/v2.0/{PATHS[kind]}", json=_body(kind, world, made),
                       headers=HEADERS["member"])
    return dict(ok(resp, 201)[kind])


def _act(client: httpx.Client, kind: str, verb: str, role: str, world: dict[str, Any],
         item: dict[str, Any] | None) -> httpx.Response:
    headers = HEADERS[role]
    base = f"/v2.0/{PATHS[kind]}"
    if verb == "create":
        made: dict[str, Any] = {}
        if kind == "security_group_rule":
            made["group"] = _make(client, "security_group", world)["id"]
        if kind == "subnet":
            world = {**world, "network": _make(client, "network", world)}
        return client.post(base, json=_body(kind, world, made), headers=headers)
    assert item is not None
    url = f"{base}/{item['id']}"
    actions: dict[str, Callable[[], httpx.Response]] = {
        "get": lambda: client.get(url, headers=headers),
        # Address scopes have no standard attributes: no description.
        "update": lambda: client.put(url, json={kind: _change(kind)}, headers=headers),
        "tag": lambda: client.put(f"{url}/tags/red", headers=headers),
        "delete": lambda: client.delete(url, headers=headers),
        "add_addresses": lambda: client.put(f"{url}/add_addresses", json={
            "addresses": ["203.0.113.0/28"]}, headers=headers),
        "add_prefixes": lambda: client.put(f"{url}/add_prefixes", json={
            "prefixes": ["203.0.113.0/28"]}, headers=headers),
    }
    return actions[verb]()


def _change(kind: str) -> dict[str, str]:
    """An update body: address scopes and RBAC policies have no description."""
    if kind == "address_scope":
        return {"name": "changed"}
    if kind == "rbac_policy":
        return {"target_tenant": f"t-{uuid.uuid4().hex[:6]}"}
    return {"description": "changed"}


@pytest.mark.parametrize(("kind", "verb"), sorted(EXPECTED))
def test_each_role_against_each_verb(roles_server: Server, world: dict[str, Any], kind: str,
                                     verb: str) -> None:
    """The outcome of every (resource, verb) for each role is Neutron's default's."""
    got = []
    with roles_server.http() as client:
        for role in ROLES:
            item = None if verb == "create" else _make(client, kind, world)
            resp = _act(client, kind, verb, role, world, item)
            got.append("ok" if resp.status_code < 300 else str(resp.status_code))
            if resp.status_code >= 300:
                assert resp.json()["NeutronError"]["type"], resp.text
    assert dict(zip(ROLES, got, strict=True)) == dict(zip(
        ROLES, EXPECTED[(kind, verb)].split(), strict=True)), f"{kind} {verb}"


def test_readers_of_a_shared_network_cannot_plug_into_it(roles_server: Server) -> None:
    """Another project's member may create a port on a shared network; its reader may not
    (Neutron's bare `rule:shared` would let the reader write)."""
    with roles_server.http() as admin:
        shared = ok(admin.post("/v2.0/networks", json={"network": {
            "name": "shared", "shared": True}}), 201)["network"]
        body = {"port": {"network_id": shared["id"]}}
        ok(admin.post("/v2.0/ports", json=body, headers=HEADERS["other"]), 201)
        reader = {"X-Project-Id": "other", "X-Roles": "reader"}
        assert admin.post("/v2.0/ports", json=body, headers=reader).status_code == 403
