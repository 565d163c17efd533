"""Quotas (`quotas`, `quota_details`): limits per project, OverQuota on the create that
would pass them, counted without races, through the HTTP API and openstacksdk."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import httpx
import openstack.exceptions
import pytest

from tests.conftest import ADMIN, ALICE, BOB, _server
from tests.functional.test_api import error, ok
from tests.support import Server

DEFAULTS = {"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
            "security_group": 10, "security_group_rule": 100, "subnetpool": -1,
            "rbac_policy": 10}


def _quota_server(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    yield from _server(tmp_path_factory.mktemp(f"quotas-{backend}"), backend, "http_basic",
                       options={"QUOTAS": {"default_quota": -1}})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """An http_basic server on SQLite with Neutron's default limits (the suite's other
    servers have none): admin, alice of project-a, bob of project-b."""
    yield from _quota_server(tmp_path_factory, "sqlite")


@pytest.fixture(scope="module")
def racing(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Iterator[Server]:
    """The same on every backend, for the race: the lock that serialises counts differs."""
    yield from _quota_server(tmp_path_factory, backend)


@pytest.fixture
def project(admin: httpx.Client) -> Iterator[str]:
    """Alice's project, its quotas reset and its networks removed afterwards."""
    yield "project-a"
    ok(admin.delete("/v2.0/quotas/project-a"), 204)
    for net in ok(admin.get("/v2.0/networks", params={"project_id": "project-a"}))["networks"]:
        admin.delete(f"/v2.0/networks/{net['id']}")


def _networks(client: httpx.Client, project: str) -> int:
    return len(ok(client.get("/v2.0/networks", params={"project_id": project}))["networks"])


def test_limits_defaults_and_who_may_see_them(admin: httpx.Client, alice: httpx.Client,
                                              project: str) -> None:
    """Defaults from [QUOTAS]; a member reads her project's, not another's, and may not set
    them; an admin sets, lists and resets them."""
    assert ok(alice.get(f"/v2.0/quotas/{project}"))["quota"] == DEFAULTS
    assert ok(alice.get(f"/v2.0/quotas/{project}/default"))["quota"] == DEFAULTS
    error(alice.get("/v2.0/quotas/project-b"), 403, "PolicyNotAuthorized")
    error(alice.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 1000}}), 403,
          "PolicyNotAuthorized")
    changed = ok(admin.put(f"/v2.0/quotas/{project}",
                           json={"quota": {"network": 3, "port": "-1"}}))["quota"]
    assert changed == {**DEFAULTS, "network": 3, "port": -1}
    assert ok(alice.get(f"/v2.0/quotas/{project}"))["quota"] == changed
    assert ok(alice.get(f"/v2.0/quotas/{project}/default"))["quota"] == DEFAULTS
    listed = ok(admin.get("/v2.0/quotas"))["quotas"]
    assert {"project_id": project, "tenant_id": project, **changed} in listed
    assert [q["project_id"] for q in ok(alice.get("/v2.0/quotas"))["quotas"]] == [project]
    ok(admin.delete(f"/v2.0/quotas/{project}"), 204)
    assert ok(alice.get(f"/v2.0/quotas/{project}"))["quota"] == DEFAULTS


@pytest.mark.parametrize(("body", "kind"), [
    ({"quota": {"network": -2}}, "InvalidInput"), ({"quota": {"network": "lots"}}, "InvalidInput"),
    ({"quota": {"network": True}}, "InvalidInput"), ({"quota": {"widget": 1}}, "HTTPBadRequest"),
    ({"quotas": {"network": 1}}, "HTTPBadRequest"), ([1], "HTTPBadRequest"),
])
def test_bad_quota_bodies_are_400(admin: httpx.Client, project: str, body: object,
                                  kind: str) -> None:
    """Limits are integers of -1 or more, for resources that have quotas."""
    error(admin.put(f"/v2.0/quotas/{project}", json=body), 400, kind)
    assert ok(admin.get(f"/v2.0/quotas/{project}"))["quota"] == DEFAULTS


def test_the_create_past_the_limit_is_refused(admin: httpx.Client, alice: httpx.Client,
                                              bob: httpx.Client, project: str) -> None:
    """At the limit a create is a 409 OverQuota and a bulk create that would pass it makes
    nothing; other projects are not limited; details count what is used."""
    ok(admin.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 2,
                                                            "security_group_rule": 6}}))
    ok(alice.post("/v2.0/networks", json={"network": {"name": "q1"}}), 201)
    bulk = alice.post("/v2.0/networks", json={"networks": [{"name": "q2"}, {"name": "q3"}]})
    assert error(bulk, 409, "OverQuota") == "Quota exceeded for resources: ['network']."
    assert _networks(alice, project) == 1
    ok(alice.post("/v2.0/networks", json={"network": {"name": "q2"}}), 201)
    error(alice.post("/v2.0/networks", json={"network": {"name": "q3"}}), 409, "OverQuota")
    made = ok(bob.post("/v2.0/networks", json={"network": {"name": "bob-q"}}), 201)
    ok(bob.delete(f"/v2.0/networks/{made['network']['id']}"), 204)
    details = ok(alice.get(f"/v2.0/quotas/{project}/details"))["quota"]
    assert details["network"] == {"limit": 2, "used": 2, "reserved": 0}
    # The default group's four rules count: two more fit under a limit of six.
    group = ok(alice.post("/v2.0/security-groups", json={"security_group": {
        "name": "q"}}), 201)["security_group"]
    used = ok(alice.get(f"/v2.0/quotas/{project}/details"))["quota"]["security_group_rule"]
    assert used["used"] == 6  # the default group's 4 and the new group's 2 egress rules
    rule = {"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp"}
    error(alice.post("/v2.0/security-group-rules", json={"security_group_rule": rule}), 409,
          "OverQuota")
    ok(admin.put(f"/v2.0/quotas/{project}", json={"quota": {"security_group_rule": 7}}))
    ok(alice.post("/v2.0/security-group-rules", json={"security_group_rule": rule}), 201)
    ok(alice.delete(f"/v2.0/security-groups/{group['id']}"), 204)


def test_a_limit_below_the_usage_needs_force(admin: httpx.Client, alice: httpx.Client,
                                             project: str) -> None:
    """A limit under what the project already uses is a 400 naming both figures, as
    Neutron's default check; `force: true` sets it anyway; `check_limit` is accepted; -1
    is always allowed."""
    for name in ("u1", "u2"):
        ok(alice.post("/v2.0/networks", json={"network": {"name": name}}), 201)
    message = error(admin.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 1}}),
                    400, "HTTPBadRequest")
    assert message == "Quota limit 1 for network must be greater than or equal to already used 2"
    assert ok(admin.get(f"/v2.0/quotas/{project}"))["quota"]["network"] == DEFAULTS["network"]
    error(admin.put(f"/v2.0/quotas/{project}", json={"quota": {
        "network": 1, "check_limit": True}}), 400, "HTTPBadRequest")
    error(admin.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 1, "force": "x"}}),
          400, "InvalidInput")
    assert ok(admin.put(f"/v2.0/quotas/{project}", json={"quota": {
        "network": 2, "check_limit": True}}))["quota"]["network"] == 2
    assert ok(admin.put(f"/v2.0/quotas/{project}", json={"quota": {
        "network": 1, "force": True}}))["quota"]["network"] == 1
    error(alice.post("/v2.0/networks", json={"network": {"name": "u3"}}), 409, "OverQuota")
    assert ok(admin.put(f"/v2.0/quotas/{project}", json={"quota": {
        "network": -1}}))["quota"]["network"] == -1


def test_the_callers_project(alice: httpx.Client, admin: httpx.Client) -> None:
    """`GET /v2.0/quotas/project` (and the older `tenant`) name the caller's project."""
    assert ok(alice.get("/v2.0/quotas/project")) == {"project": {"project_id": "project-a"}}
    assert ok(alice.get("/v2.0/quotas/tenant")) == {"tenant": {"tenant_id": "project-a"}}
    assert ok(admin.get("/v2.0/quotas/project"))["project"]["project_id"] == "admin-project"


def test_concurrent_creates_never_pass_the_limit(racing: Server) -> None:
    """Eight clients race for the last three networks: exactly three are made."""
    with racing.http(basic=ADMIN) as admin:
        ok(admin.put("/v2.0/quotas/project-a", json={"quota": {"network": 3}}))
        statuses: list[int] = []
        start = threading.Barrier(8)

        def create() -> None:
            with racing.http(basic=ALICE) as client:
                start.wait()
                for _ in range(3):
                    reply = client.post("/v2.0/networks", json={"network": {
                        "name": f"race-{uuid.uuid4().hex[:6]}"}})
                    statuses.append(reply.status_code)

        threads = [threading.Thread(target=create) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert sorted(set(statuses)) == [201, 409] and statuses.count(201) == 3, statuses
        assert _networks(admin, "project-a") == 3


def test_quotas_through_openstacksdk(server: Server, project: str) -> None:
    """The SDK's quota calls: get (with defaults and details), update, delete."""
    admin = server.sdk(*ADMIN)
    member = server.sdk(*ALICE)
    assert admin.network.get_quota(project).networks == DEFAULTS["network"]
    updated = admin.network.update_quota(project, networks=7, routers=2)
    assert (updated.networks, updated.routers) == (7, 2)
    assert member.network.get_quota(project).routers == 2
    assert admin.network.get_quota_default(project).routers == DEFAULTS["router"]
    usage = member.network.get_quota(project, details=True)
    assert usage.networks["limit"] == 7 and usage.networks["used"] == _count(member)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        member.network.update_quota(project, networks=100)
    with pytest.raises(openstack.exceptions.ForbiddenException):
        server.sdk(*BOB).network.get_quota(project)
    admin.network.delete_quota(project)
    assert admin.network.get_quota(project).routers == DEFAULTS["router"]


def _count(conn: object) -> int:
    return len(list(conn.network.networks(project_id="project-a")))  # type: ignore[attr-defined]


def test_quotas_are_advertised(admin: httpx.Client) -> None:
    """`quotas` and `quota_details` are in the extension list (seed 001's `ext-list`)."""
    aliases = {e["alias"] for e in ok(admin.get("/v2.0/extensions"))["extensions"]}
    assert {"quotas", "quota_details", "quota-check-limit",
            "quota-check-limit-default"} <= aliases
