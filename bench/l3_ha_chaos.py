"""Chaos test of HA routers in the lab, repeated, with the counts written down.

Run from the repository root, as root:

    .venv/bin/python bench/l3_ha_chaos.py [--rounds 3] [--no-write]

A seed-003 lab gets seed 003's HA router, a VM on compute1 and a floating IP; then
`--rounds` rounds of every fault of `neutrino.lab.chaos_l3_ha` (kill -9 of the active node's
L3 agent, keepalived and conntrackd; a freeze of the whole host; its links cut; the server
killed), each held 3 s and healed, while a ping (every 50 ms) and a TCP connection run from
outside and the cloud is sampled every 100 ms. The counts go to docs/benchmarks.md between
the `bench/l3_ha_chaos.py` markers.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import git_commit, machine, publish  # noqa: E402
from neutrino.lab import chaos_l3_ha  # noqa: E402
from neutrino.lab.base import open_tempdir  # noqa: E402
from neutrino.lab.lab import Lab  # noqa: E402
from neutrino.lab.topology import load  # noqa: E402

BEGIN = "<!-- bench/l3_ha_chaos.py:begin -->"
END = "<!-- bench/l3_ha_chaos.py:end -->"


def progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def section(results: dict[str, Any], report: chaos_l3_ha.Report) -> str:
    held = report.held_twice_by_fault
    outside = sum(n for kind, n in held.items() if kind not in chaos_l3_ha.HELD_BY_DESIGN)
    by_fault = ", ".join(f"{kind} {n}" for kind, n in sorted(held.items()))
    lines = [BEGIN, "## HA routers under chaos (`bench/l3_ha_chaos.py`)", "",
             f"Run of {results['date']} at commit {results['commit']} on {results['machine']}"
             f"; a seed-003 lab, `ha_vrrp_advert_int` 0.2 s, conntrackd on; {report.rounds} "
             f"rounds of {len(chaos_l3_ha.FAULTS)} faults, each held "
             f"{chaos_l3_ha.HOLD:.0f} s, {len(report.samples)} samples (every "
             f"{chaos_l3_ha.PERIOD * 1000:.0f} ms).", "",
             "| fault | runs | ping gap max | TCP surviving | settled after the heal (max) |",
             "|---|---|---|---|---|"]
    for kind in chaos_l3_ha.FAULTS:
        runs = [r for r in report.runs if r.kind == kind]
        if not runs:
            continue
        settles = [r.settle for r in runs if r.settle is not None]
        lines.append(f"| {kind} | {len(runs)} | {max(r.ping_gap for r in runs):.2f} s | "
                     f"{sum(r.tcp_survived for r in runs)}/{len(runs)} | "
                     + (f"{max(settles):.2f} s" if settles else "never")
                     + (f" ({len(runs) - len(settles)} never)"
                        if settles and len(settles) < len(runs) else "") + " |")
    lines += ["", "Invariants, over every sample:", "",
              "- samples with two nodes serving (address held, fence open to traffic or ARP "
              f"replies, links up): **{report.served_twice}** (goal 0)",
              f"- samples with two nodes serving within {chaos_l3_ha.HEAL_WINDOW} s of a "
              f"partition's heal: {report.served_twice_at_heal} (where a partition is not "
              "a host's own link going down, both sides are primary until their first "
              "adverts cross, at most one advert interval, then both fences close until "
              "VRRP leaves one; a host whose own link is cut gives its routers up at once)",
              f"- longest time the API showed two actives: "
              f"**{report.longest_double_active:.1f} s** (goal ≤ 1 s)",
              f"- heals followed by exactly one active and one serving node within "
              f"{chaos_l3_ha.SETTLE_LIMIT:.0f} s: **{len(report.runs) - len(report.unsettled)}"
              f"/{len(report.runs)}**",
              "- samples with two nodes holding the router's address, but while one is "
              f"frozen: **{outside}** (goal 0; by fault: {by_fault or 'none'})",
              "- samples with two nodes holding it while one is frozen: "
              f"{report.held_twice - outside} (nobody on a frozen host can remove its "
              "addresses; its closed fences keep them from answering: see "
              "docs/architecture.md, HA routers)",
              "", "Violations: " + ("; ".join(report.violations) or "none") + ".", END, ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    base = open_tempdir("neutrino-chaos-")
    lab = Lab("nch", base, out=progress)
    results: dict[str, Any] = {"date": datetime.datetime.now(datetime.UTC).strftime(
        "%Y-%m-%d %H:%M UTC"), "commit": git_commit(), "machine": machine()}
    try:
        lab.up(load("seed-003"))
        report = chaos_l3_ha.run(lab, args.rounds, out=progress)
    finally:
        lab.down()
    results["violations"] = report.violations
    results["held_twice_by_fault"] = report.held_twice_by_fault
    results["served_twice"] = report.served_twice
    results["served_twice_at_heal"] = report.served_twice_at_heal
    publish(results, section(results, report), BEGIN, END, not args.no_write)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
