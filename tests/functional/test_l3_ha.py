"""HA routers through the API, the CLI and openstacksdk, with real L3 agent processes (no-op
data plane) on network1 and network2: the hidden HA network, VRIDs, an HA port per agent,
`ha_state` as the agents report it (and as Neutron rewrites it for dead agents), the ports
following the active host, migrations, and VRID exhaustion."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from neutrino.agent.client import ServerClient
from tests.conftest import _server
from tests.functional.test_api import error, ok
from tests.support import AGENT_USER, AgentProcess, openstack_cli, wait_for

FAST = {"DEFAULT": {"agent_down_time": 2, "dhcp_failover_grace": 1,
                    "failover_check_interval": 0.2},
        "AGENT": {"report_interval": 0.5}}
HA_OWNER = "network:router_ha_interface"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server (HA routers off by default, as Neutron's) and L3 agents on network1 and
    network2."""
    servers = _server(tmp_path_factory.mktemp("l3ha"), "sqlite", "noauth", options=FAST)
    server = next(servers)
    server.add_user(*AGENT_USER, None, "service")
    agents = {host: AgentProcess(server, "l3", host).start() for host in ("network1",
                                                                          "network2")}
    try:
        with server.http() as admin:
            wait_for(lambda: len([a for a in ok(admin.get("/v2.0/agents"))["agents"]
                                  if a["alive"]]) == 2, 20, what="two L3 agents alive")
        yield {"server": server, "agents": agents, "env": server.cli_env()}
    finally:
        for agent in agents.values():
            agent.stop()
        servers.close()


def report_state(server: Any, host: str, router_id: str, state: str) -> None:
    """What a host's L3 agent sends when keepalived changes state there."""
    client = ServerClient(server.url, AGENT_USER)
    try:
        client.status({"host": host, "routers": [{"id": router_id, "ha_state": state}]})
    finally:
        client.close()


def ha_ports(admin: httpx.Client, router_id: str) -> list[dict[str, Any]]:
    return list(ok(admin.get("/v2.0/ports", params={"device_id": router_id,
                                                    "device_owner": HA_OWNER}))["ports"])


def states(env: dict[str, str], router: str) -> dict[str, str]:
    listed = openstack_cli(env, "network", "agent", "list", "--router", router, "--long",
                           "-f", "json")
    return {a["Host"]: a["HA State"] for a in listed}


def test_an_ha_router_through_the_cli(cloud: dict[str, Any]) -> None:
    """An HA router on both agents: the project's HA network and subnet, an HA port
    on each host, two standbys until one reports active, then that host active and the
    router's ports bound there; a member never sees `ha`."""
    env, server = cloud["env"], cloud["server"]
    project = f"p-{uuid.uuid4().hex[:8]}"
    name = f"ha-{uuid.uuid4().hex[:6]}"
    with server.http() as admin, server.http(project=project, roles="member") as member:
        router = ok(admin.post("/v2.0/routers", json={"router": {
            "name": name, "ha": True, "project_id": project}}), 201)["router"]
        assert openstack_cli(env, "router", "show", name, "-f", "json")["ha"] is True
        assert "ha" not in ok(member.get(f"/v2.0/routers/{router['id']}"))["router"]
        nets = ok(admin.get("/v2.0/networks", params={
            "name": f"HA network project {project}"}))["networks"]
        assert len(nets) == 1 and nets[0]["project_id"] == ""
        [subnet] = ok(admin.get("/v2.0/subnets", params={"network_id": nets[0]["id"]}))[
            "subnets"]
        assert (subnet["cidr"], subnet["gateway_ip"], subnet["enable_dhcp"], subnet["name"]) \
            == ("169.254.192.0/18", None, False, f"HA subnet project {project}")
        assert nets[0]["id"] not in {n["id"] for n in ok(member.get("/v2.0/networks"))[
            "networks"]}
        wait_for(lambda: len(ha_ports(admin, router["id"])) == 2, 10, what="two HA ports")
        assert {p["binding:host_id"] for p in ha_ports(admin, router["id"])} == {
            "network1", "network2"}
        assert states(env, name) == {"network1": "standby", "network2": "standby"}

        net = ok(member.post("/v2.0/networks", json={"network": {"name": "in"}}), 201)[
            "network"]
        sub = ok(member.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.61.0.0/24", "ip_version": 4}}), 201)["subnet"]
        iface = ok(member.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                              json={"subnet_id": sub["id"]}))
        port = ok(admin.get(f"/v2.0/ports/{iface['port_id']}"))["port"]
        assert (port["device_owner"], port["binding:host_id"]) == (
            "network:ha_router_replicated_interface", "")

        report_state(server, "network2", router["id"], "active")
        assert states(env, name) == {"network1": "standby", "network2": "active"}
        assert ok(admin.get(f"/v2.0/ports/{iface['port_id']}"))["port"][
            "binding:host_id"] == "network2"
        # A host that does not host the router cannot claim it.
        report_state(server, "network3", router["id"], "active")
        assert states(env, name) == {"network1": "standby", "network2": "active"}

        # Failover: network1 takes over; the ports follow it.
        report_state(server, "network2", router["id"], "standby")
        report_state(server, "network1", router["id"], "active")
        assert states(env, name) == {"network1": "active", "network2": "standby"}
        assert ok(admin.get(f"/v2.0/ports/{iface['port_id']}"))["port"][
            "binding:host_id"] == "network1"

        ok(member.put(f"/v2.0/routers/{router['id']}/remove_router_interface",
                      json={"subnet_id": sub["id"]}))
        openstack_cli(env, "router", "delete", name)
        assert ok(admin.get("/v2.0/networks", params={
            "name": f"HA network project {project}"}))["networks"] == []
        assert ha_ports(admin, router["id"]) == []
        ok(member.delete(f"/v2.0/networks/{net['id']}"), 204)


def test_vrids_migrations_and_the_sdk(cloud: dict[str, Any]) -> None:
    """Routers of one project share one HA network with distinct VRIDs; `ha` changes only
    while the router is down (Neutron's 400 otherwise), taking its interfaces' owners and
    HA ports with it; openstacksdk sees `is_ha`."""
    server = cloud["server"]
    project = f"p-{uuid.uuid4().hex[:8]}"
    conn = server.sdk()
    first = conn.network.create_router(name="sdk-ha-1", is_ha=True, project_id=project)
    second = conn.network.create_router(name="sdk-ha-2", is_ha=True, project_id=project)
    assert first.is_ha and second.is_ha
    with server.http() as admin:
        nets = ok(admin.get("/v2.0/networks", params={
            "name": f"HA network project {project}"}))["networks"]
        assert len(nets) == 1  # one per project, however many routers
        refused = error(admin.put(f"/v2.0/routers/{first.id}", json={"router": {
            "ha": False}}), 400, "BadRequest")
        assert "Cannot change HA attribute of active routers" in refused
        # Down in the same request is not enough (Neutron's rule).
        error(admin.put(f"/v2.0/routers/{first.id}", json={"router": {
            "ha": False, "admin_state_up": False}}), 400, "BadRequest")
        ok(admin.put(f"/v2.0/routers/{first.id}", json={"router": {"admin_state_up": False}}))
        legacy = ok(admin.put(f"/v2.0/routers/{first.id}", json={"router": {"ha": False}}))[
            "router"]
        assert legacy["ha"] is False
        assert ha_ports(admin, first.id) == []
        wait_for(lambda: len(ok(admin.get(f"/v2.0/routers/{first.id}/l3-agents"))[
            "agents"]) == 1, 10, what="the legacy router on one agent")
        assert conn.network.get_router(first.id).is_ha is False
        # The other HA router keeps the HA network; deleting it removes the network.
        conn.network.delete_router(first)
        assert len(ok(admin.get("/v2.0/networks", params={
            "name": f"HA network project {project}"}))["networks"]) == 1
        conn.network.delete_router(second)
        assert ok(admin.get("/v2.0/networks", params={
            "name": f"HA network project {project}"}))["networks"] == []


def test_vrid_exhaustion_leaves_the_router_in_error(cloud: dict[str, Any]) -> None:
    """254 HA routers take every VRID of the project's HA network; the 255th is made but
    stays in ERROR, on no agent, as in Neutron; deleting one frees its VRID."""
    server = cloud["server"]
    project = f"p-{uuid.uuid4().hex[:8]}"
    with server.http() as admin:
        ok(admin.put(f"/v2.0/quotas/{project}", json={"quota": {"router": -1}}))
        made = []
        for start in range(0, 254, 50):
            count = min(50, 254 - start)
            made += ok(admin.post("/v2.0/routers", json={"routers": [
                {"name": f"v{start + i}", "ha": True, "project_id": project}
                for i in range(count)]}), 201)["routers"]
        assert {r["status"] for r in made} == {"ACTIVE"}
        last = ok(admin.post("/v2.0/routers", json={"router": {
            "name": "one-too-many", "ha": True, "project_id": project}}), 201)["router"]
        assert last["status"] == "ERROR"
        assert ok(admin.get(f"/v2.0/routers/{last['id']}/l3-agents"))["agents"] == []
        for router in made:
            ok(admin.delete(f"/v2.0/routers/{router['id']}"), 204)
        ok(admin.delete(f"/v2.0/routers/{last['id']}"), 204)
        assert ok(admin.get("/v2.0/networks", params={
            "name": f"HA network project {project}"}))["networks"] == []


def test_a_dead_agents_active_is_not_believed(cloud: dict[str, Any]) -> None:
    """An agent that reported active and died shows `standby` while the other lives, and
    the router is not moved off it (VRRP, not the scheduler, fails HA routers over)."""
    env, server, agents = cloud["env"], cloud["server"], cloud["agents"]
    name = f"ha-{uuid.uuid4().hex[:6]}"
    router = openstack_cli(env, "router", "create", "--ha", name, "-f", "json")
    with server.http() as admin:
        wait_for(lambda: len(ha_ports(admin, router["id"])) == 2, 10, what="two HA ports")
        report_state(server, "network1", router["id"], "active")
        assert states(env, name) == {"network1": "active", "network2": "standby"}
        agents["network1"].kill()
        try:
            wait_for(lambda: states(env, name) == {"network1": "standby",
                                                    "network2": "standby"}, 15,
                     what="the dead agent's active rewritten")
            report_state(server, "network2", router["id"], "active")
            assert states(env, name) == {"network1": "standby", "network2": "active"}
            # Still on both agents: failover does not move HA routers.
            assert len(ha_ports(admin, router["id"])) == 2
        finally:
            agents["network1"].start()
            wait_for(lambda: all(a["alive"] for a in ok(admin.get("/v2.0/agents"))["agents"]),
                     20, what="network1's agent back")
        openstack_cli(env, "router", "delete", name)


def test_two_actives_are_never_shown(cloud: dict[str, Any]) -> None:
    """Both agents report active (a frozen or partitioned host's report is stale): the CLI
    shows the one that became active last, and the router's ports are bound there; when
    the other reports again that it became active, the roles swap."""
    env, server = cloud["env"], cloud["server"]
    name = f"ha-{uuid.uuid4().hex[:6]}"
    router = openstack_cli(env, "router", "create", "--ha", name, "-f", "json")
    with server.http() as admin:
        net = ok(admin.post("/v2.0/networks", json={"network": {"name": name}}), 201)[
            "network"]
        sub = ok(admin.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.62.0.0/24", "ip_version": 4}}), 201)["subnet"]
        iface = ok(admin.put(f"/v2.0/routers/{router['id']}/add_router_interface",
                             json={"subnet_id": sub["id"]}))

        def bound() -> str:
            return str(ok(admin.get(f"/v2.0/ports/{iface['port_id']}"))["port"][
                "binding:host_id"])
        wait_for(lambda: len(ha_ports(admin, router["id"])) == 2, 10, what="two HA ports")
        report_state(server, "network1", router["id"], "active")
        report_state(server, "network2", router["id"], "active")
        assert states(env, name) == {"network1": "standby", "network2": "active"}
        assert bound() == "network2"
        report_state(server, "network1", router["id"], "standby")
        report_state(server, "network1", router["id"], "active")
        assert states(env, name) == {"network1": "active", "network2": "standby"}
        assert bound() == "network1"
        ok(admin.put(f"/v2.0/routers/{router['id']}/remove_router_interface",
                     json={"subnet_id": sub["id"]}))
        openstack_cli(env, "router", "delete", name)
        ok(admin.delete(f"/v2.0/networks/{net['id']}"), 204)
