"""HA routers in the lab with real packets: seed 003's demo end to end (failovers under a
ping and a TCP connection), and the host-level faults it uses."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from neutrino.lab import demo
from neutrino.lab.lab import Lab
from neutrino.lab.topology import load
from tests.functional.test_lab import base, lab_name, leftovers  # noqa: F401 (fixture)
from tests.support import root_network_snapshot

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
        assert {_state(pid) for pid in pids} == {"T"}
        lab.host_freeze("network1", frozen=False)
        assert "T" not in {_state(pid) for pid in pids}
        lab.host_freeze("network2", frozen=True)  # left frozen: `down` must cope
    finally:
        lab.down()
    assert leftovers(name) == []


def _state(pid: int) -> str:
    """A process's state letter (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
