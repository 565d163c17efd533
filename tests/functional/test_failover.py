"""Scheduling and automatic failover with real agent processes (no-op data plane)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import _server
from tests.functional.test_api import make_net, ok
from tests.support import AGENT_USER, AgentProcess, Server, wait_for

DOWN, GRACE, PASS = 2, 1, 0.2


@pytest.fixture
def fast_server(tmp_path_factory: pytest.TempPathFactory,
                request: pytest.FixtureRequest) -> Iterator[Server]:
    """A server with short liveness and failover times, and the agents' service user."""
    options = {"DEFAULT": {"agent_down_time": DOWN, "dhcp_failover_grace": GRACE,
                           "failover_check_interval": PASS,
                           **getattr(request, "param", {})}}
    servers = _server(tmp_path_factory.mktemp("failover"), "sqlite", "noauth", options=options)
    server = next(servers)
    server.add_user(*AGENT_USER, None, "service")
    try:
        yield server
    finally:
        servers.close()


def dhcp_hosts(c: httpx.Client, network_id: str) -> set[str]:
    """Hosts of the agents hosting a network."""
    return {a["host"] for a in ok(c.get(f"/v2.0/networks/{network_id}/dhcp-agents"))["agents"]}


def dhcp_ports(c: httpx.Client, network_id: str) -> list[dict[str, Any]]:
    """The DHCP ports of a network."""
    return list(ok(c.get("/v2.0/ports", params={"network_id": network_id,
                                                "device_owner": "network:dhcp"}))["ports"])


def registered(c: httpx.Client, count: int) -> bool:
    """Whether `count` live DHCP agents are registered."""
    agents = ok(c.get("/v2.0/agents", params={"agent_type": "DHCP agent"}))["agents"]
    return len([a for a in agents if a["alive"]]) == count


@pytest.mark.slow
def test_kill_9_moves_the_network_with_its_dhcp_port(fast_server: Server) -> None:
    """The dead agent's network moves within grace plus a pass, with the same port and IP."""
    agents = {h: AgentProcess(fast_server, "dhcp", h).start() for h in ("HostA", "HostB")}
    violations: list[str] = []
    stop = threading.Event()
    try:
        with fast_server.http() as admin:
            wait_for(lambda: registered(admin, 2), 20, what="two DHCP agents")
            net, _ = make_net(admin, "10.123.0.0/24")
            [first] = wait_for(lambda: dhcp_hosts(admin, net["id"]), 10, what="scheduling")
            [before] = dhcp_ports(admin, net["id"])
            survivor = "HostB" if first == "HostA" else "HostA"

            def watch_invariants() -> None:
                # At no moment may two DHCP ports of the network claim one agent or one IP.
                with fast_server.http() as c:
                    while not stop.is_set():
                        ports = dhcp_ports(c, net["id"])
                        devices = Counter(p["device_id"] for p in ports
                                          if p["device_id"] != "reserved_dhcp_port")
                        ips = Counter(ip["ip_address"] for p in ports for ip in p["fixed_ips"])
                        if any(n > 1 for n in devices.values()):
                            violations.append(f"device claimed twice: {devices}")
                        if any(n > 1 for n in ips.values()):
                            violations.append(f"IP claimed twice: {ips}")
                        time.sleep(0.1)

            checker = threading.Thread(target=watch_invariants)
            checker.start()
            agents[first].kill()
            killed = time.monotonic()
            wait_for(lambda: dhcp_hosts(admin, net["id"]) == {survivor}, 30,
                     what="the network bound to the surviving agent")
            moved_after = time.monotonic() - killed
            [after] = dhcp_ports(admin, net["id"])
            assert after["id"] == before["id"]
            assert after["fixed_ips"] == before["fixed_ips"]
            assert after["binding:host_id"] == survivor
            assert after["device_id"].startswith("dhcp") and after["device_id"].endswith(
                net["id"])
            # Dead for agent_down_time, then the grace, then at most one pass (and slack).
            assert moved_after <= DOWN + GRACE + PASS + 3.0, moved_after

            # The dead agent comes back and learns it no longer hosts the network.
            agents[first].start()
            first_id = next(a["id"] for a in ok(admin.get("/v2.0/agents", params={
                "host": first, "agent_type": "DHCP agent"}))["agents"])
            wait_for(lambda: ok(admin.get(f"/v2.0/agents/{first_id}"))["agent"][
                "configurations"]["networks"] == 0, 20, what="the old agent dropping it")
            assert dhcp_hosts(admin, net["id"]) == {survivor}
    finally:
        stop.set()
        for agent in agents.values():
            agent.stop()
    assert violations == []


@pytest.mark.slow
@pytest.mark.parametrize("fast_server", [{"agent_down_time": 3, "dhcp_failover_grace": 0,
                                          "failover_check_interval": 0.5}],
                         indirect=True, ids=["neutrino-defaults"])
def test_a_frozen_agent_is_failed_over_and_gives_up_when_thawed(fast_server: Server) -> None:
    """SIGSTOP keeps the agent's connections open but stops its reports: with neutrino's
    default timings its network moves like a dead agent's (well within 5 s here, but only
    the bench times it), and once thawed the agent drops the network instead of taking it
    back."""
    agents = {h: AgentProcess(fast_server, "dhcp", h, report_interval=1.0).start()
              for h in ("HostA", "HostB")}
    frozen = None
    try:
        with fast_server.http() as admin:
            wait_for(lambda: registered(admin, 2), 20, what="two DHCP agents")
            net, _ = make_net(admin, "10.124.0.0/24")
            [first] = wait_for(lambda: dhcp_hosts(admin, net["id"]), 10, what="scheduling")
            survivor = "HostB" if first == "HostA" else "HostA"
            frozen = agents[first].proc
            assert frozen is not None
            os.kill(frozen.pid, signal.SIGSTOP)
            wait_for(lambda: dhcp_hosts(admin, net["id"]) == {survivor}, 30,
                     what="the network bound to the surviving agent")
            assert not registered(admin, 2)  # the frozen one counts as dead
            os.kill(frozen.pid, signal.SIGCONT)
            frozen = None
            first_id = next(a["id"] for a in ok(admin.get("/v2.0/agents", params={
                "host": first, "agent_type": "DHCP agent"}))["agents"])
            wait_for(lambda: ok(admin.get(f"/v2.0/agents/{first_id}"))["agent"][
                "configurations"]["networks"] == 0, 20, what="the thawed agent dropping it")
            wait_for(lambda: registered(admin, 2), 20, what="the thawed agent alive again")
            assert dhcp_hosts(admin, net["id"]) == {survivor}
            assert len(dhcp_ports(admin, net["id"])) == 1
    finally:
        if frozen is not None:
            os.kill(frozen.pid, signal.SIGCONT)
        for agent in agents.values():
            agent.stop()


def test_no_live_agent_means_no_move(fast_server: Server) -> None:
    """With nobody to take it, a dead agent keeps its network (it may come back)."""
    agent = AgentProcess(fast_server, "dhcp", "HostA").start()
    try:
        with fast_server.http() as admin:
            wait_for(lambda: registered(admin, 1), 20, what="the DHCP agent")
            net, _ = make_net(admin, "10.124.0.0/24")
            wait_for(lambda: dhcp_hosts(admin, net["id"]) == {"HostA"}, 10, what="scheduling")
            agent.kill()
            time.sleep(DOWN + GRACE + 4 * PASS + 1)
            assert dhcp_hosts(admin, net["id"]) == {"HostA"}
            assert len(dhcp_ports(admin, net["id"])) == 1
    finally:
        agent.stop()


@pytest.mark.parametrize("fast_server", [{"dhcp_agents_per_network": 3}], indirect=True)
def test_three_agents_per_network(fast_server: Server) -> None:
    """dhcp_agents_per_network = 3: each network on three agents, three DHCP addresses."""
    agents = [AgentProcess(fast_server, "dhcp", h).start() for h in ("H1", "H2", "H3", "H4")]
    try:
        with fast_server.http() as admin:
            wait_for(lambda: registered(admin, 4), 20, what="four DHCP agents")
            for i in range(3):
                net, _ = make_net(admin, f"10.125.{i}.0/24")
                hosts = wait_for(lambda n=net: len(dhcp_hosts(admin, n["id"])) == 3 and
                                 dhcp_hosts(admin, n["id"]), 10, what="three agents")
                ports = dhcp_ports(admin, net["id"])
                assert len(ports) == 3 and {p["binding:host_id"] for p in ports} == hosts
                assert len({p["fixed_ips"][0]["ip_address"] for p in ports}) == 3
    finally:
        for agent in agents:
            agent.stop()


def test_late_agent_picks_up_networks_and_disabled_agent_keeps_its_own(
        fast_server: Server) -> None:
    """network_auto_schedule gives waiting networks to a new agent; disabled ones get none."""
    with fast_server.http() as admin:
        waiting, _ = make_net(admin, "10.126.0.0/24")
        assert dhcp_hosts(admin, waiting["id"]) == set()  # no agent yet
        first = AgentProcess(fast_server, "dhcp", "HostA").start()
        try:
            wait_for(lambda: dhcp_hosts(admin, waiting["id"]) == {"HostA"}, 20,
                     what="the late agent taking the waiting network")
            agent = ok(admin.get("/v2.0/agents", params={"host": "HostA"}))["agents"][0]
            ok(admin.put(f"/v2.0/agents/{agent['id']}", json={"agent": {
                "admin_state_up": False}}))
            second = AgentProcess(fast_server, "dhcp", "HostB").start()
            try:
                wait_for(lambda: registered(admin, 2), 20, what="HostB")
                fresh, _ = make_net(admin, "10.127.0.0/24")
                wait_for(lambda: dhcp_hosts(admin, fresh["id"]) == {"HostB"}, 10,
                         what="the new network going to the enabled agent")
                assert dhcp_hosts(admin, waiting["id"]) == {"HostA"}  # kept by the disabled
            finally:
                second.stop()
        finally:
            first.stop()


def test_concurrent_adds_bind_once(fast_server: Server) -> None:
    """Sixteen simultaneous adds of one network to one agent: one 201, fifteen 409s."""
    agent = AgentProcess(fast_server, "dhcp", "HostA").start()
    try:
        with fast_server.http() as admin:
            wait_for(lambda: registered(admin, 1), 20, what="the DHCP agent")
            net, _ = make_net(admin, None)
            agent_id = ok(admin.get("/v2.0/agents"))["agents"][0]["id"]
        barrier = threading.Barrier(16)
        codes: list[int] = []

        def add() -> None:
            with fast_server.http() as c:
                barrier.wait()
                codes.append(c.post(f"/v2.0/agents/{agent_id}/dhcp-networks",
                                    json={"network_id": net["id"]}).status_code)

        threads = [threading.Thread(target=add) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [201] + [409] * 15
        with fast_server.http() as admin:
            assert len(ok(admin.get(f"/v2.0/networks/{net['id']}/dhcp-agents"))["agents"]) == 1
            assert len(dhcp_ports(admin, net["id"])) == 1
    finally:
        agent.stop()


def test_two_servers_one_database(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Two servers on one PostgreSQL database: one failover, seen through either server."""
    from tests.support import database_url, require_backend

    require_backend("postgresql")
    tmp = tmp_path_factory.mktemp("two-servers")
    options = {"DEFAULT": {"agent_down_time": DOWN, "dhcp_failover_grace": GRACE,
                           "failover_check_interval": PASS}}
    with database_url("postgresql", tmp) as url:
        servers = []
        for name in ("one", "two"):
            (tmp / name).mkdir()
            server = Server(tmp / name, url, options=options)
            server.add_user(*AGENT_USER, None, "service")
            servers.append(server.start())
        agents = [AgentProcess(servers[0], "dhcp", "HostA").start(),
                  AgentProcess(servers[1], "dhcp", "HostB").start()]
        try:
            with servers[0].http() as one, servers[1].http() as two:
                wait_for(lambda: registered(one, 2), 20, what="both agents")
                net, _ = make_net(one, "10.128.0.0/24")
                [first] = wait_for(lambda: dhcp_hosts(two, net["id"]), 10, what="scheduling")
                [before] = dhcp_ports(two, net["id"])
                victim = agents[0] if first == "HostA" else agents[1]
                survivor = "HostB" if first == "HostA" else "HostA"
                victim.kill()
                wait_for(lambda: dhcp_hosts(one, net["id"]) == {survivor}, 30,
                         what="the failover")
                assert dhcp_hosts(two, net["id"]) == {survivor}
                [after] = dhcp_ports(one, net["id"])
                assert (after["id"], after["fixed_ips"]) == (before["id"], before["fixed_ips"])
                # The surviving agent (on either server) got the network through its watch.
                survivor_id = next(a["id"] for a in ok(one.get("/v2.0/agents"))["agents"]
                                   if a["host"] == survivor)
                wait_for(lambda: ok(two.get(f"/v2.0/agents/{survivor_id}"))["agent"][
                    "configurations"]["networks"] >= 1, 20, what="the survivor serving it")
            moves = sum(s.log_text().count(f"Failover: network {net['id']}") for s in servers)
            assert moves == 1
        finally:
            for agent in agents:
                agent.stop()
            for server in servers:
                server.stop()
