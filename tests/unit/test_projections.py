"""What each agent type is sent, from real rows (SQLite), applied to the fake data plane:
the projections and the reconciler together, without root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.fake import FakeDhcp, FakeL2
from neutrino.agent.runner import AgentRunner
from neutrino.cmd.common import load_config
from neutrino.db import migration
from neutrino.db.api import Database
from neutrino.schema.policy import Context
from neutrino.schema.request import parse_item
from neutrino.schema.resources import (
    NETWORK,
    PORT,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    SUBNET,
)
from neutrino.services import Services
from neutrino.services.agents import Report
from neutrino.services.changes import Change
from neutrino.services.projections import Interest

ADMIN = Context.admin()


def change(kind: str, scope: tuple[str, str] | None = None, host: str | None = None,
           object_id: str = "x") -> Change:
    return Change(1, kind, object_id, *(scope or (None, None)), host)


INTEREST = Interest("agent-1", "DHCP agent", "HostA", frozenset({"network"}),
                    {("network", "n1"): {("network", "n1")}})
BROAD = Interest("agent-2", "Linux bridge agent", "HostA", frozenset({"network"}),
                 {("network", "n1"): {("network", "n1")}, ("network", "n2"): {("network", "n2")}},
                 frozenset({"agent"}))


@pytest.mark.parametrize(("interest", "entries", "expected"), [
    (INTEREST, [change("port", ("network", "n1"))], {("network", "n1")}),
    (INTEREST, [change("port", ("network", "n9"))], None),  # not its network
    (INTEREST, [change("binding", ("network", "n9"), host="HostA")], {("network", "n9")}),
    (INTEREST, [change("agent", object_id="agent-1")], {("network", "n1")}),  # itself
    (INTEREST, [change("agent", object_id="agent-7", host="HostB")], None),
    (BROAD, [change("agent", object_id="agent-7", host="HostB")],
     {("network", "n1"), ("network", "n2")}),  # a tunnel endpoint may have moved
    (INTEREST, [change("router", ("router", "r1"), host="HostA")], None),  # not its kind
])
def test_interest_maps_changes_to_keys(interest: Interest, entries: list[Change],
                                       expected: set[tuple[str, str]] | None) -> None:
    """Changes in a watched scope, on the agent's host, broad ones, or of the agent itself."""
    assert interest.affected(entries) == expected


SECURED = Interest("agent-3", "Linux bridge agent", "HostA", frozenset({"network"}),
                   {("network", "n1"): {("network", "n1")},
                    ("security_group", "g1"): {("security_group", "g1")},
                    ("sg_members", "r1:00"): {("sg_members", "r1:00")}},
                   frozenset({"agent"}), frozenset({"security_group"}))


@pytest.mark.parametrize(("entries", "expected"), [
    ([change("port", ("network", "n1"), host="HostB")], False),  # another host's port
    ([change("subnet", ("network", "n1"))], False),
    ([change("port", ("sg_members", "r1:00"))], False),  # a member joins a remote group
    ([change("agent", object_id="agent-7", host="HostB")], False),  # broad, not shaping
    ([change("security_group", ("security_group", "g9"))], False),  # not the host's group
    ([change("port", ("network", "n5"), host="HostA")], True),  # bound here
    ([change("security_group", ("security_group", "g1"))], True),  # may name a new remote
    ([change("agent", object_id="agent-3")], True),  # itself
    ([change("subnet", ("network", "n1")),
      change("binding", ("network", "n9"), host="HostA")], True),
])
def test_interest_reshaped_only_by_what_can_change_its_keys(
        entries: list[Change], expected: bool) -> None:
    """Changes on the host, of the agent, or in a watched scope of a shaping kind."""
    assert SECURED.reshaped(entries) is expected


@pytest.fixture
def services(tmp_path: Path) -> Any:
    conf_file = tmp_path / "n.conf"
    conf_file.write_text(f"[database]\nconnection = sqlite:///{tmp_path / 'db.sqlite'}\n"
                         "[VXLAN]\nlocal_ip = 172.30.0.11\n"
                         f"[DEFAULT]\nstate_path = {tmp_path}\n")
    conf = load_config(["--config-file", str(conf_file)], "test")
    db = Database(conf.database.connection)
    migration.upgrade(db.engine)
    built = Services.build(conf, db)
    built.conf = conf
    yield built
    db.dispose()


def register(services: Any, agent_type: str, host: str, tunnel: str = "") -> str:
    agent_id, _ = services.agents.report(Report(
        agent_type, host, "b", "t", {"tunneling_ip": tunnel} if tunnel else {}, "nova", True, 0))
    return str(agent_id)


def create(services: Any, resource: Any, body: dict[str, Any]) -> dict[str, Any]:
    service = {"networks": services.networks, "subnets": services.subnets,
               "ports": services.ports}[resource.collection]
    return dict(service.create(ADMIN, [parse_item(resource, body, create=True)])[0])


class Channel:
    """Enough of the agent channel for `absorb` and status sends."""

    def status(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"updated": 0}


def test_dhcp_and_l2_agents_get_their_share_and_a_second_pass_does_nothing(
        services: Any) -> None:
    """The DHCP agent hosting a network plans its dnsmasq with every port; the L2 agent of
    HostA plans only HostA's port, with HostB's tunnel endpoint as its remote."""
    dhcp_a = register(services, "DHCP agent", "HostA")
    register(services, "Linux bridge agent", "HostA", "172.30.0.11")
    register(services, "Linux bridge agent", "HostB", "172.30.0.12")
    net = create(services, NETWORK, {"name": "net1"})
    create(services, SUBNET, {"network_id": net["id"], "cidr": "10.0.1.0/24", "ip_version": 4})
    on_a = create(services, PORT, {"network_id": net["id"], "binding:host_id": "HostA"})
    on_b = create(services, PORT, {"network_id": net["id"], "binding:host_id": "HostB"})
    services.dhcp.add_dhcp_networks(ADMIN, dhcp_a, net["id"])

    fake_dhcp, fake_l2 = FakeDhcp(services.conf), FakeL2(services.conf)
    for fake, agent_type in ((fake_dhcp, "DHCP agent"), (fake_l2, "Linux bridge agent")):
        interest = services.watch.interest(agent_type, "HostA")
        runner = AgentRunner("HostA", fake, Channel(),  # type: ignore[arg-type]
                             report_interval=1, availability_zone=None)
        runner.absorb(services.watch.states(interest, None, 5))
        assert runner.reconcile_once()[1] == 0
        runner.mark_all_dirty()
        assert runner.reconcile_once() == (0, 0)  # a second pass changes nothing

    (dhcp_plan,) = fake_dhcp.snapshot()
    assert dhcp_plan.network_id == net["id"]
    assert dhcp_plan.served == {on_a["id"], on_b["id"]}
    assert fake_dhcp.status().dhcp_ready == {on_a["id"], on_b["id"]}
    (l2_plan,) = fake_l2.networks()
    # HostA's ports: the VM's, and the DHCP port its DHCP agent plugs there.
    assert {p.id for p in l2_plan.ports} == {on_a["id"], dhcp_plan.port_id}
    assert l2_plan.remotes == {"172.30.0.12"} and l2_plan.vxlan is not None
    # HostB's agent has no DHCP agent: nothing for it; its L2 share is its own port.
    with pytest.raises(Exception, match="could not be found"):
        services.watch.interest("DHCP agent", "HostB")
    l2_b = services.watch.states(services.watch.interest("Linux bridge agent", "HostB"),
                                 None, 5)
    assert [p["id"] for p in l2_b["states"][0]["state"]["ports"]] == [on_b["id"]]


def test_a_kept_interest_follows_what_reshapes_it(services: Any) -> None:
    """The watch keeps an agent's interest while changes leave it as it is (a member
    joining a remote group from another host), and reads it again when a port is bound to
    the host or a rule of one of its groups names another remote group."""
    register(services, "Linux bridge agent", "HostA", "172.30.0.11")
    register(services, "Linux bridge agent", "HostB", "172.30.0.12")
    net = create(services, NETWORK, {"name": "net1"})
    create(services, SUBNET, {"network_id": net["id"], "cidr": "10.0.1.0/24", "ip_version": 4})
    group, remote, other = (dict(services.security_groups.create(
        ADMIN, [parse_item(SECURITY_GROUP, {"name": n}, create=True)])[0]) for n in "GRO")
    create(services, PORT, {"network_id": net["id"], "binding:host_id": "HostA",
                            "security_groups": [group["id"]]})
    watch = services.watch

    def rule(remote_id: str) -> None:
        services.security_group_rules.create(ADMIN, [parse_item(SECURITY_GROUP_RULE, {
            "security_group_id": group["id"], "direction": "ingress",
            "remote_group_id": remote_id}, create=True)])

    def members(found: Interest) -> set[str]:
        return {k[1].partition(":")[0] for k in found.keys if k[0] == "sg_members"}

    rule(remote["id"])
    first = watch.interest("Linux bridge agent", "HostA")
    assert members(first) == {remote["id"]}
    create(services, PORT, {"network_id": net["id"], "binding:host_id": "HostB",
                            "security_groups": [remote["id"]]})
    assert watch.interest("Linux bridge agent", "HostA") is first  # nothing to read again

    rule(other["id"])
    assert members(watch.interest("Linux bridge agent", "HostA")) == {remote["id"], other["id"]}
    net2 = create(services, NETWORK, {"name": "net2"})
    create(services, SUBNET, {"network_id": net2["id"], "cidr": "10.0.2.0/24",
                              "ip_version": 4})
    create(services, PORT, {"network_id": net2["id"], "binding:host_id": "HostA"})
    assert ("network", net2["id"]) in watch.interest("Linux bridge agent", "HostA").keys


def test_a_ports_dhcp_options_reach_the_dhcp_agents_plan(services: Any) -> None:
    """extra_dhcp_opts travel to the DHCP agent: an options line tagged by the port, and
    the `--dhcp-mac` that sets that tag; an update that merges them changes the plan."""
    dhcp_a = register(services, "DHCP agent", "HostA")
    net = create(services, NETWORK, {"name": "pxe"})
    create(services, SUBNET, {"network_id": net["id"], "cidr": "10.0.2.0/24", "ip_version": 4})
    port = create(services, PORT, {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_name": "tftp-server", "opt_value": "10.0.2.7"},
        {"opt_name": "tag:ipxe,bootfile-name", "opt_value": "boot.ipxe"}]})
    services.dhcp.add_dhcp_networks(ADMIN, dhcp_a, net["id"])

    def plan() -> Any:
        fake = FakeDhcp(services.conf)
        runner = AgentRunner("HostA", fake, Channel(),  # type: ignore[arg-type]
                             report_interval=1, availability_zone=None)
        runner.absorb(services.watch.states(services.watch.interest("DHCP agent", "HostA"),
                                            None, 5))
        runner.reconcile_once()
        (found,) = fake.snapshot()
        return found

    tag = f"tag:port-{port['id']}"
    first = plan()
    assert f"{tag},option:tftp-server,10.0.2.7\n" in first.opts
    assert f"{tag},tag:ipxe,option:bootfile-name,boot.ipxe\n" in first.opts
    assert f"--dhcp-mac=set:port-{port['id']},{port['mac_address']}" in first.daemon.argv
    services.ports.update(ADMIN, port["id"], parse_item(PORT, {"extra_dhcp_opts": [
        {"opt_name": "tftp-server", "opt_value": None},
        {"opt_name": "tag:ipxe,bootfile-name", "opt_value": "other.ipxe"}]}, create=False))
    second = plan()
    assert "tftp-server" not in second.opts
    assert f"{tag},tag:ipxe,option:bootfile-name,other.ipxe\n" in second.opts
    assert second.daemon.argv == first.daemon.argv  # same ports with options: no restart
