"""Seed 000 without packets: real agent processes (no-op data plane), the real CLI and SDK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import _server
from tests.functional.test_api import error, ok
from tests.support import AGENT_USER, AgentProcess, Server, openstack_cli, wait_for

FAST = {"DEFAULT": {"agent_down_time": 2, "dhcp_failover_grace": 1,
                    "failover_check_interval": 0.2}}


def _start(server: Server, hosts: list[str], zones: dict[str, str] | None = None,
           kinds: tuple[str, ...] = ("dhcp", "l2")) -> list[AgentProcess]:
    agents = []
    for i, host in enumerate(hosts):
        for kind in kinds:
            agents.append(AgentProcess(server, kind, host, zone=(zones or {}).get(host, "nova"),
                                       local_ip=f"192.0.2.{10 + i}").start())
    return agents


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Seed 000's hosts: a server, and HostA and HostB with an L2 and a DHCP agent each."""
    servers = _server(tmp_path_factory.mktemp("agents"), "sqlite", "noauth", options=FAST)
    server = next(servers)
    server.add_user(*AGENT_USER, None, "service")
    agents = _start(server, ["HostA", "HostB"], zones={"HostB": "az2"})
    try:
        with server.http() as admin:
            wait_for(lambda: len(ok(admin.get("/v2.0/agents"))["agents"]) == 4, 20,
                     what="four agents registered")
        yield {"server": server, "agents": agents, "env": server.cli_env()}
    finally:
        for agent in agents:
            agent.stop()
        servers.close()


def agent_id(env: dict[str, str], host: str, kind: str = "dhcp") -> str:
    """The id of an agent, by host and type, through the CLI."""
    rows = openstack_cli(env, "network", "agent", "list", "--host", host, "--agent-type",
                         kind, "-f", "json")
    assert len(rows) == 1, rows
    return str(rows[0]["ID"])


def hosting(env: dict[str, str], network: str) -> set[str]:
    """Hosts whose DHCP agents host a network (`network agent list --network`)."""
    rows = openstack_cli(env, "network", "agent", "list", "--network", network, "-f", "json")
    return {r["Host"] for r in rows}


@pytest.mark.slow
def test_seed_000_journey(lab: dict[str, Any]) -> None:
    """Every step of seed 000 that needs no packets, through the real openstack CLI."""
    env, server = lab["env"], lab["server"]
    agents = openstack_cli(env, "network", "agent", "list", "-f", "json")
    assert sorted((a["Agent Type"], a["Host"]) for a in agents) == [
        ("DHCP agent", "HostA"), ("DHCP agent", "HostB"),
        ("Linux bridge agent", "HostA"), ("Linux bridge agent", "HostB")]
    assert all(a["Alive"] is True and a["State"] is True for a in agents), agents
    assert {a["Binary"] for a in agents} == {"neutrino-dhcp-agent",
                                             "neutrino-linuxbridge-agent"}

    # net1 with a subnet is scheduled to one DHCP agent (dhcp_agents_per_network = 1)
    openstack_cli(env, "network", "create", "net1")
    openstack_cli(env, "subnet", "create", "--network", "net1", "--subnet-range",
                  "192.0.2.0/24", "subnet1")
    [first] = hosting(env, "net1")
    on_agent = openstack_cli(env, "network", "list", "--agent", agent_id(env, first),
                             "-f", "json")
    assert [n["Name"] for n in on_agent] == ["net1"]

    shown = openstack_cli(env, "network", "agent", "show", agent_id(env, first), "-f", "json")
    assert shown["agent_type"] == "DHCP agent" and shown["topic"] == "dhcp_agent"
    assert shown["availability_zone"] in ("nova", "az2")
    config = shown["configuration"]
    assert config["dhcp_driver"] and config["dhcp_lease_duration"] == 86400
    wait_for(lambda: openstack_cli(env, "network", "agent", "show", agent_id(env, first),
                                   "-f", "json")["configuration"]["networks"] == 1, 15,
             what="the agent counting its network")
    # Its progress per kind of key, and (API only) its applied revision against the log.
    wait_for(lambda: openstack_cli(env, "network", "agent", "show", agent_id(env, first),
                                   "-f", "json")["configuration"]["resources_status"] == {
        "network": {"done": 1, "pending": 0, "failing": 0}}, 15, what="progress reported")
    with server.http() as admin:
        wait_for(lambda: ok(admin.get(f"/v2.0/agents/{agent_id(env, first)}"))["agent"][
            "revision_lag"] == 0, 15, what="the agent in sync with the change log")
        assert ok(admin.get(f"/v2.0/agents/{agent_id(env, first)}"))["agent"][
            "applied_revision"] > 0
    l2 = openstack_cli(env, "network", "agent", "show", agent_id(env, "HostA", "linux-bridge"),
                       "-f", "json")
    assert l2["binary"] == "neutrino-linuxbridge-agent" and l2["topic"] == "N/A"
    assert l2["configuration"]["tunneling_ip"] == "192.0.2.10"

    # default scheduling of net2: network, subnet, port
    openstack_cli(env, "network", "create", "net2")
    openstack_cli(env, "subnet", "create", "--network", "net2", "--subnet-range",
                  "198.51.100.0/24", "subnet2")
    openstack_cli(env, "port", "create", "port2", "--network", "net2")
    [host2] = hosting(env, "net2")
    other = "HostB" if host2 == "HostA" else "HostA"

    # add the other host's agent, then remove the first one
    openstack_cli(env, "network", "agent", "add", "network", "--dhcp",
                  agent_id(env, other), "net2")
    assert hosting(env, "net2") == {"HostA", "HostB"}
    openstack_cli(env, "network", "agent", "remove", "network", "--dhcp",
                  agent_id(env, host2), "net2")
    assert hosting(env, "net2") == {other}
    dhcp_ports = openstack_cli(env, "port", "list", "--network", "net2", "--device-owner",
                               "network:dhcp", "--long", "-f", "json")
    assert len(dhcp_ports) == 2  # the removed agent's port is kept in reserve
    with server.http() as admin:
        devices = {p["device_id"] for p in ok(admin.get("/v2.0/ports", params={
            "network_id": openstack_cli(env, "network", "show", "net2", "-f", "json")["id"],
            "device_owner": "network:dhcp"}))["ports"]}
    assert "reserved_dhcp_port" in devices

    # disable HostA's DHCP agent; stop it; delete it; it is gone; started again, it is back
    a_id = agent_id(env, "HostA")
    openstack_cli(env, "network", "agent", "set", "--disable", a_id)
    rows = openstack_cli(env, "network", "agent", "list", "-f", "json")
    states = {(r["Agent Type"], r["Host"]): r["State"] for r in rows}
    assert states[("DHCP agent", "HostA")] is False and states[("DHCP agent", "HostB")] is True
    dhcp_a = next(a for a in lab["agents"] if a.kind == "dhcp" and a.host == "HostA")
    dhcp_a.stop()
    openstack_cli(env, "network", "agent", "delete", a_id)
    rows = openstack_cli(env, "network", "agent", "list", "-f", "json")
    assert ("DHCP agent", "HostA") not in {(r["Agent Type"], r["Host"]) for r in rows}
    dhcp_a.start()
    wait_for(lambda: ("DHCP agent", "HostA") in {
        (r["Agent Type"], r["Host"])
        for r in openstack_cli(env, "network", "agent", "list", "-f", "json")}, 20,
        what="HostA's DHCP agent registering again")
    assert agent_id(env, "HostA") != a_id


def test_scheduler_api_errors(lab: dict[str, Any]) -> None:
    """Neutron's codes and errors for the DHCP scheduler and agent calls."""
    with lab["server"].http() as admin:
        agents = ok(admin.get("/v2.0/agents", params={"agent_type": "dhcp agent"}))["agents"]
        assert {a["agent_type"] for a in agents} == {"DHCP agent"}  # any case matches
        dhcp = next(a for a in agents if a["host"] == "HostB")
        l2 = ok(admin.get("/v2.0/agents", params={"agent_type": "Linux bridge agent",
                                                  "host": "HostB"}))["agents"][0]
        net = ok(admin.post("/v2.0/networks", json={"network": {"name": "sched"}}), 201)
        net_id = net["network"]["id"]
        missing = "0b8c0d6e-5b1f-4a4e-9f7e-0d6a2f1d3c11"
        base = f"/v2.0/agents/{dhcp['id']}/dhcp-networks"
        error(admin.post(base, json={"network_id": missing}), 404, "NetworkNotFound")
        error(admin.post(f"/v2.0/agents/{missing}/dhcp-networks", json={"network_id": net_id}),
              404, "AgentNotFound")
        error(admin.post(f"/v2.0/agents/{l2['id']}/dhcp-networks",
                         json={"network_id": net_id}), 404, "InvalidDHCPAgent")
        created = admin.post(base, json={"network_id": net_id})
        assert created.status_code == 201 and created.content == b"null"
        error(admin.post(base, json={"network_id": net_id}), 409, "NetworkHostedByDHCPAgent")
        hosts = ok(admin.get(f"/v2.0/networks/{net_id}/dhcp-agents"))["agents"]
        assert [a["id"] for a in hosts] == [dhcp["id"]]
        assert ok(admin.delete(f"{base}/{net_id}"), 204) is None
        error(admin.delete(f"{base}/{net_id}"), 409, "NetworkNotHostedByDhcpAgent")
        error(admin.post("/v2.0/agents", json={"agent": {}}), 400, "AgentCreationNotSupported")
        error(admin.put(f"/v2.0/agents/{dhcp['id']}", json={"agent": {"host": "x"}}), 400,
              "BadRequest")
        described = ok(admin.put(f"/v2.0/agents/{dhcp['id']}", json={"agent": {
            "description": "rack 7"}}))["agent"]
        assert described["description"] == "rack 7"
        assert described["heartbeat_timestamp"].count(":") == 2
        assert "T" not in described["heartbeat_timestamp"]
        zones = ok(admin.get("/v2.0/availability_zones"))["availability_zones"]
        assert {"name": "az2", "resource": "network", "state": "available"} in zones
    with lab["server"].http(project="member-project") as member:
        assert ok(member.get("/v2.0/agents"))["agents"] == []
        error(member.get(f"/v2.0/agents/{dhcp['id']}"), 404, "AgentNotFound")


def test_channel_refuses_anonymous_and_members(lab: dict[str, Any]) -> None:
    """Only a service user may speak for an agent."""
    server = lab["server"]
    report = {"agent": {"agent_type": "DHCP agent", "host": "forged", "binary": "x"}}
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.post("/agent-channel/v1/report", json=report).status_code == 401
    server.manage("user", "add", "mallory", "--password", "pw", "--role", "member")
    with httpx.Client(base_url=server.url, auth=("mallory", "pw")) as member:
        assert member.post("/agent-channel/v1/report", json=report).status_code == 403
    with server.http() as admin:
        hosts = {a["host"] for a in ok(admin.get("/v2.0/agents"))["agents"]}
    assert "forged" not in hosts


def test_sdk_agent_calls(lab: dict[str, Any]) -> None:
    """openstacksdk's agent calls behave as against Neutron."""
    conn = lab["server"].sdk()
    agents = list(conn.network.agents())
    assert {a.agent_type for a in agents} == {"DHCP agent", "Linux bridge agent"}
    dhcp_b = next(a for a in agents if a.agent_type == "DHCP agent" and a.host == "HostB")
    assert conn.network.get_agent(dhcp_b.id).binary == "neutrino-dhcp-agent"
    net = conn.network.create_network(name="sdk-sched")
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="203.0.113.0/24")
    conn.network.add_dhcp_agent_to_network(dhcp_b, net)
    hosts = {a.host for a in conn.network.network_hosting_dhcp_agents(net)}
    assert "HostB" in hosts
    assert net.id in {n.id for n in conn.network.dhcp_agent_hosting_networks(dhcp_b)}
    conn.network.remove_dhcp_agent_from_network(dhcp_b, net)
    assert "HostB" not in {a.host for a in conn.network.network_hosting_dhcp_agents(net)}
    updated = conn.network.update_agent(dhcp_b, description="sdk")
    assert updated.description == "sdk"


def test_watch_resumes_and_snapshots(lab: dict[str, Any]) -> None:
    """since=0 is a snapshot; a relevant change answers at once; others only move the cursor."""
    server = lab["server"]
    with server.http() as admin, httpx.Client(base_url=server.url, auth=AGENT_USER,
                                               timeout=30) as agent:
        def watch(since: int, timeout: float = 3) -> dict[str, Any]:
            return ok(agent.get("/agent-channel/v1/watch", params={
                "agent_type": "DHCP agent", "host": "HostB", "since": since,
                "timeout": timeout}))

        b_id = ok(admin.get("/v2.0/agents", params={"host": "HostB",
                                                    "agent_type": "DHCP agent"}))["agents"][0]
        net = ok(admin.post("/v2.0/networks", json={"network": {"name": "watched"}}), 201)
        net_id = net["network"]["id"]
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net_id, "cidr": "10.131.0.0/24", "ip_version": 4}}), 201)
        if net_id not in {n["id"] for n in ok(admin.get(
                f"/v2.0/agents/{b_id['id']}/dhcp-networks"))["networks"]}:
            admin.post(f"/v2.0/agents/{b_id['id']}/dhcp-networks", json={"network_id": net_id})
        snap = watch(0)
        assert snap["snapshot"] is True and net_id in {s["id"] for s in snap["states"]}
        hosted = next(s["state"] for s in snap["states"] if s["id"] == net_id)
        assert hosted["dhcp_port_id"] in {p["id"] for p in hosted["ports"]}
        revision = snap["revision"]
        # The lab's real agents report on this network (DHCP ready, ports up): those are
        # relevant changes. Let them settle before testing an irrelevant one.
        for _ in range(20):
            settled = watch(revision, timeout=1)
            revision = settled["revision"]
            if not settled["states"]:
                break

        # An unrelated change: the watch times out empty, its revision moved on.
        ok(admin.post("/v2.0/networks", json={"network": {"name": "elsewhere"}}), 201)
        quiet = watch(revision, timeout=1)
        assert quiet["states"] == [] and quiet["removed"] == []
        assert quiet["revision"] > revision and quiet["snapshot"] is False

        # A port on the hosted network: answered with that network, not a snapshot.
        port = ok(admin.post("/v2.0/ports", json={"port": {"network_id": net_id}}), 201)
        changed = watch(quiet["revision"], timeout=10)
        assert changed["snapshot"] is False
        assert [(s["kind"], s["id"]) for s in changed["states"]] == [("network", net_id)]
        assert port["port"]["id"] in {p["id"] for p in changed["states"][0]["state"]["ports"]}

        # Removed from the agent: the next answer says so.
        ok(admin.delete(f"/v2.0/agents/{b_id['id']}/dhcp-networks/{net_id}"), 204)
        gone = watch(changed["revision"], timeout=10)
        assert ["network", net_id] in gone["removed"]

        # A revision the server never issued (a new database): a snapshot.
        assert watch(gone["revision"] + 10_000)["snapshot"] is True
        missing = agent.get("/agent-channel/v1/watch", params={
            "agent_type": "DHCP agent", "host": "nowhere", "since": 0, "timeout": 1})
        assert missing.status_code == 404


def test_bound_port_becomes_active(lab: dict[str, Any]) -> None:
    """A VM port bound to HostA turns ACTIVE once the L2 agent has it up and DHCP serves it."""
    with lab["server"].http() as admin:
        net = ok(admin.post("/v2.0/networks", json={"network": {"name": "vm-net"}}), 201)
        net_id = net["network"]["id"]
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net_id, "cidr": "10.132.0.0/24", "ip_version": 4}}), 201)
        port = ok(admin.post("/v2.0/ports", json={"port": {
            "network_id": net_id, "device_owner": "compute:nova", "device_id": "vm-1",
            "binding:host_id": "HostA"}}), 201)["port"]
        assert port["status"] == "DOWN" and port["binding:vif_type"] == "bridge"
        wait_for(lambda: ok(admin.get(f"/v2.0/ports/{port['id']}"))["port"]["status"]
                 == "ACTIVE", 20, what="the port going ACTIVE")
        ok(admin.put(f"/v2.0/ports/{port['id']}", json={"port": {"admin_state_up": False}}))
        wait_for(lambda: ok(admin.get(f"/v2.0/ports/{port['id']}"))["port"]["status"]
                 == "DOWN", 20, what="the port going DOWN when disabled")


def test_security_keys_travel_with_their_group_once(lab: dict[str, Any]) -> None:
    """An L2 agent's watch: a port bound to its host brings its group; a rule naming a
    remote group brings that group's member buckets; a member joining sends its bucket
    only; a further rule on the group does not send the members again."""
    server = lab["server"]
    with server.http() as admin, httpx.Client(base_url=server.url, auth=AGENT_USER,
                                               timeout=30) as agent:
        ok(agent.post("/agent-channel/v1/report", json={"agent": {
            "agent_type": "Linux bridge agent", "host": "HostW",
            "binary": "neutrino-linuxbridge-agent", "topic": "N/A",
            "configurations": {"tunneling_ip": "192.0.2.99"}, "availability_zone": "nova",
            "start_flag": True, "applied_revision": 0}}))

        def watch(since: int, timeout: float = 5) -> dict[str, Any]:
            return ok(agent.get("/agent-channel/v1/watch", params={
                "agent_type": "Linux bridge agent", "host": "HostW", "since": since,
                "timeout": timeout}))

        def kinds(answer: dict[str, Any]) -> dict[str, int]:
            out: dict[str, int] = {}
            for state in answer["states"]:
                out[state["kind"]] = out.get(state["kind"], 0) + 1
            return out

        revision = watch(0, 0.1)["revision"]
        net = ok(admin.post("/v2.0/networks", json={"network": {"name": "sg-watch"}}), 201)
        net_id = net["network"]["id"]
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net_id, "cidr": "10.133.0.0/24", "ip_version": 4}}), 201)
        group = ok(admin.post("/v2.0/security-groups", json={"security_group": {
            "name": "web"}}), 201)["security_group"]["id"]
        remote = ok(admin.post("/v2.0/security-groups", json={"security_group": {
            "name": "clients"}}), 201)["security_group"]["id"]
        member = ok(admin.post("/v2.0/ports", json={"port": {
            "network_id": net_id, "security_groups": [remote]}}), 201)["port"]
        ok(admin.post("/v2.0/ports", json={"port": {
            "network_id": net_id, "security_groups": [group],
            "binding:host_id": "HostW"}}), 201)

        def settle(revision: int) -> tuple[int, list[dict[str, Any]]]:
            seen: list[dict[str, Any]] = []
            for _ in range(20):
                answer = watch(revision, 1)
                revision = answer["revision"]
                if not answer["states"] and not answer["removed"]:
                    break
                seen.append(answer)
            return revision, seen

        revision, seen = settle(revision)
        got = {(s["kind"], s["id"]) for a in seen for s in a["states"]}
        assert ("network", net_id) in got and ("security_group", group) in got
        assert not any(k == "sg_members" for k, _ in got)  # no rule names a remote yet

        ok(admin.post("/v2.0/security-group-rules", json={"security_group_rule": {
            "security_group_id": group, "direction": "ingress",
            "remote_group_id": remote}}), 201)
        revision, seen = settle(revision)
        buckets = [s for a in seen for s in a["states"] if s["kind"] == "sg_members"]
        assert len(buckets) == 64
        addresses = {ip for b in buckets for ip in b["state"]["addresses"]}
        assert member["fixed_ips"][0]["ip_address"] in addresses

        other = ok(admin.post("/v2.0/networks", json={"network": {"name": "clients"}}),
                   201)["network"]["id"]
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": other, "cidr": "10.134.0.0/24", "ip_version": 4}}), 201)
        revision, _ = settle(revision)
        joined = ok(admin.post("/v2.0/ports", json={"port": {  # elsewhere: only members
            "network_id": other, "security_groups": [remote]}}), 201)["port"]
        revision, seen = settle(revision)
        assert [kinds(a) for a in seen] == [{"sg_members": 1}]
        assert joined["fixed_ips"][0]["ip_address"] in \
            seen[0]["states"][0]["state"]["addresses"]

        ok(admin.post("/v2.0/security-group-rules", json={"security_group_rule": {
            "security_group_id": group, "direction": "ingress", "protocol": "tcp",
            "port_range_min": 22, "port_range_max": 22}}), 201)
        revision, seen = settle(revision)
        assert [kinds(a) for a in seen] == [{"security_group": 1}]
