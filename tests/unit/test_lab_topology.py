"""Lab topologies and names: what is accepted, and clear errors for what is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neutrino.lab.topology import TopologyError, check_lab_name, load, parse


def test_seed_000_is_the_default_topology() -> None:
    """controlnode runs the server; HostA and HostB each run both agents."""
    topology = load("seed-000")
    assert topology.controller == "controlnode"
    assert [(h.name, h.agents) for h in topology.hosts] == [
        ("HostA", ("l2", "dhcp")), ("HostB", ("l2", "dhcp"))]


def test_a_topology_file(tmp_path: Path) -> None:
    """A JSON file with hosts, their agents and server options."""
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"name": "net-node", "hosts": [
        {"name": "Net1", "agents": ["dhcp"]}, {"name": "Comp1", "agents": ["l2"]}],
        "server_options": {"DEFAULT": {"dhcp_agents_per_network": 2}}}))
    topology = load(str(path))
    assert topology.host("Net1").agents == ("dhcp",)
    assert topology.server_options == {"DEFAULT": {"dhcp_agents_per_network": 2}}
    with pytest.raises(TopologyError, match="no host 'Nope'"):
        topology.host("Nope")


@pytest.mark.parametrize(("data", "message"), [
    ({"hosts": []}, "at least one host"),
    ({}, "hosts with names"),
    ({"hosts": [{"name": "eth0; rm"}]}, "up to 16 letters"),
    ({"hosts": [{"name": "A", "agents": ["l7"]}]}, "unknown agents"),
    ({"hosts": [{"name": "A"}, {"name": "A"}]}, "unique"),
])
def test_bad_topologies_are_refused(data: dict[str, object], message: str) -> None:
    """Each mistake is named."""
    with pytest.raises(TopologyError, match=message):
        parse(data)


def test_unknown_topology_and_bad_json(tmp_path: Path) -> None:
    """Neither built in nor a file; a file that is not JSON."""
    with pytest.raises(TopologyError, match="neither built in"):
        load("seed-999")
    bad = tmp_path / "bad.json"
    bad.write_text("{hosts")
    with pytest.raises(TopologyError, match="not JSON"):
        load(str(bad))


@pytest.mark.parametrize("name", ["", "Lab", "1ab", "toolong7", "a-b"])
def test_lab_names_are_short_and_plain(name: str) -> None:
    """Lab names prefix every namespace: short, lower-case, no separators."""
    with pytest.raises(TopologyError):
        check_lab_name(name)
    assert check_lab_name("nl") == "nl"


def test_seed_004_and_seed_003() -> None:
    """Seed 004: a network node with L3 and two computes; seed 003: two network nodes. Both
    reach the physical network `external`, with the outside world and the internet."""
    four = load("seed-004")
    assert four.controller == "controller"
    assert [(h.name, h.agents) for h in four.hosts] == [
        ("network1", ("l2", "dhcp", "l3")), ("compute1", ("l2",)), ("compute2", ("l2",))]
    three = load("seed-003")
    assert [h.name for h in three.hosts if "l3" in h.agents] == ["network1", "network2"]
    for topology in (three, four):
        assert (topology.physical_network, topology.outside_gateway, topology.internet) == (
            "external", "203.0.113.1/24", "192.0.2.1/24")
