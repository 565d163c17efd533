"""HA routers in the lab with real packets: seed 003's demo end to end (failovers under a
ping and a TCP connection), and the host-level faults it uses."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from neutrino.lab import chaos_l3_ha, demo
from neutrino.lab.lab import Lab
from neutrino.lab.topology import load
from tests.functional.test_lab import base, lab_name, leftovers  # noqa: F401 (fixture)
from tests.support import root_network_snapshot, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("keepalived") is None or shutil.which("nft") is None,
    reason="needs root, keepalived, nftables and dnsmasq (tools/install installs them)")]


def test_l3_ha_demo_end_to_end(base: Path) -> None:  # noqa: F811
    """Seed 003's HA router: every step asserted (one active, failover after kill -9 of the
    agent with keepalived and after a cut link, no preemption on return), the flows'
    figures recorded, nothing of the lab left."""
    before = root_network_snapshot()
    name = lab_name()
    record = demo.run("l3-ha", Lab(name, base, out=lambda _line: None),
                      out=lambda _line: None)
    assert all(ok for _what, ok in record.checks), [w for w, ok in record.checks if not ok]
    for fault in ("agent-and-keepalived", "link"):
        report = record.facts[fault]
        assert report.ping_replies > 0 and report.ping_gap < 5, report
    assert leftovers(name) == []
    assert root_network_snapshot() == before


def test_freeze_and_thaw_a_host(base: Path) -> None:  # noqa: F811
    """`host freeze` stops every process of a host (its agents and dnsmasq), `thaw` lets
    them go on; the lab comes down cleanly either way."""
    name = lab_name()
    lab = Lab(name, base, out=lambda _line: None)
    lab.up(load("seed-003"))
    try:
        pids = lab.host_freeze("network1", frozen=True)
        assert pids
        # A signal takes effect when the process next runs in the kernel: soon, not at once.
        wait_for(lambda: {_state(pid) for pid in pids} == {"T"}, 5,
                 what="every process of network1 stopped")
        lab.host_freeze("network1", frozen=False)
        assert "T" not in {_state(pid) for pid in pids}
        lab.host_freeze("network2", frozen=True)  # left frozen: `down` must cope
    finally:
        lab.down()
    assert leftovers(name) == []


def _state(pid: int) -> str:
    """A process's state letter (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_chaos_one_round(base: Path) -> None:  # noqa: F811
    """One round of every fault of the active node (kill -9 of its L3 agent, keepalived and
    conntrackd, a frozen host, cut links, the server killed), sampled every 100 ms: never
    two nodes serving, never two actives in the API for more than a second, one active and
    one serving node within 10 s of every heal; nothing of the lab left
    (bench/l3_ha_chaos.py runs more rounds and records the counts)."""
    before = root_network_snapshot()
    name = lab_name()
    lab = Lab(name, base, out=lambda _line: None)
    lab.up(load("seed-003"))
    try:
        report = chaos_l3_ha.run(lab, 1, out=lambda _line: None)
    finally:
        lab.down()
    assert len(report.runs) == len(chaos_l3_ha.FAULTS)
    assert len(report.samples) > 100
    assert report.violations == []
    assert leftovers(name) == []
    assert root_network_snapshot() == before
