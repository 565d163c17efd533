"""Benchmark of the agent control plane: DHCP failover time, and 1,000 agents reporting.

Run from the repository root:

    .venv/bin/python bench/agents.py [--networks 100] [--agents 1000] [--quick] [--no-write]

(a) Failover: one DHCP agent (real process, no-op data plane) hosts `--networks` networks; a
second agent is up; the first is killed with SIGKILL, or frozen with SIGSTOP (its
connections stay open); measured is the time until every network is bound to the second.
Run with neutrino's defaults (report 1 s, down 3 s, no grace, a pass every 0.5 s), for
both faults, and with Neutron's timings set by configuration (report 30 s, down 75 s,
moving after 2 x down, a pass every down / 2 s).
(b) Load: `neutrino agent-swarm` runs `--agents` simulated agents at the default report
interval against one server process, each also keeping a watch open; measured are report
latencies after a warm-up (registration), the server's CPU over the measured window, and
the fewest agents the API showed alive meanwhile (fewer than all would be a false
failover).
Figures go to docs/benchmarks.md between the `bench/agents.py` markers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import git_commit, machine, proc_cpu, publish  # noqa: E402
from tests.support import (  # noqa: E402
    AGENT_USER,
    VENV_BIN,
    AgentProcess,
    Server,
    wait_for,
)

BEGIN = "<!-- bench/agents.py:begin -->"
END = "<!-- bench/agents.py:end -->"
GOAL_P99_MS = 50.0


@dataclass(frozen=True)
class Timing:
    """A set of liveness and failover timings."""

    label: str
    report_interval: float
    agent_down_time: int
    grace: int
    check_interval: float


NEUTRINO = Timing("neutrino defaults", 1.0, 3, 0, 0.5)
NEUTRON = Timing("Neutron's timings", 30.0, 75, 75, 37.0)


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its children (the swarm forks its workers)."""
    total = proc_cpu(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += proc_cpu(int(stat.parent.name))
    return total


def failover(timing: Timing, networks: int, workdir: Path, fault: str = "kill",
             ) -> dict[str, Any]:
    """Kill (SIGKILL) or freeze (SIGSTOP: its connections stay open) the agent hosting
    `networks` networks; time until all are on the other agent."""
    server = Server(workdir, f"sqlite:///{workdir / 'neutrino.sqlite'}", options={"DEFAULT": {
        "agent_down_time": timing.agent_down_time, "dhcp_failover_grace": timing.grace,
        "failover_check_interval": timing.check_interval}})
    server.manage("user", "add", AGENT_USER[0], "--password", AGENT_USER[1], "--role",
                  "service")
    server.start()
    first = AgentProcess(server, "dhcp", "HostA", report_interval=timing.report_interval)
    second = AgentProcess(server, "dhcp", "HostB", report_interval=timing.report_interval)
    try:
        with server.http() as c:
            first.start()
            wait_for(lambda: len(c.get("/v2.0/agents").json()["agents"]) == 1, 60,
                     what="HostA registered")
            for i in range(networks):
                net = c.post("/v2.0/networks", json={"network": {"name": f"f{i}"}}).json()
                c.post("/v2.0/subnets", json={"subnet": {
                    "network_id": net["network"]["id"], "ip_version": 4,
                    "cidr": f"10.{i // 250}.{i % 250}.0/24"}}).raise_for_status()
            agents = c.get("/v2.0/agents").json()["agents"]
            a_id = agents[0]["id"]
            hosted = len(c.get(f"/v2.0/agents/{a_id}/dhcp-networks").json()["networks"])
            assert hosted == networks, hosted
            second.start()
            wait_for(lambda: len(c.get("/v2.0/agents").json()["agents"]) == 2, 60,
                     what="HostB registered")
            b_id = next(a["id"] for a in c.get("/v2.0/agents").json()["agents"]
                        if a["host"] == "HostB")
            progress(f"[{timing.label}] {networks} networks on HostA; fault: {fault}")
            assert first.proc is not None
            if fault == "kill":
                first.kill()
            else:
                os.kill(first.proc.pid, signal.SIGSTOP)
            killed = time.monotonic()
            counts = {"first": None}

            def moved() -> bool:
                n = len(c.get(f"/v2.0/agents/{b_id}/dhcp-networks").json()["networks"])
                if n and counts["first"] is None:
                    counts["first"] = time.monotonic() - killed  # type: ignore[assignment]
                return n == networks

            wait_for(moved, 3 * (timing.agent_down_time + timing.grace) + 120, interval=0.2,
                     what="every network on HostB")
            total = time.monotonic() - killed
            ports = c.get("/v2.0/ports", params={"device_owner": "network:dhcp"}).json()
            per_net = {p["network_id"] for p in ports["ports"]}
            assert len(ports["ports"]) == networks == len(per_net), "DHCP ports duplicated"
    finally:
        if first.proc is not None and first.proc.poll() is None:
            os.kill(first.proc.pid, signal.SIGCONT)  # a frozen agent cannot stop otherwise
        first.stop()
        second.stop()
        server.stop()
    return {"label": timing.label, "fault": fault, "timing": timing.__dict__,
            "networks": networks, "first_moved_s": counts["first"], "all_moved_s": total}


def swarm(count: int, warmup: float, duration: float, workdir: Path) -> dict[str, Any]:
    """Run `count` simulated agents against one server, reporting at neutrino's default
    interval; figures, the server's CPU, and the fewest agents seen alive while measured
    (any fewer than `count` would be a false failover)."""
    server = Server(workdir, f"sqlite:///{workdir / 'neutrino.sqlite'}")
    server.manage("user", "add", AGENT_USER[0], "--password", AGENT_USER[1], "--role",
                  "service")
    server.start()
    assert server.proc is not None
    try:
        proc = subprocess.Popen(
            [str(VENV_BIN / "neutrino"), "agent-swarm", "--count", str(count), "--server",
             server.url, "--username", AGENT_USER[0], "--password", AGENT_USER[1],
             "--warmup", str(warmup), "--duration", str(duration),
             "--report-interval", str(NEUTRINO.report_interval)],
            stdout=subprocess.PIPE, text=True)
        time.sleep(warmup)
        cpu0, t0 = proc_cpu(server.proc.pid), time.monotonic()
        swarm_cpu0 = tree_cpu(proc.pid)
        progress(f"[swarm] {count} agents registered (warm-up {warmup:.0f} s); measuring "
                 f"{duration:.0f} s")
        fewest = count
        with httpx.Client(base_url=server.url, timeout=30) as c:
            while time.monotonic() - t0 < duration:
                agents = c.get("/v2.0/agents", params={"fields": "alive"}).json()["agents"]
                fewest = min(fewest, sum(1 for a in agents if a["alive"]))
                time.sleep(2.0)
        cpu1, t1 = proc_cpu(server.proc.pid), time.monotonic()
        swarm_cpu1 = tree_cpu(proc.pid)
        out, _ = proc.communicate(timeout=duration + 180)
        figures: dict[str, Any] = json.loads(out)
        with httpx.Client(base_url=server.url) as c:
            agents = c.get("/v2.0/agents").json()["agents"]
        figures["registered"] = len(agents)
        figures["alive"] = len([a for a in agents if a["alive"]])
        figures["fewest_alive"] = fewest
        figures["server_cpu_pct"] = 100 * (cpu1 - cpu0) / (t1 - t0)
        figures["swarm_cpu_pct"] = 100 * (swarm_cpu1 - swarm_cpu0) / (t1 - t0)
    finally:
        server.stop()
    return figures


def markdown(results: dict[str, Any], argv: list[str], started: datetime.datetime) -> str:
    """This benchmark's section of docs/benchmarks.md."""
    lines = [BEGIN, "## Agents: DHCP failover and 1,000 reporting agents (`bench/agents.py`)",
             "",
             f"- Command: `{' '.join(['.venv/bin/python', 'bench/agents.py', *argv])}`",
             f"- Date: {started:%Y-%m-%d %H:%M} UTC",
             f"- Machine: {machine()}; Python {platform.python_version()}; commit "
             f"{git_commit()}",
             "- One `neutrino-server` on SQLite; agents are real processes with the no-op "
             "data plane (failover) or `neutrino agent-swarm` (load), on the same machine.",
             "", "### (a) Failover: the agent hosting every network is killed (SIGKILL) or "
             "frozen (SIGSTOP)", "",
             "| timings | fault | report / down / grace / pass (s) | networks | first moved | "
             "all moved |", "|---|---|---|---|---|---|"]
    for run in results["failover"]:
        t = run["timing"]
        lines.append(f"| {run['label']} | {run['fault']} | {t['report_interval']:g} / "
                     f"{t['agent_down_time']} / {t['grace']} / {t['check_interval']:g} | "
                     f"{run['networks']} | {run['first_moved_s']:.1f} s | "
                     f"{run['all_moved_s']:.1f} s |")
    lines += ["", "Neutron's own derivation for the same timings is 150-190 s (down 75 s x 2, "
              "then a periodic task every 37 s). Every network kept its DHCP port and address "
              "(the dead agent's port is reserved and reused), one DHCP port per network.", ""]
    s = results["swarm"]
    p99 = s["report_ms"]["p99"]
    lines += ["### (b) 1,000 simulated agents against one server process", "",
              "| measurement | result |", "|---|---|",
              f"| agents (registered / alive at the end / fewest alive while measured) | "
              f"{s['agents']} ({s['registered']} / {s['alive']} / {s['fewest_alive']}) |",
              f"| report interval; measured window after a {s['warmup_s']:.0f} s warm-up | "
              f"{s['report_interval_s']:g} s; {s['duration_s']:.0f} s |",
              f"| reports measured (errors) | {s['reports']} ({s['report_errors']}) |",
              f"| watches open per agent, answered (errors) | 1, {s['watches_answered']} "
              f"({s['watch_errors']}) |",
              f"| report latency p50 / p90 / p99 / max | {s['report_ms']['p50']:.2f} / "
              f"{s['report_ms']['p90']:.2f} / {p99:.2f} / {s['report_ms']['max']:.1f} ms |",
              f"| neutrino-server CPU (% of one core) | {s['server_cpu_pct']:.0f}% |",
              "| the swarm's own CPU (% of one core, all its processes) | "
              + (f"{s['swarm_cpu_pct']:.0f}% |" if s.get("swarm_cpu_pct") is not None
                 else "not measured in this run |"),
              "", "| goal | measured | verdict |", "|---|---|---|",
              f"| report p99 <= {GOAL_P99_MS:g} ms | {p99:.2f} ms | "
              f"{'PASS' if p99 <= GOAL_P99_MS else 'FAIL'} |",
              f"| server under one core | {s['server_cpu_pct']:.0f}% | "
              f"{'PASS' if s['server_cpu_pct'] < 100 else 'FAIL'} |",
              f"| no agent seen dead (no false failover) | {s['fewest_alive']} of "
              f"{s['agents']} | {'PASS' if s['fewest_alive'] == s['agents'] else 'FAIL'} |",
              "", END, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both parts; print the figures; write them to docs/benchmarks.md."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=100)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 10 networks, 100 agents, no Neutron timings")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.networks, args.agents, args.warmup, args.duration = 10, 100, 5.0, 10.0
    started = datetime.datetime.now(datetime.UTC)
    results: dict[str, Any] = {"failover": []}
    with tempfile.TemporaryDirectory(prefix="bench-agents-") as tmp:
        runs = [(NEUTRINO, "kill"), (NEUTRINO, "freeze")]
        for i, (timing, fault) in enumerate(runs if args.quick else [*runs, (NEUTRON, "kill")]):
            work = Path(tmp) / f"failover-{i}"
            work.mkdir()
            results["failover"].append(failover(timing, args.networks, work, fault))
            progress(f"[{timing.label}] {results['failover'][-1]}")
        work = Path(tmp) / "swarm"
        work.mkdir()
        results["swarm"] = swarm(args.agents, args.warmup, args.duration, work)
    publish(results, markdown(results, argv, started), BEGIN, END, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
