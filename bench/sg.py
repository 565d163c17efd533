"""Benchmark of security group enforcement: full apply, member join, rule add, and the cost
of one change as the host grows.

Run from the repository root, as root:

    .venv/bin/python bench/sg.py [--ports 1000] [--members 10,1000,10000] [--quick] [--no-write]

A lab with three compute hosts (`Comp1`-`Comp3`, Linux bridge agents with the nftables
firewall) and the server. Group G has 50 rules: egress to anywhere, one ingress rule from
remote group R, 48 ingress TCP port rules. Comp1 gets `--ports` ports in G, Comp2 and Comp3
ten each; R's members are unbound ports of another network. Ports need no tap: what is
measured is the kernel's ruleset, read by `nft monitor` in each host's namespace.
(a) Full apply from nothing: Comp1's agent is stopped and its tables deleted; the time from
its start until its inet table has every port's chains and R's set every member, and the
size of the ruleset then.
(b) A port joining R -> its address in R's set on every host (the slowest host counts), at
each of `--members` sizes of R.
(c) A rule added to G -> the rule in Comp1's table.
(d) The curve: one rule added on a host of N ports, applied by the driver alone in a
throwaway namespace: ours (one chain rewritten, in one transaction) against re-rendering and
replacing the whole table, as Neutron's iptables driver does on every change.
Figures go to docs/benchmarks.md between the `bench/sg.py` markers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import queue
import random
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import git_commit, machine, no_quotas, publish  # noqa: E402
from neutrino.agent.linux import firewall as fw  # noqa: E402
from neutrino.agent.linux import netns  # noqa: E402
from neutrino.agent.linux.netfilter import render, render_replace  # noqa: E402
from neutrino.agent.linux.security import HostSecurity  # noqa: E402
from neutrino.lab.base import open_tempdir  # noqa: E402
from neutrino.lab.lab import Lab  # noqa: E402
from neutrino.lab.topology import parse  # noqa: E402

BEGIN = "<!-- bench/sg.py:begin -->"
END = "<!-- bench/sg.py:end -->"
HOSTS = ("Comp1", "Comp2", "Comp3")


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Monitor:
    """`nft monitor` in a host's namespace: lines with the time they were read."""

    def __init__(self, namespace: str) -> None:
        self.proc = subprocess.Popen(netns.command(namespace, ["nft", "monitor"]),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, errors="replace", bufsize=1)
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), line))

    def drain(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()

    def wait_for(self, needle: str, timeout: float = 30) -> float:
        """When a line containing `needle` was seen."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"nft monitor never showed {needle!r}")
            try:
                seen, line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if needle in line:
                return seen

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def bulk_ports(lab: Lab, network_id: str, count: int, **extra: Any) -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    with lab.api() as api:
        while len(made) < count:
            chunk = min(250, count - len(made))
            reply = api.post("/v2.0/ports", json={"ports": [
                {"network_id": network_id, "device_owner": "compute:nova", **extra}
                for _ in range(chunk)]})
            assert reply.status_code == 201, reply.text
            made += reply.json()["ports"]
    return made


def setup(lab: Lab, ports: int) -> dict[str, Any]:
    project = lab.demo_project
    net = lab.api_call("POST", "/v2.0/networks", {"network": {
        "name": "sg-bench", "project_id": project}})["network"]
    lab.api_call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.20.0.0/16", "ip_version": 4,
        "project_id": project}})
    members_net = lab.api_call("POST", "/v2.0/networks", {"network": {
        "name": "sg-members", "project_id": project}})["network"]
    lab.api_call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": members_net["id"], "cidr": "10.40.0.0/16", "ip_version": 4,
        "project_id": project}})
    remote = lab.api_call("POST", "/v2.0/security-groups", {"security_group": {
        "name": "R", "project_id": project}})["security_group"]
    group = lab.api_call("POST", "/v2.0/security-groups", {"security_group": {
        "name": "G", "project_id": project}})["security_group"]
    rules = [{"security_group_id": group["id"], "direction": "ingress",
              "remote_group_id": remote["id"], "project_id": project}]
    rules += [{"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
               "port_range_min": 1000 + i, "port_range_max": 1000 + i,
               "remote_ip_prefix": "0.0.0.0/0", "project_id": project} for i in range(48)]
    lab.api_call("POST", "/v2.0/security-group-rules", {"security_group_rules": rules})
    count = len(lab.api_get("/v2.0/security-group-rules",
                            security_group_id=group["id"])["security_group_rules"])
    progress(f"group G has {count} rules; creating {ports} ports on Comp1")
    for host, n in (("Comp1", ports), ("Comp2", 10), ("Comp3", 10)):
        bulk_ports(lab, net["id"], n, **{"binding:host_id": host,
                                         "security_groups": [group["id"]],
                                         "project_id": project})
    return {"net": net["id"], "members_net": members_net["id"], "group": group["id"],
            "remote": remote["id"], "rules": count, "project": project}


def ruleset_size(namespace: str) -> dict[str, int]:
    """Chains, rules and set elements of the host's ruleset, and its listing's size."""
    text = netns.run(namespace, ["nft", "list", "ruleset"]).stdout
    terse = netns.run(namespace, ["nft", "-t", "list", "ruleset"]).stdout
    chains = rules = 0
    in_chain = False
    for line in terse.splitlines():
        line = line.strip()
        if line.startswith("chain "):
            chains += 1
            in_chain = True
        elif line == "}":
            in_chain = False
        elif in_chain and line and not line.startswith("type "):
            rules += 1
    return {"bytes": len(text), "chains": chains, "rules": rules,
            "elements": text.count(",") + text.count("elements = {")}


def full_apply(lab: Lab, made: dict[str, Any], ports: int, members: int) -> dict[str, Any]:
    """(a): Comp1's agent started with nothing in its kernel."""
    host_ns = lab.host_namespace("Comp1")
    lab.agent_stop("Comp1", "l2")
    for family in ("inet", "bridge"):
        netns.run(host_ns, ["nft", "delete", "table", family, fw.TABLE])
    started = time.monotonic()
    lab.agent_start("Comp1", "l2", wait=False)
    set_name = fw.members_set(made["remote"], "IPv4")
    while True:
        listed = netns.run(host_ns, ["nft", "list", "map", "inet", fw.TABLE,
                                     "to_port"]).stdout
        if listed.count(": jump ") >= ports:  # every port's MAC -> its profile's chain
            elements = netns.run(host_ns, ["nft", "list", "set", "inet", fw.TABLE,
                                           set_name]).stdout
            if elements.count(",") + 1 >= members:
                break
        if time.monotonic() - started > 600:
            raise TimeoutError("full apply did not finish in 10 minutes")
        time.sleep(0.1)
    took = time.monotonic() - started
    return {"seconds": took, **ruleset_size(host_ns)}


def member_joins(lab: Lab, made: dict[str, Any], monitors: dict[str, Monitor],
                 tries: int) -> list[float]:
    """(b): one port created in R; until its address is in R's set on every host."""
    times = []
    for _ in range(tries):
        for monitor in monitors.values():
            monitor.drain()
        started = time.monotonic()
        port = lab.api_call("POST", "/v2.0/ports", {"port": {
            "network_id": made["members_net"], "security_groups": [made["remote"]],
            "project_id": made["project"]}})["port"]
        address = port["fixed_ips"][0]["ip_address"]
        seen = [m.wait_for(address) for m in monitors.values()]
        times.append(max(seen) - started)
    return times


def rule_adds(lab: Lab, made: dict[str, Any], monitor: Monitor, tries: int) -> list[float]:
    """(c): a rule added to G; until it is in Comp1's table."""
    times = []
    for i in range(tries):
        monitor.drain()
        port = 20000 + i
        started = time.monotonic()
        lab.api_call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": made["group"], "direction": "ingress", "protocol": "udp",
            "port_range_min": port, "port_range_max": port, "project_id": made["project"]}})
        times.append(monitor.wait_for(f"dport {port}") - started)
    return times


def curve(sizes: list[int], tries: int) -> list[dict[str, Any]]:
    """(d): one rule added on a host of N ports, ours against a whole re-render."""
    out = []
    name = f"nbs-{uuid.uuid4().hex[:6]}"
    netns.create(name)
    try:
        for size in sizes:
            rng = random.Random(size)
            security = HostSecurity(name)
            group = {"id": "g", "stateful": True, "rules": [
                {"direction": "egress", "ethertype": "IPv4"},
                {"direction": "ingress", "ethertype": "IPv4", "remote_group_id": "g"},
                *({"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                   "port_range_min": 1000 + i, "port_range_max": 1000 + i} for i in range(48))]}
            ports = [{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "mac_address":
                      f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                      "device_owner": "compute:nova", "security_groups": ["g"],
                      "fixed_ips": [{"ip_address": f"10.{i >> 16 & 255}.{i >> 8 & 255}."
                                     f"{i & 255}"}]} for i in range(size)]
            security.set_key(("security_group", "g"), group)
            security.set_key(("sg_members", "g:00"), {"addresses": [
                p["fixed_ips"][0]["ip_address"] for p in ports]})
            security.set_network("n", {"ports": ports})
            ours, whole = [], []
            for i in range(tries):
                group["rules"].append({"direction": "ingress", "ethertype": "IPv4",
                                       "protocol": "udp", "port_range_min": 30000 + i,
                                       "port_range_max": 30000 + i})
                started = time.perf_counter()
                security.set_key(("security_group", "g"), group)
                ours.append(time.perf_counter() - started)
            for i in range(tries):  # after ours: a whole replacement changes the handles
                group["rules"].append({"direction": "ingress", "ethertype": "IPv4",
                                       "protocol": "udp", "port_range_min": 40000 + i,
                                       "port_range_max": 40000 + i})
                started = time.perf_counter()
                bridge, inet = fw.render(dataclasses.replace(
                    security.plan(), groups={"g": fw.group_of(group)}))
                whole_text = render_replace(bridge) + render_replace(inet)
                security.firewall.netfilter.run(whole_text)
                whole.append(time.perf_counter() - started)
            size_text = sum(len(render(t)) for t in fw.render(security.plan()))
            out.append({"ports": size, "ours_ms": pct(ours, 50) * 1000,
                        "whole_ms": pct(whole, 50) * 1000, "text_kb": size_text / 1024})
            progress(f"curve: {size} ports: ours {out[-1]['ours_ms']:.1f} ms, whole "
                     f"table {out[-1]['whole_ms']:.1f} ms")
            security.firewall.remove()
            security.firewall.netfilter.close()
    finally:
        netns.remove(name)
    return out


def markdown(r: dict[str, Any], argv: list[str], started: datetime.datetime) -> str:
    a = r["full"]
    lines = [
        BEGIN,
        "## Security groups (`bench/sg.py`)",
        "",
        f"Machine: {machine()}. Date: {started:%Y-%m-%d %H:%M} UTC. Commit: {git_commit()}. "
        f"Command: `.venv/bin/python bench/sg.py {' '.join(argv)}`.",
        "",
        f"Three compute hosts (Linux bridge agents, nftables firewall); group G of "
        f"{r['rules']} rules (one from remote group R); Comp1 has {r['ports']} ports in G, "
        "Comp2 and Comp3 ten each. \"Enforced\" is read by `nft monitor` in each host's "
        "namespace.",
        "",
        "| what | figure | goal |",
        "|---|---|---|",
        f"| (a) full apply from nothing, {r['ports']} ports, R with {a['members']} members | "
        f"{a['seconds']:.1f} s ({a['chains']} chains, {a['rules']} rules, about "
        f"{a['elements']} set elements, {a['bytes'] / 1024:.0f} KiB of `nft list ruleset`) "
        "| <= 10 s |",
    ]
    for size, times in r["joins"].items():
        lines.append(f"| (b) a port joins R ({size} members) -> in R's set on all 3 hosts "
                     f"({len(times)} tries) | p50 {pct(times, 50) * 1000:.0f} ms, p99 "
                     f"{pct(times, 99) * 1000:.0f} ms | p99 <= 200 ms |")
    c = r["rules_added"]
    lines.append(f"| (c) a rule added to G -> in Comp1's table ({len(c)} tries) | p50 "
                 f"{pct(c, 50) * 1000:.0f} ms, p99 {pct(c, 99) * 1000:.0f} ms | "
                 "p99 <= 500 ms |")
    lines += ["", "(d) One rule added on a host of N ports (driver alone, median of "
              f"{r['curve_tries']}): ours rewrites the group's chain in one transaction; "
              "\"whole table\" re-renders and replaces both tables, as Neutron's iptables "
              "driver re-renders its table on every change.", "",
              "| ports | ours | whole table | ruleset text |", "|---|---|---|---|"]
    for point in r["curve"]:
        lines.append(f"| {point['ports']} | {point['ours_ms']:.1f} ms | "
                     f"{point['whole_ms']:.1f} ms | {point['text_kb']:.0f} KiB |")
    lines += ["", END, ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--members", default="10,1000,10000")
    parser.add_argument("--tries", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="100 ports, 10/100 members")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.ports, args.members, args.tries = 100, "10,100", 5
    sizes = [int(s) for s in args.members.split(",")]
    started = datetime.datetime.now(datetime.UTC)
    base = open_tempdir("neutrino-sg-bench-")
    lab = Lab("nbs", base, out=progress)
    results: dict[str, Any] = {"ports": args.ports, "joins": {}}
    monitors: dict[str, Monitor] = {}
    try:
        lab.up(parse({"name": "sg-bench", "hosts": [{"name": h, "agents": ["l2"]}
                                                     for h in HOSTS],
                      "server_options": no_quotas()}))
        made = setup(lab, args.ports)
        results["rules"] = made["rules"]
        have = 0
        for size in sizes:
            bulk_ports(lab, made["members_net"], size - have,
                       security_groups=[made["remote"]], project_id=made["project"])
            time.sleep(3)  # the bulk's changes applied everywhere
            for host in HOSTS:  # nft monitor (1.0.6) may die of a whole table's events
                if host not in monitors or monitors[host].proc.poll() is not None:
                    monitors[host] = Monitor(lab.host_namespace(host))
            time.sleep(0.5)
            member_joins(lab, made, monitors, 1)  # a warm-up, not counted
            times = member_joins(lab, made, monitors, args.tries)
            have = size + args.tries + 1
            results["joins"][size] = times
            progress(f"(b) {size} members: p50 {pct(times, 50) * 1000:.0f} ms, "
                     f"p99 {pct(times, 99) * 1000:.0f} ms")
            if "full" not in results and (size >= 1000 or size == sizes[-1]):
                progress(f"(a) full apply, R with {have} members")
                results["full"] = {**full_apply(lab, made, args.ports, have),
                                   "members": have}
                progress(f"(a) {results['full']}")
        for host in HOSTS:
            if monitors[host].proc.poll() is not None:
                monitors[host] = Monitor(lab.host_namespace(host))
        time.sleep(0.5)
        results["rules_added"] = rule_adds(lab, made, monitors["Comp1"], args.tries)
        progress(f"(c) p99 {pct(results['rules_added'], 99) * 1000:.0f} ms")
    finally:
        for monitor in monitors.values():
            monitor.close()
        lab.down()
        shutil.rmtree(base, ignore_errors=True)
    results["curve_tries"] = max(3, args.tries // 3)
    results["curve"] = curve([250, 500, 1000, 2000] if not args.quick else [100, 200],
                             results["curve_tries"])
    text = markdown(results, argv if argv is not None else sys.argv[1:], started)
    print(text)
    publish({k: v for k, v in results.items() if k != "joins"}
            | {"joins_p99_ms": {s: pct(t, 99) * 1000 for s, t in results["joins"].items()}},
            text, BEGIN, END, not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
