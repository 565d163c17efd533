"""What a hostile tester found (issue 13): agent reports as strict as API bodies, ports'
status only from their own host, no 500 on deep or non-finite input, no learning admin-only
values by filtering on them, and Neutron's IPv6 mode rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import _server
from tests.functional.test_api import error, ok
from tests.support import AGENT_USER, Server, wait_for

REPORT = {"agent_type": "Linux bridge agent", "host": "HostA",
          "binary": "neutrino-linuxbridge-agent", "topic": "N/A", "availability_zone": "nova",
          "configurations": {"devices": 0}, "start_flag": True, "applied_revision": 0}


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A noauth server on SQLite with the agents' service user."""
    servers = _server(tmp_path_factory.mktemp("hardening"), "sqlite", "noauth")
    server = next(servers)
    server.add_user(*AGENT_USER, None, "service")
    try:
        yield server
    finally:
        servers.close()


@pytest.fixture
def admin(hard: Server) -> Iterator[httpx.Client]:
    """The admin (noauth, no project)."""
    with hard.http() as client:
        yield client


@pytest.fixture
def agent(hard: Server) -> Iterator[httpx.Client]:
    """The agents' channel client."""
    with httpx.Client(base_url=hard.url, auth=AGENT_USER, timeout=30) as client:
        yield client


def _report(agent: httpx.Client, **changes: Any) -> httpx.Response:
    return agent.post("/agent-channel/v1/report", json={"agent": {**REPORT, **changes}})


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


# -- defect 3: the agent channel validates what agents say ------------------------------------

BAD_REPORTS: list[dict[str, Any]] = [
    {"host": "h" * 100_000}, {"host": "h" * 256}, {"host": {}}, {"host": ""},
    {"host": "tab\there"}, {"agent_type": [1]}, {"agent_type": "Evil agent"},
    {"agent_type": None}, {"applied_revision": 2**80}, {"applied_revision": -1},
    {"applied_revision": "5"}, {"applied_revision": True}, {"applied_revision": 1.5},
    {"availability_zone": {"zone": 1}}, {"availability_zone": "z" * 256},
    {"configurations": [1]}, {"configurations": _nested(12)},
    {"configurations": {"blob": "x" * 70_000}}, {"binary": 7}, {"topic": "t" * 300},
    {"start_flag": "maybe"}, {"resources_synced": "perhaps"}, {"evil": 1},
]


@pytest.mark.parametrize("bad", BAD_REPORTS,
                         ids=[f"{i}-{next(iter(b))}" for i, b in enumerate(BAD_REPORTS)])
def test_bad_agent_reports_are_400(hard: Server, agent: httpx.Client, admin: httpx.Client,
                                   bad: dict[str, Any]) -> None:
    """A report with a value of the wrong type, size or range is a 400 NeutronError, and
    registers nothing."""
    before = ok(admin.get("/v2.0/agents"))["agents"]
    resp = _report(agent, **bad)
    assert resp.status_code == 400, resp.text
    assert resp.json()["NeutronError"]["type"] in ("BadRequest", "InvalidInput")
    assert len(resp.text) < 2000  # the value is not echoed back
    assert len(ok(admin.get("/v2.0/agents"))["agents"]) == len(before)


def test_missing_keys_and_good_reports(agent: httpx.Client) -> None:
    """agent_type and host are required; a well-formed report registers."""
    for key in ("agent_type", "host"):
        body = {k: val for k, val in REPORT.items() if k != key}
        error(agent.post("/agent-channel/v1/report", json={"agent": body}), 400, "BadRequest")
    assert ok(_report(agent, availability_zone=None, resources_synced=None))["agent"]["id"]


@pytest.mark.parametrize("params", [
    {"timeout": "nan"}, {"timeout": "inf"}, {"timeout": "-1"}, {"timeout": "1e9"},
    {"timeout": "soon"}, {"since": "-1"}, {"since": str(2**80)}, {"host": "h" * 300},
    {"host": None}, {"agent_type": None},
])
def test_bad_watches_are_400(agent: httpx.Client, params: dict[str, str | None]) -> None:
    """`watch?timeout=nan` and friends are 400s, not 500s."""
    ok(_report(agent))
    query = {"agent_type": "Linux bridge agent", "host": "HostA", "since": "0",
             "timeout": "1", **params}
    resp = agent.get("/agent-channel/v1/watch",
                     params={k: val for k, val in query.items() if val is not None})
    assert resp.status_code == 400, resp.text
    assert resp.json()["NeutronError"]["type"] in ("BadRequest", "InvalidInput")


@pytest.mark.parametrize("body", [
    {"host": "h" * 300}, {"host": ["HostA"]}, {"ports": [{"id": "x", "status": "UP"}]},
    {"ports": "all"}, {"ports": [{"id": ["x"], "status": "ACTIVE"}]}, {"dhcp_ready": [7]},
    {"floatingips": {"x": 1}}, {"unknown": []},
])
def test_bad_status_reports_are_400(agent: httpx.Client, body: dict[str, Any]) -> None:
    """Status bodies are validated too."""
    resp = agent.post("/agent-channel/v1/status", json={"host": "HostA", **body})
    assert resp.status_code == 400, resp.text


def test_port_status_only_from_its_own_host(hard: Server, admin: httpx.Client,
                                            agent: httpx.Client) -> None:
    """Up or down comes only from the host the port is bound to; DHCP readiness only from a
    host whose DHCP agent hosts the network. Other reports are ignored (and logged)."""
    ok(_report(agent))
    ok(_report(agent, host="HostB"))
    ok(_report(agent, agent_type="DHCP agent", host="HostD", binary="neutrino-dhcp-agent",
               topic="dhcp_agent", configurations={}))
    net = ok(admin.post("/v2.0/networks", json={"network": {"name": "bound"}}), 201)["network"]
    ok(admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "10.140.0.0/24", "ip_version": 4}}), 201)
    wait_for(lambda: {a["host"] for a in ok(admin.get(
        f"/v2.0/networks/{net['id']}/dhcp-agents"))["agents"]} == {"HostD"}, 20,
        what="the network scheduled to HostD's DHCP agent")
    port = ok(admin.post("/v2.0/ports", json={"port": {
        "network_id": net["id"], "device_owner": "compute:nova",
        "binding:host_id": "HostA"}}), 201)["port"]

    def status() -> str:
        return str(ok(admin.get(f"/v2.0/ports/{port['id']}"))["port"]["status"])

    def say(host: str, **body: Any) -> int:
        return int(ok(agent.post("/agent-channel/v1/status",
                                 json={"host": host, **body}))["updated"])

    up = [{"id": port["id"], "status": "ACTIVE"}]
    assert say("HostB", ports=up) == 0 and status() == "DOWN"  # not its host
    assert say("HostA", ports=up) == 1 and status() == "DOWN"  # waits for DHCP
    assert say("HostB", dhcp_ready=[port["id"]]) == 0 and status() == "DOWN"
    assert say("HostD", dhcp_ready=[port["id"]]) == 1 and status() == "ACTIVE"
    assert say("HostB", ports=[{"id": port["id"], "status": "DOWN"}]) == 0
    assert status() == "ACTIVE"
    assert "Ignored status ACTIVE of port" in hard.log_text()


# -- defect 4: no 500 for deep or oversized values ---------------------------------------------


def test_deep_and_large_bodies_are_400(hard: Server, admin: httpx.Client) -> None:
    """A binding:profile nested 1,000 deep, or just too deep or too long, is a 400; so is
    any body nested 1,000 deep."""
    net = ok(admin.post("/v2.0/networks", json={"network": {"name": "deep"}}), 201)["network"]
    json_headers = {"Content-Type": "application/json"}

    def deep(levels: int) -> str:  # built as text: json.dumps itself recurses
        return '{"a":' * levels + "1" + "}" * levels

    def with_profile(profile: str) -> bytes:
        return f'{{"port": {{"network_id": "{net["id"]}", "binding:profile": {profile}}}}}' \
            .encode()

    for profile, kind in ((deep(1000), "BadRequest"), (deep(20), "InvalidInput"),
                          ('{"blob": "' + "x" * 5000 + '"}', "InvalidInput")):
        error(admin.post("/v2.0/ports", content=with_profile(profile), headers=json_headers),
              400, kind)
    made = ok(admin.post("/v2.0/ports", json={"port": {
        "network_id": net["id"], "binding:profile": {"pci_slot": {"bus": 3}}}}), 201)["port"]
    error(admin.put(f"/v2.0/ports/{made['id']}", headers=json_headers,
                    content=f'{{"port": {{"binding:profile": {deep(1000)}}}}}'.encode()),
          400, "BadRequest")
    error(admin.post("/v2.0/networks", content=b"[" * 1000 + b"]" * 1000,
                     headers=json_headers), 400, "BadRequest")
    assert "Traceback" not in hard.log_text()


# -- defect 5: no filtering or sorting on what the caller may not read -------------------------


def test_members_cannot_filter_or_sort_by_hidden_attributes(admin: httpx.Client) -> None:
    """A shared network's segmentation id and one's port's host are admin-only: a member's
    filter or sort on them is refused the same way whatever the value (so nothing is
    learnt), while the admin's works."""
    shared = ok(admin.post("/v2.0/networks", json={"network": {
        "name": "shared-seg", "shared": True}}), 201)["network"]
    vni = shared["provider:segmentation_id"]
    port = ok(admin.post("/v2.0/ports", json={"port": {
        "network_id": shared["id"], "project_id": "p5",
        "binding:host_id": "secret-host"}}), 201)["port"]
    member = {"X-Project-Id": "p5", "X-Roles": "member"}
    answers = set()
    for value in (vni, vni + 1):
        resp = admin.get("/v2.0/networks", params={"provider:segmentation_id": value},
                         headers=member)
        answers.add((resp.status_code, error(resp, 400, "BadRequest")))
    for host in ("secret-host", "elsewhere"):
        resp = admin.get("/v2.0/ports", params={"binding:host_id": host}, headers=member)
        answers.add((resp.status_code, error(resp, 400, "BadRequest")))
    assert len(answers) == 2, answers  # one answer per attribute, whatever the value
    error(admin.get("/v2.0/networks", params={"sort_key": "provider:segmentation_id",
                                              "sort_dir": "asc"}, headers=member),
          400, "BadRequest")
    mine = ok(admin.get("/v2.0/ports", params={"network_id": shared["id"]}, headers=member))
    assert [p["id"] for p in mine["ports"]] == [port["id"]]
    found = ok(admin.get("/v2.0/ports", params={"binding:host_id": "secret-host"}))["ports"]
    assert [p["id"] for p in found] == [port["id"]]
    assert [n["id"] for n in ok(admin.get("/v2.0/networks", params={
        "provider:segmentation_id": vni}))["networks"]] == [shared["id"]]


# -- defect 6: IPv6 modes ----------------------------------------------------------------------


@pytest.mark.parametrize(("modes", "cidr", "status"), [
    ({"ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"}, "fd01::/64", 400),
    ({"ipv6_ra_mode": "dhcpv6-stateful", "ipv6_address_mode": "slaac"}, "fd02::/64", 400),
    ({"ipv6_ra_mode": "dhcpv6-stateless", "ipv6_address_mode": "slaac"}, "fd03::/64", 400),
    ({"ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}, "fd04::/64", 201),
    ({"ipv6_ra_mode": "slaac"}, "fd05::/64", 201),
    ({"ipv6_address_mode": "dhcpv6-stateless"}, "fd06::/64", 201),
    ({"ipv6_address_mode": "slaac"}, "fd07::/80", 400),  # EUI-64 needs a /64
    ({"ipv6_ra_mode": "dhcpv6-stateless"}, "fd08::/96", 400),
    ({"ipv6_address_mode": "dhcpv6-stateful"}, "fd09::/80", 201),
    ({"ipv6_address_mode": "slaac", "enable_dhcp": False}, "fd0a::/64", 400),
])
def test_ipv6_mode_combinations(admin: httpx.Client, modes: dict[str, Any], cidr: str,
                                status: int) -> None:
    """Neutron's rules: both modes given must agree, auto-addressing needs a /64, and the
    modes need DHCP enabled."""
    net = ok(admin.post("/v2.0/networks", json={"network": {"name": "v6"}}), 201)["network"]
    resp = admin.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "ip_version": 6, "cidr": cidr, **modes}})
    if status == 201:
        made = ok(resp, 201)["subnet"]
        assert {k: made[k] for k in modes} == modes
    else:
        error(resp, 400, "InvalidInput")


# -- wire differences that need an agent ----------------------------------------------------

def test_binding_fails_on_a_host_without_a_linux_bridge_agent(
        agent: httpx.Client, admin: httpx.Client) -> None:
    """A port bound where no L2 agent registered reads `binding_failed`, as ML2 answers
    when no mechanism driver binds it; on the agent's host it is a bridge port."""
    ok(_report(agent, host="HostBind"))
    net = ok(admin.post("/v2.0/networks", json={"network": {"name": "bind"}}), 201)["network"]
    bound = {host: ok(admin.post("/v2.0/ports", json={"port": {
        "network_id": net["id"], "binding:host_id": host}}), 201)["port"]
        for host in ("HostBind", "HostNobody")}
    assert bound["HostBind"]["binding:vif_type"] == "bridge"
    assert bound["HostNobody"]["binding:vif_type"] == "binding_failed"
    moved = ok(admin.put(f"/v2.0/ports/{bound['HostNobody']['id']}", json={"port": {
        "binding:host_id": "HostBind"}}))["port"]
    assert moved["binding:vif_type"] == "bridge"


def test_agent_show_ignores_fields(agent: httpx.Client, admin: httpx.Client) -> None:
    """`GET /v2.0/agents/{id}?fields=id` answers the whole agent, as Neutron does (the
    list honours `fields`)."""
    ok(_report(agent, host="HostFields"))
    listed = ok(admin.get("/v2.0/agents", params={"host": "HostFields", "fields": "id"}))
    assert [set(a) for a in listed["agents"]] == [{"id"}]
    agent_id = listed["agents"][0]["id"]
    shown = ok(admin.get(f"/v2.0/agents/{agent_id}", params={"fields": "id"}))["agent"]
    assert {"id", "host", "agent_type", "alive"} <= set(shown)
