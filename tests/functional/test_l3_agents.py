"""The L3 agent scheduler with real agent processes (fake data plane): the CLI's agent and
router commands, Neutron's errors, floating IP status from the agent, and failover."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import _server
from tests.functional.test_api import error, ok
from tests.support import AGENT_USER, AgentProcess, openstack_cli, wait_for

FAST = {"DEFAULT": {"agent_down_time": 2, "dhcp_failover_grace": 1,
                    "failover_check_interval": 0.2},
        "AGENT": {"report_interval": 0.5}}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server and L3 agents on network1 and network2, a DHCP agent on network1."""
    servers = _server(tmp_path_factory.mktemp("l3"), "sqlite", "noauth", options=FAST)
    server = next(servers)
    server.add_user(*AGENT_USER, None, "service")
    agents = {host: AgentProcess(server, "l3", host).start() for host in ("network1",
                                                                          "network2")}
    dhcp = AgentProcess(server, "dhcp", "network1").start()
    try:
        with server.http() as admin:
            wait_for(lambda: len([a for a in ok(admin.get("/v2.0/agents"))["agents"]
                                  if a["alive"]]) == 3, 20, what="three agents alive")
        yield {"server": server, "agents": agents, "env": server.cli_env()}
    finally:
        for agent in [*agents.values(), dhcp]:
            agent.stop()
        servers.close()


def l3_agent(admin: httpx.Client, host: str) -> dict[str, Any]:
    found = ok(admin.get("/v2.0/agents", params={"host": host, "agent_type": "L3 agent"}))
    return dict(found["agents"][0])


def hosts_of(admin: httpx.Client, router_id: str) -> set[str]:
    return {a["host"] for a in ok(admin.get(f"/v2.0/routers/{router_id}/l3-agents"))[
        "agents"]}


def test_agents_and_routers_through_the_cli(cloud: dict[str, Any]) -> None:
    """`network agent list --router R --long`, `add/remove router --l3`, `router list
    --agent`, and the agent's Neutron-like report."""
    env, server = cloud["env"], cloud["server"]
    name = f"r-{uuid.uuid4().hex[:6]}"
    router = openstack_cli(env, "router", "create", name, "-f", "json")
    with server.http() as admin:
        [first] = wait_for(lambda: hosts_of(admin, router["id"]), 10, what="scheduled")
        other = "network2" if first == "network1" else "network1"
        listed = openstack_cli(env, "network", "agent", "list", "--router", name, "--long",
                               "-f", "json")
        assert [(a["Host"], a["HA State"]) for a in listed] == [(first, None)]
        shown = openstack_cli(env, "network", "agent", "show", l3_agent(admin, first)["id"],
                              "-f", "json")
        assert (shown["binary"], shown["topic"], shown["agent_type"]) == (
            "neutrino-l3-agent", "l3_agent", "L3 agent")
        config = shown["configuration"]
        assert config["agent_mode"] == "legacy" and {"routers", "interfaces", "floating_ips",
                                                     "ex_gw_ports"} <= set(config)
        wait_for(lambda: openstack_cli(env, "network", "agent", "show",
                                       l3_agent(admin, first)["id"], "-f", "json")[
            "configuration"]["routers"] >= 1, 15, what="the agent counting its router")
        on_agent = openstack_cli(env, "router", "list", "--agent",
                                 l3_agent(admin, first)["id"], "-f", "json")
        assert name in {r["Name"] for r in on_agent}

        # A legacy router has one agent: adding another is refused, moving it works.
        refused = admin.post(f"/v2.0/agents/{l3_agent(admin, other)['id']}/l3-routers",
                             json={"router_id": router["id"]})
        error(refused, 409, "RouterHostedByL3Agent")
        openstack_cli(env, "network", "agent", "remove", "router", "--l3",
                      l3_agent(admin, first)["id"], name)
        assert hosts_of(admin, router["id"]) == set()
        openstack_cli(env, "network", "agent", "add", "router", "--l3",
                      l3_agent(admin, other)["id"], name)
        assert hosts_of(admin, router["id"]) == {other}
        # Adding it again to the same agent is a quiet no-op, as in Neutron.
        again = admin.post(f"/v2.0/agents/{l3_agent(admin, other)['id']}/l3-routers",
                           json={"router_id": router["id"]})
        assert again.status_code == 201 and again.content == b"null"
        dhcp = ok(admin.get("/v2.0/agents", params={"agent_type": "DHCP agent"}))["agents"][0]
        error(admin.post(f"/v2.0/agents/{dhcp['id']}/l3-routers",
                         json={"router_id": router["id"]}), 404, "InvalidL3Agent")
        with server.http(project="p1", roles="member") as member:
            error(member.get(f"/v2.0/routers/{router['id']}/l3-agents"), 403,
                  "PolicyNotAuthorized")
    openstack_cli(env, "router", "delete", name)


def test_floating_ip_turns_active_when_the_agent_has_it(cloud: dict[str, Any]) -> None:
    """DOWN on create; ACTIVE once the hosting agent reports it; DOWN when disassociated."""
    server = cloud["server"]
    with server.http() as admin:
        ext = ok(admin.post("/v2.0/networks", json={"network": {
            "name": "ext", "router:external": True}}), 201)["network"]
        ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": ext["id"], "cidr": "198.51.100.0/24", "ip_version": 4,
            "enable_dhcp": False}}), 201)
        net = ok(admin.post("/v2.0/networks", json={"network": {"name": "t"}}), 201)["network"]
        sub = ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.70.0.0/24", "ip_version": 4}}), 201)["subnet"]
        router = ok(admin.post("/v2.0/routers", json={"router": {
            "external_gateway_info": {"network_id": ext["id"]}}}), 201)["router"]
        ok(admin.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                     json={"subnet_id": sub["id"]}))
        vm = ok(admin.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 201)["port"]
        fip = ok(admin.post("/v2.0/floatingips", json={"floatingip": {
            "floating_network_id": ext["id"], "port_id": vm["id"]}}), 201)["floatingip"]
        assert fip["status"] == "DOWN"
        url = f"/v2.0/floatingips/{fip['id']}"
        wait_for(lambda: ok(admin.get(url))["floatingip"]["status"] == "ACTIVE", 15,
                 what="the floating IP ACTIVE")
        ok(admin.put(url, json={"floatingip": {"port_id": None}}))
        assert ok(admin.get(url))["floatingip"]["status"] == "DOWN"
        ok(admin.put(url, json={"floatingip": {"port_id": vm["id"]}}))
        wait_for(lambda: ok(admin.get(url))["floatingip"]["status"] == "ACTIVE", 15,
                 what="ACTIVE again after re-association")


def test_routers_of_a_dead_agent_move(cloud: dict[str, Any]) -> None:
    """kill -9 of the agent hosting a router: it moves to the live one, its ports too."""
    server, agents = cloud["server"], cloud["agents"]
    with server.http() as admin:
        router = ok(admin.post("/v2.0/routers", json={"router": {"name": "moving"}}), 201)[
            "router"]
        [first] = wait_for(lambda: hosts_of(admin, router["id"]), 10, what="scheduled")
        agents[first].kill()
        survivor = "network2" if first == "network1" else "network1"
        wait_for(lambda: hosts_of(admin, router["id"]) == {survivor}, 30,
                 what="the router on the live agent")
        agents[first].start()
        wait_for(lambda: l3_agent(admin, first)["alive"], 20, what="the agent back")
