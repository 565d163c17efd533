"""Project isolation: a member of project A never sees nor changes project B's resources."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import ADMIN, ALICE, BOB
from tests.functional.test_api import error, ok
from tests.support import Server


@pytest.fixture(scope="module")
def world(basic_server: Server) -> dict[str, dict]:
    """Bob's private network, subnet and port; an admin's shared and external networks."""
    with basic_server.http(basic=BOB) as bob, basic_server.http(basic=ADMIN) as admin:
        net = ok(bob.post("/v2.0/networks", json={"network": {"name": "bob-net"}}), 201)
        subnet = ok(bob.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["network"]["id"], "cidr": "10.77.0.0/24", "ip_version": 4,
            "name": "bob-subnet"}}), 201)
        port = ok(bob.post("/v2.0/ports", json={"port": {
            "network_id": net["network"]["id"], "name": "bob-port"}}), 201)
        shared = ok(admin.post("/v2.0/networks", json={"network": {
            "name": "shared-net", "shared": True}}), 201)
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": shared["network"]["id"], "cidr": "10.78.0.0/24", "ip_version": 4}}),
            201)
        ext = ok(admin.post("/v2.0/networks", json={"network": {
            "name": "ext-net", "router:external": True}}), 201)
        made = {"network": net["network"], "subnet": subnet["subnet"], "port": port["port"],
                "shared": shared["network"], "external": ext["network"]}
        # As they are now: creating the subnet counted as a change of the network.
        return {key: ok(admin.get(f"/v2.0/{key if key in ('subnet', 'port') else 'network'}s/"
                                  f"{item['id']}"))[key if key in ("subnet", "port") else "network"]
                for key, item in made.items()}


@pytest.fixture
def alice(basic_server: Server) -> httpx.Client:
    """Alice, a member of project A."""
    with basic_server.http(basic=ALICE) as client:
        yield client


@pytest.mark.parametrize("kind", ["network", "subnet", "port"])
def test_other_projects_resources_are_invisible(alice: httpx.Client, world: dict,
                                                kind: str) -> None:
    """List, show, filters and markers reveal nothing of project B."""
    item = world[kind]
    coll = f"/v2.0/{kind}s"
    listed = ok(alice.get(coll))[f"{kind}s"]
    assert item["id"] not in {i["id"] for i in listed}
    assert ok(alice.get(coll, params={"id": item["id"]}))[f"{kind}s"] == []
    assert ok(alice.get(coll, params={"name": item["name"]}))[f"{kind}s"] == []
    assert ok(alice.get(coll, params={"project_id": "project-b"}))[f"{kind}s"] == []
    assert ok(alice.get(coll, params={"tenant_id": "project-b"}))[f"{kind}s"] == []
    not_found = {"network": "NetworkNotFound", "subnet": "SubnetNotFound",
                 "port": "PortNotFound"}[kind]
    error(alice.get(f"{coll}/{item['id']}"), 404, not_found)
    error(alice.get(coll, params={"limit": 1, "marker": item["id"]}), 404, not_found)
    error(alice.get(f"{coll}/{item['id']}/tags"), 404, not_found)


@pytest.mark.parametrize("kind", ["network", "subnet", "port"])
def test_other_projects_resources_cannot_change(alice: httpx.Client, world: dict,
                                                basic_server: Server, kind: str) -> None:
    """Update, delete and tag calls on project B's resources are 404s that change nothing."""
    item = world[kind]
    url = f"/v2.0/{kind}s/{item['id']}"
    assert alice.put(url, json={kind: {"name": "stolen"}}).status_code == 404
    assert alice.delete(url).status_code == 404
    assert alice.put(f"{url}/tags/mine").status_code == 404
    assert alice.put(f"{url}/tags", json={"tags": ["mine"]}).status_code == 404
    with basic_server.http(basic=BOB) as bob:
        after = ok(bob.get(url))[kind]
    assert after["name"] == item["name"] and after["tags"] == []
    assert after["revision_number"] == item["revision_number"]


def test_no_ports_on_other_projects_networks(alice: httpx.Client, world: dict) -> None:
    """A member cannot plug into another project's private network."""
    error(alice.post("/v2.0/ports", json={"port": {"network_id": world["network"]["id"]}}), 404,
          "NetworkNotFound")
    error(alice.post("/v2.0/subnets", json={"subnet": {
        "network_id": world["network"]["id"], "cidr": "10.79.0.0/24", "ip_version": 4}}), 404,
        "NetworkNotFound")


def test_shared_and_external_networks_are_read_only(alice: httpx.Client, world: dict) -> None:
    """Shared and external networks are visible to members, but theirs to change they are not."""
    names = {n["name"] for n in ok(alice.get("/v2.0/networks"))["networks"]}
    assert {"shared-net", "ext-net"} <= names and "bob-net" not in names
    shared = world["shared"]
    error(alice.put(f"/v2.0/networks/{shared['id']}", json={"network": {"name": "x"}}), 403,
          "PolicyNotAuthorized")
    error(alice.delete(f"/v2.0/networks/{shared['id']}"), 403, "PolicyNotAuthorized")
    # A port of her own on the shared network is fine, and it is hers.
    mine = ok(alice.post("/v2.0/ports", json={"port": {"network_id": shared["id"]}}), 201)
    assert mine["port"]["project_id"] == "project-a"
    # Subnets of the shared network are visible too.
    subnets = ok(alice.get("/v2.0/subnets", params={"network_id": shared["id"]}))["subnets"]
    assert len(subnets) == 1
    error(alice.post("/v2.0/ports", json={"port": {"network_id": world["external"]["id"]}}),
          404, "NetworkNotFound")


def test_members_cannot_use_admin_attributes(alice: httpx.Client, world: dict) -> None:
    """shared, router:external, provider:* and binding:* are the admin's."""
    for attrs in ({"shared": True}, {"router:external": True},
                  {"provider:network_type": "vxlan"}):
        error(alice.post("/v2.0/networks", json={"network": attrs}), 403, "PolicyNotAuthorized")
    net = ok(alice.post("/v2.0/networks", json={"network": {"name": "alice-net"}}), 201)
    assert "provider:segmentation_id" not in net["network"]
    error(alice.post("/v2.0/ports", json={"port": {"network_id": net["network"]["id"],
                                                   "binding:host_id": "HostA"}}), 403,
          "PolicyNotAuthorized")
    made = ok(alice.post("/v2.0/ports", json={"port": {"network_id": net["network"]["id"]}}),
              201)["port"]
    assert "binding:host_id" not in made and "binding:vif_type" not in made
    assert made["binding:vnic_type"] == "normal"


def test_member_cannot_claim_another_project(alice: httpx.Client) -> None:
    """Creating a resource for another project needs the admin role."""
    error(alice.post("/v2.0/networks", json={"network": {"project_id": "project-b"}}), 400,
          "BadRequest")


def test_noauth_headers_scope_the_caller(server: Server) -> None:
    """Under noauth, X-Project-Id scopes the caller just as a login does."""
    with server.http(project="p-one") as one, server.http(project="p-two") as two:
        net = ok(one.post("/v2.0/networks", json={"network": {"name": "p1"}}), 201)["network"]
        assert net["project_id"] == "p-one"
        assert net["id"] not in {n["id"] for n in ok(two.get("/v2.0/networks"))["networks"]}
        error(two.get(f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")
    with server.http(project="p-two", roles="reader") as reader:
        error(reader.post("/v2.0/networks", json={"network": {}}), 403, "PolicyNotAuthorized")
