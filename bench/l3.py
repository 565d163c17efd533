"""Benchmark of legacy routers with real packets: interface add -> the VM pings its gateway,
floating IP associate -> the outside pings it, one floating IP more on a router that has a
thousand, and an L3 agent's cold start with 200 routers and 1,000 floating IPs.

Run from the repository root, as root:

    .venv/bin/python bench/l3.py [--tries 100] [--routers 200] [--quick] [--no-write]

A lab with `network1` (L2, DHCP and L3 agents) and `compute1` (L2), an external flat network
on the outside namespace, and:
(a) a VM on compute1 on a network of its own; the router's interface on that network is
    added and removed `--tries` times; measured is the time from the API call until the VM's
    ping of its gateway is answered (ICMP every 10 ms from the VM, its ARP cache emptied
    before each try);
(b) a floating IP associated with that VM and disassociated `--tries` times; measured is
    the time from the API call until the outside's ping of the floating IP is answered;
(c) a router with 1,000 floating IPs; one more is associated ten times; measured is the
    time from the API call until the address is on the router's gateway device and the NAT
    map has it (both read with iproute2 and nft in the router's namespace, every 5 ms);
(d) `--routers` routers, each with two interfaces, a gateway and five floating IPs; the L3
    agent is killed, every router namespace wiped (a host reboot), and the agent started;
    measured is the time until every floating IP is in the kernel (address and NAT
    element, read in each router namespace), and until a sample of them, behind real
    responders, answers the outside's pings. Only a sample is pinged: the kernel's
    neighbour table is shared by every namespace and holds 1,024 entries by default, a
    setting of the machine's own namespace that the lab must not change.
(e) a second lab with two network nodes: the L3 agent hosting a router is killed (SIGKILL);
    measured are the time until the router is rescheduled on the other node and the VM (on
    compute1) reaches the internet through it, and the longest gap in the VM's pings of the
    internet meanwhile (every 100 ms; a dead agent's router keeps forwarding until its
    ports move away).
Figures go to docs/benchmarks.md between the `bench/l3.py` markers.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import git_commit, machine, no_quotas, proc_cpu, publish
from neutrino.agent.l3.plan import NAT_TABLE
from neutrino.agent.linux import netns
from neutrino.agent.linux.kernel import Route
from neutrino.lab.base import open_tempdir
from neutrino.lab.lab import Lab
from neutrino.lab.probes import Pinger
from neutrino.lab.topology import parse
from neutrino.lab.wiring import kernel
from neutrino.registry import device_name, tap_name

BEGIN, END = "<!-- bench/l3.py:begin -->", "<!-- bench/l3.py:end -->"
GOAL_P99_S, GOAL_COLD_S, GOAL_ONE_MORE_MS = 1.0, 30.0, 100.0
TOPOLOGY = {"name": "l3-bench", "controller": "controller",
            "hosts": [{"name": "network1", "agents": ["l2", "dhcp", "l3"]},
                      {"name": "compute1", "agents": ["l2"]}],
            "physical_network": "external", "outside_gateway": "203.0.113.1/16",
            "server_options": no_quotas()}


def progress(message: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    """p50, p90, p99 and max, in ms by default."""
    return {"count": len(values), **{f"p{q}": pct(values, q) * scale for q in (50, 90, 99)},
            "max": max(values) * scale}


def until(predicate: Any, timeout: float, interval: float = 0.01) -> float:
    """Seconds until `predicate()` is true (RuntimeError after `timeout`)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"not done after {timeout:.0f} s: {predicate}")
        time.sleep(interval)
    return time.monotonic() - start


def external(lab: Lab) -> str:
    """The external network (203.0.113.0/16, pool from .1.1); its id."""
    ext = lab.api_call("POST", "/v2.0/networks", {"network": {
        "name": "ext-net", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "external"}})["network"]
    lab.api_call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": ext["id"], "cidr": "203.0.0.0/16", "ip_version": 4,
        "enable_dhcp": False, "gateway_ip": "203.0.113.1",
        "allocation_pools": [{"start": "203.0.1.1", "end": "203.0.100.254"}]}})
    return str(ext["id"])


def network(lab: Lab, name: str, cidr: str, dhcp: bool = True) -> tuple[str, str]:
    """A network and its subnet; (network id, subnet id)."""
    net = lab.api_call("POST", "/v2.0/networks", {"network": {"name": name}})["network"]
    sub = lab.api_call("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": cidr, "ip_version": 4, "enable_dhcp": dhcp}})
    return str(net["id"]), str(sub["subnet"]["id"])


def allow_icmp(lab: Lab, port_id: str) -> None:
    """Seed 004's step 9 for the port's default group: ICMP in from anywhere (without it,
    the outside's pings of floating IPs are dropped by the group, as in Neutron)."""
    [group] = lab.api_call("GET", f"/v2.0/ports/{port_id}")["port"]["security_groups"]
    lab.api_call("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": group, "direction": "ingress", "protocol": "icmp",
        "remote_ip_prefix": "0.0.0.0/0"}}, expect=(201, 409))


def interface_to_ping(lab: Lab, ext_id: str, tries: int) -> tuple[list[float], dict[str, Any]]:
    """(a): interface add -> the VM (on compute1) pings its gateway."""
    net_id, subnet_id = network(lab, "vm-net", "192.168.10.0/24")
    router = lab.api_call("POST", "/v2.0/routers", {"router": {
        "name": "bench", "external_gateway_info": {"network_id": ext_id}}})["router"]
    lab.api_call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": subnet_id})
    vm = lab.vm_boot("vm1", "vm-net", "compute1")
    allow_icmp(lab, vm["port_id"])
    until(lambda: lab.vm_dhcp("vm1").ip_address, 60, 0.5)
    vm_ns = lab.vm_namespace("vm1")
    pinger = Pinger(vm_ns)
    until(lambda: pinger.round(["192.168.10.1"], 0.05), 60)
    url = f"/v2.0/routers/{router['id']}"
    times = []
    for i in range(tries):
        lab.api_call("PUT", f"{url}/remove_router_interface", {"subnet_id": subnet_id})
        until(lambda: not pinger.round(["192.168.10.1"], 0.05), 30)
        netns.run(vm_ns, ["ip", "neigh", "flush", "all"])
        started = time.monotonic()
        lab.api_call("PUT", f"{url}/add_router_interface", {"subnet_id": subnet_id})
        until(lambda: pinger.round(["192.168.10.1"], 0.01), 30, 0)
        times.append(time.monotonic() - started)
        if (i + 1) % 20 == 0:
            progress(f"  interface -> ping: {i + 1}/{tries}, p50 {pct(times, 50) * 1000:.0f} ms")
    pinger.close()
    return times, {"router": router, "vm": vm, "net": net_id}


def fip_to_ping(lab: Lab, ext_id: str, made: dict[str, Any], tries: int) -> list[float]:
    """(b): floating IP associate -> the outside pings it."""
    fip = lab.api_call("POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": ext_id}})["floatingip"]
    url, address = f"/v2.0/floatingips/{fip['id']}", fip["floating_ip_address"]
    pinger = Pinger(lab.outside)
    times = []
    for i in range(tries):
        started = time.monotonic()
        lab.api_call("PUT", url, {"floatingip": {"port_id": made["vm"]["port_id"]}})
        until(lambda: pinger.round([address], 0.01), 30, 0)
        times.append(time.monotonic() - started)
        lab.api_call("PUT", url, {"floatingip": {"port_id": None}})
        until(lambda: not pinger.round([address], 0.05), 30)
        if (i + 1) % 20 == 0:
            progress(f"  associate -> ping: {i + 1}/{tries}, p50 {pct(times, 50) * 1000:.0f} ms")
    pinger.close()
    return times


def one_more_fip(lab: Lab, ext_id: str, count: int) -> dict[str, Any]:
    """(c): one floating IP more on a router that already has `count`."""
    net_id, subnet_id = network(lab, "big-net", "10.250.0.0/20", dhcp=False)
    router = lab.api_call("POST", "/v2.0/routers", {"router": {
        "name": "big", "external_gateway_info": {"network_id": ext_id}}})["router"]
    lab.api_call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                 {"subnet_id": subnet_id})
    ports = []
    for start in range(0, count + 10, 500):
        ports += lab.api_call("POST", "/v2.0/ports", {"ports": [
            {"network_id": net_id} for _ in range(min(500, count + 10 - start))]})["ports"]

    def associate(port: dict[str, Any]) -> dict[str, Any]:
        return dict(lab.api_call("POST", "/v2.0/floatingips", {"floatingip": {
            "floating_network_id": ext_id, "port_id": port["id"]}})["floatingip"])

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(associate, ports[:count]))
    ns = f"{lab.host_namespace('network1')}-qrouter-{router['id']}"
    gw_port = lab.api_get("/v2.0/ports", device_id=router["id"],
                          device_owner="network:router_gateway")["ports"][0]
    qg = device_name("qg-", gw_port["id"])
    progress(f"  {count} floating IPs on router {router['id']}; waiting for the kernel")
    until(lambda: netns.exists(ns) and len(_addresses(ns)) >= count + 2, 120, 0.5)
    times = []
    for port in ports[count:count + 10]:
        started = time.monotonic()
        address = associate(port)["floating_ip_address"]
        until(lambda a=address: _on_device(ns, qg, a) and _in_map(ns, a), 30, 0.005)
        times.append(time.monotonic() - started)
    return {"floating_ips": count, **summary(times)}


def _on_device(ns: str, device: str, address: str) -> bool:
    """Whether the address is on the device (iproute2 filters in the kernel)."""
    result = netns.run(ns, ["ip", "-4", "-o", "addr", "show", "dev", device, "to",
                            f"{address}/32"])
    return bool(result.stdout.strip())


def _in_map(ns: str, address: str) -> bool:
    result = netns.run(ns, ["nft", "get", "element", "ip", NAT_TABLE, "fip_dnat",
                            f"{{ {address} }}"])
    return result.returncode == 0


def build_routers(lab: Lab, ext_id: str, routers: int, sample: int) -> dict[str, Any]:
    """(d)'s routers: two interfaces, a gateway and five floating IPs each; responders
    (namespaces holding the fixed IPs) for a sample of the floating IPs."""
    host = "network1"

    def one(i: int) -> dict[str, Any]:
        third = f"10.{100 + i // 250}.{i % 250}"
        cidrs = [f"{third}.0/25", f"{third}.128/25"]
        nets = [network(lab, f"r{i}-{j}", cidr, dhcp=False) for j, cidr in enumerate(cidrs)]
        router = lab.api_call("POST", "/v2.0/routers", {"router": {
            "name": f"r{i}", "external_gateway_info": {"network_id": ext_id}}})["router"]
        for _net, subnet in nets:
            lab.api_call("PUT", f"/v2.0/routers/{router['id']}/add_router_interface",
                         {"subnet_id": subnet})
        fips = []
        for k in range(5):
            net_id = nets[0 if k < 3 else 1][0]
            port = lab.api_call("POST", "/v2.0/ports", {"port": {
                "network_id": net_id, "binding:host_id": host}})["port"]
            fip = lab.api_call("POST", "/v2.0/floatingips", {"floatingip": {
                "floating_network_id": ext_id, "port_id": port["id"]}})["floatingip"]
            fips.append({"fip": fip["floating_ip_address"], "port": port, "net": net_id,
                         "gateway": cidrs[0 if k < 3 else 1].rsplit(".", 1)[0] +
                         (".1" if k < 3 else ".129")})
        return {"router": router["id"], "fips": fips}

    made = []
    with ThreadPoolExecutor(4) as pool:
        for done, item in enumerate(pool.map(one, range(routers)), start=1):
            made.append(item)
            if done % 25 == 0:
                progress(f"  created {done}/{routers} routers")
    everything = [f for r in made for f in r["fips"]]
    chosen = random.Random(7).sample(everything, min(sample, len(everything)))
    host_ns = lab.host_namespace(host)
    for n, f in enumerate(chosen):
        ns = f"{lab.name}-resp{n}"
        lab.remember_namespace(ns)
        kernel(host_ns).ensure_veth(tap_name(f["port"]["id"]), "eth0", ns)
        responder = kernel(ns)
        responder.ensure_link("eth0", up=True, mac=f["port"]["mac_address"])
        responder.ensure_addresses("eth0", [f"{f['port']['fixed_ips'][0]['ip_address']}/25"])
        responder.ensure_routes([Route("default", f["gateway"])])
    return {"routers": made, "sample": chosen}


def all_in_kernel(lab: Lab, made: dict[str, Any]) -> bool:
    """Every floating IP on its router's gateway device (read in each namespace)."""
    host_ns = lab.host_namespace("network1")
    names = netns.names()
    for router in made["routers"]:
        ns = f"{host_ns}-qrouter-{router['router']}"
        if ns not in names:
            return False
        held = _addresses(ns)
        if not {f"{f['fip']}/32" for f in router["fips"]} <= held:
            return False
    return True


def _addresses(ns: str) -> set[str]:
    result = netns.run(ns, ["ip", "-o", "-4", "addr", "show"])
    return {line.split()[3] for line in result.stdout.splitlines() if len(line.split()) > 3}


def cold_start(lab: Lab, made: dict[str, Any]) -> dict[str, Any]:
    """(d): kill the L3 agent, wipe its routers, start it; time to kernel and to packets."""
    lab.agent_stop("network1", "l3", sig=signal.SIGKILL)
    prefix = f"{lab.host_namespace('network1')}-qrouter-"
    for name in netns.names():
        if name.startswith(prefix):
            netns.remove(name)
    progress("  cold start: L3 agent killed, routers wiped; starting it")
    sample = [f["fip"] for f in made["sample"]]
    pinger = Pinger(lab.outside)
    started = time.monotonic()
    lab.agent_start("network1", "l3", wait=False)
    pid = lab.state["agents"]["network1/l3"]["pid"]
    answered: set[str] = set()
    sample_done = kernel_done = None
    while time.monotonic() - started < 300 and (sample_done is None or kernel_done is None):
        answered |= pinger.round(sorted(set(sample) - answered), 0.05)
        now = time.monotonic() - started
        if sample_done is None and answered >= set(sample):
            sample_done = now
        if kernel_done is None and all_in_kernel(lab, made):
            kernel_done = time.monotonic() - started
    pinger.close()
    return {"routers": len(made["routers"]),
            "floating_ips": sum(len(r["fips"]) for r in made["routers"]),
            "kernel_s": kernel_done, "sample": len(sample), "sample_s": sample_done,
            "agent_cpu_s": proc_cpu(pid)}


def failover(base: Path) -> dict[str, Any]:
    """(e): kill -9 of the L3 agent hosting a legacy router -> the VM reaches the internet
    again through the other network node."""
    lab = Lab("nbf", base, out=progress)
    topology = {**TOPOLOGY, "name": "l3-failover", "internet": "192.0.2.1/24",
                "outside_gateway": "203.0.113.1/16",
                "hosts": [{"name": "network1", "agents": ["l2", "dhcp", "l3"]},
                          {"name": "network2", "agents": ["l2", "dhcp", "l3"]},
                          {"name": "compute1", "agents": ["l2"]}]}
    try:
        lab.up(parse(topology))
        ext_id = external(lab)
        _times, made = interface_to_ping(lab, ext_id, 0)
        vm_ns = lab.vm_namespace("vm1")
        pinger = Pinger(vm_ns)
        until(lambda: pinger.round(["192.0.2.1"], 0.1), 60)
        [first] = {a["host"] for a in lab.api_get(
            f"/v2.0/routers/{made['router']['id']}/l3-agents")["agents"]}
        lab.agent_stop(first, "l3", sig=signal.SIGKILL)
        started = last_ok = time.monotonic()
        gap = 0.0
        moved_at = None
        url = f"/v2.0/routers/{made['router']['id']}/l3-agents"
        while time.monotonic() - started < 120:
            now = time.monotonic()
            if pinger.round(["192.0.2.1"], 0.1):
                gap, last_ok = max(gap, now - last_ok), now
                if moved_at is not None:
                    break
            else:
                time.sleep(0.1)
            if moved_at is None and {a["host"] for a in lab.api_get(url)["agents"]} - {first}:
                moved_at = time.monotonic() - started
        moved = sorted({a["host"] for a in lab.api_get(url)["agents"]})
        pinger.close()
        return {"seconds": time.monotonic() - started, "moved_s": moved_at, "gap_s": gap,
                "from": first, "to": moved}
    finally:
        lab.down()


def markdown(r: dict[str, Any], argv: list[str], started: datetime.datetime) -> str:
    """This benchmark's section of docs/benchmarks.md."""
    a, b, c, d = r["interface"], r["fip"], r["one_more"], r["cold"]

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    cold_s = max(d["kernel_s"] or 1e9, d["sample_s"] or 1e9)
    fo = r["failover"]
    moved = bool(fo["to"]) and fo["to"] != [fo["from"]]
    return "\n".join([
        BEGIN, "## Routers and floating IPs with real packets (`bench/l3.py`)", "",
        f"- Command: `{' '.join(['.venv/bin/python', 'bench/l3.py', *argv])}`",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}; Python {platform.python_version()}; commit {git_commit()}",
        "- A lab: `network1` (L2, DHCP, L3 agents) and `compute1` (L2), an external flat "
        "network on the outside namespace; legacy routers; SQLite.", "",
        "| measurement | result | goal | verdict |", "|---|---|---|---|",
        f"| (a) interface add -> the VM (on compute1) pings its gateway ({a['count']} tries) "
        f"| p50 {a['p50']:.0f} ms, p90 {a['p90']:.0f} ms, p99 {a['p99']:.0f} ms, max "
        f"{a['max']:.0f} ms | p99 <= {GOAL_P99_S * 1000:.0f} ms | "
        f"{verdict(a['p99'] <= GOAL_P99_S * 1000)} |",
        f"| (b) floating IP associate -> the outside pings it ({b['count']} tries) | p50 "
        f"{b['p50']:.0f} ms, p90 {b['p90']:.0f} ms, p99 {b['p99']:.0f} ms, max "
        f"{b['max']:.0f} ms | p99 <= {GOAL_P99_S * 1000:.0f} ms | "
        f"{verdict(b['p99'] <= GOAL_P99_S * 1000)} |",
        f"| (c) one floating IP more on a router with {c['floating_ips']} -> in the kernel "
        f"({c['count']} tries) | p50 {c['p50']:.0f} ms, p99 {c['p99']:.0f} ms, max "
        f"{c['max']:.0f} ms | <= {GOAL_ONE_MORE_MS:.0f} ms | "
        f"{verdict(c['p50'] <= GOAL_ONE_MORE_MS)} |",
        f"| (d) L3 agent cold start: {d['routers']} routers, {d['floating_ips']} floating IPs "
        f"| every floating IP in the kernel after {d['kernel_s']:.1f} s; a sample of "
        f"{d['sample']} answering the outside after {d['sample_s']:.1f} s (agent CPU "
        f"{d['agent_cpu_s']:.0f} s) | <= {GOAL_COLD_S:.0f} s | "
        f"{verdict(cold_s <= GOAL_COLD_S)} |",
        f"| (e) kill -9 of the L3 agent hosting a router -> rescheduled, the VM reaching the "
        f"internet through the new host | rescheduled after {fo['moved_s'] or 0:.1f} s, traffic "
        f"through {', '.join(fo['to'])} after {fo['seconds']:.1f} s; longest gap in the VM's "
        f"pings {fo['gap_s']:.1f} s | Neutron: no automatic failover by default | "
        f"{verdict(moved)} |",
        "",
        "How it is measured: (a) and (b) ping with ICMP every 10 ms (a raw socket in the VM "
        "or the outside namespace) from the API call on; (a) empties the VM's ARP cache "
        "before each try, (b) waits until the address stops answering between tries. (c) "
        "reads the gateway device's addresses and the NAT map element every 5 ms in the "
        "router's namespace. (d) kills the agent (SIGKILL), removes every router namespace, "
        "starts the agent, and reads each router namespace until every floating IP is on "
        "its gateway device, while pinging the sample; only a sample is pinged because the "
        "kernel's neighbour table (1,024 entries, shared by all namespaces) is the "
        "machine's setting.", "", END, ""])


def main(argv: list[str] | None = None) -> int:
    """Run all parts; print the figures; write them to docs/benchmarks.md."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=100)
    parser.add_argument("--routers", type=int, default=200)
    parser.add_argument("--big", type=int, default=1000, help="floating IPs on one router")
    parser.add_argument("--sample", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.tries, args.routers, args.big, args.sample = 10, 10, 50, 10
    if os.geteuid() != 0:
        print("bench/l3.py makes network namespaces: run it as root", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = datetime.datetime.now(datetime.UTC)
    base = open_tempdir("bench-l3-")
    lab = Lab("nbl", base, out=progress)
    results: dict[str, Any] = {}
    try:
        lab.up(parse(TOPOLOGY))
        ext_id = external(lab)
        progress(f"(a) interface add -> ping, {args.tries} tries")
        times, made = interface_to_ping(lab, ext_id, args.tries)
        results["interface"] = summary(times)
        progress(f"(b) floating IP associate -> ping, {args.tries} tries")
        results["fip"] = summary(fip_to_ping(lab, ext_id, made, args.tries))
        progress(f"(c) one floating IP more on a router with {args.big}")
        results["one_more"] = one_more_fip(lab, ext_id, args.big)
        progress(f"(d) cold start with {args.routers} routers")
        routers = build_routers(lab, ext_id, args.routers, args.sample)
        until(lambda: all_in_kernel(lab, routers), 600, 1.0)
        results["cold"] = cold_start(lab, routers)
        progress(f"results: {results}")
    finally:
        lab.down()
    progress("(e) failover of a legacy router")
    results["failover"] = failover(base)
    publish(results, markdown(results, argv, started), BEGIN, END, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
