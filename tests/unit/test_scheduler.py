"""The DHCP scheduler's pure choice, and the failover lease between server processes."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import update

from neutrino.cmd.common import load_config
from neutrino.db import migration
from neutrino.db.api import Database
from neutrino.db.models import AGENTS
from neutrino.schema.policy import Context
from neutrino.schema.request import parse_item
from neutrino.schema.resources import NETWORK, SUBNET
from neutrino.services import Services
from neutrino.services.agents import Report
from neutrino.services.dhcp import dhcp_device_id
from neutrino.services.scheduler import choose, scheduler_kind


def agents(*spec: tuple[str, str]) -> list[Any]:
    """Agent-like rows: (id, zone)."""
    return [SimpleNamespace(id=i, availability_zone=z) for i, z in spec]


POOL = agents(("a", "az1"), ("b", "az1"), ("c", "az2"), ("d", "az3"))
LOAD = Counter({"a": 5, "b": 1, "c": 3, "d": 0})


@pytest.mark.parametrize(("kind", "count", "hints", "hosting", "expected"), [
    ("weight", 1, [], set(), {"d"}),
    ("weight", 2, [], set(), {"d", "b"}),
    ("weight", 1, ["az1"], set(), {"b"}),
    ("az", 3, [], set(), {"d", "b", "c"}),  # one per zone, least loaded within
    ("az", 1, [], {"az3"}, {"b"}),  # prefers a zone not hosting the network yet
    ("az", 2, ["az1", "az2"], set(), {"b", "c"}),
    ("weight", 9, [], set(), {"a", "b", "c", "d"}),  # never more than there are
])
def test_choose(kind: str, count: int, hints: list[str], hosting: set[str],
                expected: set[str]) -> None:
    """Weight and AZ-aware choices are determined by load, zones and hints."""
    chosen = choose(kind, POOL, LOAD, count, hints, hosting, random.Random(1))
    assert {a.id for a in chosen} == expected


def test_chance_is_random_but_bounded() -> None:
    """Chance picks distinct agents, differently across seeds."""
    picks = {choose("chance", POOL, LOAD, 1, [], set(), random.Random(s))[0].id
             for s in range(40)}
    assert picks == {"a", "b", "c", "d"}
    assert len({a.id for a in choose("chance", POOL, LOAD, 3, [], set(),
                                     random.Random(3))}) == 3


def test_scheduler_names_and_device_ids() -> None:
    """Neutron's class paths and short names; Neutron's DHCP device_id form."""
    assert scheduler_kind("neutron.scheduler.dhcp_agent_scheduler.ChanceScheduler") == "chance"
    assert scheduler_kind("AZAwareWeightScheduler") == "az"
    with pytest.raises(ValueError):
        scheduler_kind("RoundRobin")
    assert dhcp_device_id("HostA", "n1") == dhcp_device_id("HostA", "n1")
    assert dhcp_device_id("HostA", "n1").startswith("dhcp") and \
        dhcp_device_id("HostA", "n1").endswith("-n1")


def test_one_failover_pass_at_a_time(tmp_path: Path) -> None:
    """Two server processes on one database: one holds the lease until it expires."""
    conf_file = tmp_path / "n.conf"
    conf_file.write_text(f"[database]\nconnection = sqlite:///{tmp_path / 'db.sqlite'}\n")
    conf = load_config(["--config-file", str(conf_file)], "test")
    db = Database(conf.database.connection)
    migration.upgrade(db.engine)
    one, two = Services.build(conf, db).periodic, Services.build(conf, db).periodic
    assert one.take_lease(1000.0, 10) is True
    assert two.take_lease(1001.0, 10) is False
    assert one.take_lease(1005.0, 10) is True  # renewed by its holder
    assert two.take_lease(1014.0, 10) is False
    assert two.take_lease(1016.0, 10) is True  # expired: taken over
    assert one.take_lease(1017.0, 10) is False
    db.dispose()


def _services(tmp_path: Path) -> tuple[Services, Database]:
    conf_file = tmp_path / "n.conf"
    conf_file.write_text(f"[DEFAULT]\nagent_down_time = 6\n[AGENT]\nreport_interval = 2\n"
                         f"[database]\nconnection = sqlite:///{tmp_path / 'db.sqlite'}\n")
    conf = load_config(["--config-file", str(conf_file)], "test")
    db = Database(conf.database.connection)
    migration.upgrade(db.engine)
    return Services.build(conf, db), db


def _heartbeat(db: Database, host: str, when: float) -> None:
    db.write(lambda conn: conn.execute(update(AGENTS).where(AGENTS.c.host == host)
                                       .values(heartbeat_timestamp=when)))


def test_a_restarted_server_watches_before_it_declares_agents_dead(tmp_path: Path) -> None:
    """Heartbeats that are old only because the server was away move nothing; an agent that
    stays silent while the restarted server watches is dead, and its network moves."""
    services, db = _services(tmp_path)
    ctx = Context.admin()
    agent_ids = {}
    for host in ("HostA", "HostB"):
        agent_ids[host], _ = services.agents.report(Report(
            "DHCP agent", host, "neutrino-dhcp-agent", "dhcp_agent", {}, "nova", True, 0))
    net = services.networks.create(ctx, [parse_item(NETWORK, {"name": "n"}, create=True)])[0]
    services.subnets.create(ctx, [parse_item(SUBNET, {
        "network_id": net["id"], "cidr": "10.9.0.0/24", "ip_version": 4}, create=True)])
    services.dhcp.add_dhcp_networks(ctx, agent_ids["HostA"], net["id"])
    t0 = 1_000_000.0
    for host in ("HostA", "HostB"):
        _heartbeat(db, host, t0)

    def hosts() -> set[str]:
        return {a["host"] for a in services.dhcp.list_dhcp_agents(ctx, net["id"])}

    # The server comes back 60 s later: a new process, every heartbeat 60 s old.
    restarted, _ = _services(tmp_path)
    _heartbeat(db, "HostB", t0 + 60)  # HostB's report comes in first; HostA's is due
    assert restarted.periodic.run(t0 + 60) == 0
    assert hosts() == {"HostA"}
    _heartbeat(db, "HostB", t0 + 65)  # HostB goes on reporting; HostA stays silent
    assert restarted.periodic.run(t0 + 66) == 0  # watched for 6 s: not yet 6 + 2
    assert hosts() == {"HostA"}
    assert restarted.periodic.run(t0 + 69) == 1  # watched for 9 s: HostA is dead
    assert hosts() == {"HostB"}
    db.dispose()
