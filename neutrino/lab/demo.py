"""Seed scenarios run end to end in a lab, printed the way the seeds show them.

Every step is checked as it runs (`Demo.expect`), so a demo that ends well has shown what it
printed; the record of checks and leases is returned for tests to assert on.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neutrino.lab import topology
from neutrino.lab.lab import Lab, LabError, Lease
from neutrino.registry import DHCP


class DemoFailure(AssertionError):
    """A step did not do what the seed says it does."""


@dataclass
class Record:
    """What a demo checked and the leases it saw."""

    checks: list[tuple[str, bool]] = field(default_factory=list)
    leases: dict[str, Lease] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


class Demo:
    """Printing, the client, and checks for one scenario in one lab."""

    def __init__(self, lab: Lab, out: Callable[[str], None] = print) -> None:
        self.lab = lab
        self.out = out
        self.record = Record()

    def say(self, text: str) -> None:
        """Narration between commands."""
        self.out(f"\n# {text}")

    def openstack(self, *args: str, user: str = "admin") -> str:
        """Run the real client (as the lab's admin, or the demo project's user), print the
        command and its output; its stdout."""
        cloud = "" if user == "admin" else f"--os-cloud {self.lab.name}-{user} "
        self.out(f"$ openstack {cloud}{' '.join(args)}")
        result = subprocess.run(self.lab.openstack_argv(args),
                                env=self.lab.openstack_env(user),
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise DemoFailure(f"openstack {' '.join(args)} failed: {result.stderr.strip()}")
        if result.stdout.strip():
            self.out(result.stdout.rstrip("\n"))
        return result.stdout

    def expect(self, ok: bool, what: str) -> None:
        """Record a check; a failed one stops the demo."""
        self.record.checks.append((what, ok))
        self.out(f"  [{'ok' if ok else 'FAILED'}] {what}")
        if not ok:
            raise DemoFailure(what)

    def wait(self, predicate: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        """Poll until `predicate` returns something true; a failed check after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value or time.monotonic() > deadline:
                self.expect(bool(value), what)
                return value
            time.sleep(0.25)

    # -- reading the server ---------------------------------------------------------------

    def agents(self, **filters: Any) -> list[dict[str, Any]]:
        """Agents, as the API lists them."""
        return list(self.lab.api_get("/v2.0/agents", **filters)["agents"])

    def dhcp_agent(self, host: str) -> dict[str, Any] | None:
        """A host's DHCP agent, if registered."""
        found = self.agents(host=host, agent_type=DHCP.agent_type)
        return found[0] if found else None

    def network_id(self, name: str) -> str:
        """A network's id by name."""
        return str(self.lab.api_get("/v2.0/networks", name=name)["networks"][0]["id"])

    def dhcp(self, vm: str, label: str) -> Lease:
        """Run the VM's DHCP client, print the outcome, keep it in the record."""
        self.out(f"$ neutrino lab vm dhcp {vm}")
        lease = self.lab.vm_dhcp(vm)
        self.out(str(lease))
        self.record.leases[label] = lease
        return lease

    def hosted_by(self, host: str) -> set[str]:
        """Networks the host's DHCP agent hosts."""
        agent = self.dhcp_agent(host)
        if agent is None:
            return set()
        path = f"/v2.0/agents/{agent['id']}/dhcp-networks"
        return {n["id"] for n in self.lab.api_get(path)["networks"]}

    def served_by(self, host: str, network_id: str) -> bool:
        """Whether a dnsmasq of the host's DHCP agent serves the network."""
        return network_id in self.lab.dnsmasq_pids(host)


def dhcp_ha(demo: Demo) -> Record:
    """Seed 000: agents, the DHCP scheduler, and DHCP high availability with real leases."""
    lab = demo.lab
    hosts = [h.name for h in lab.topology.hosts]
    demo.say("Every agent registers itself with the server when it starts.")
    demo.openstack("network", "agent", "list")
    demo.expect(len([a for a in demo.agents() if a["alive"]]) == 2 * len(hosts),
                f"{2 * len(hosts)} agents alive: a Linux bridge and a DHCP agent per host")

    demo.say("Settings: a network net1 with three VMs.")
    demo.openstack("network", "create", "net1", "-f", "value", "-c", "id")
    demo.openstack("subnet", "create", "--network", "net1", "--subnet-range", "10.0.1.0/24",
                   "subnet1", "-f", "value", "-c", "id")
    for index in range(1, 4):
        lab.vm_boot(f"myserver{index}", "net1", hosts[(index - 1) % len(hosts)])
    demo.openstack("network", "list")
    net1 = demo.network_id("net1")

    demo.say("List the DHCP agents that host net1.")
    demo.openstack("network", "agent", "list", "--network", "net1")
    first = demo.wait(lambda: demo.lab.dhcp_hosts(net1), "net1 is scheduled onto one DHCP agent")
    demo.expect(len(first) == 1, f"exactly one DHCP agent hosts net1 ({', '.join(first)})")
    agent = demo.dhcp_agent(next(iter(first)))
    assert agent is not None
    demo.say("List the networks hosted by that DHCP agent.")
    demo.openstack("network", "list", "--agent", agent["id"])
    demo.wait(lambda: (demo.dhcp_agent(agent["host"]) or {}).get(
        "configurations", {}).get("networks", 0) >= 1,
        "the agent reports the network it serves in its configurations")
    demo.say("The VMs on net1 ask for their addresses (some across the VXLAN underlay).")
    for index in range(1, 4):
        name = f"myserver{index}"
        lease = demo.wait(lambda n=name: demo.dhcp(n, n).ip_address,  # type: ignore[misc]
                          f"{name} gets a lease", timeout=30)
        got = demo.record.leases[name]
        demo.expect(lease == lab.vm(name)["ip_address"]
                    and got.server_host == agent["host"],
                    f"{name} on {lab.vm(name)['host']} gets its port's fixed IP {lease} from "
                    f"{agent['host']}'s DHCP port")
    demo.say("Show the DHCP agent's details, then a Linux bridge agent's.")
    demo.openstack("network", "agent", "show", agent["id"])
    l2 = demo.agents(host=hosts[-1], agent_type="Linux bridge agent")[0]
    demo.openstack("network", "agent", "show", l2["id"])

    demo.say("Default scheduling: a new network with a subnet and a port gets one agent.")
    demo.openstack("network", "create", "net2", "-f", "value", "-c", "id")
    demo.openstack("subnet", "create", "--network", "net2", "--subnet-range", "9.0.1.0/24",
                   "subnet2", "-f", "value", "-c", "id")
    demo.openstack("port", "create", "--network", "net2", "port1", "-f", "value", "-c", "id")
    net2 = demo.network_id("net2")
    scheduled = demo.wait(lambda: demo.lab.dhcp_hosts(net2), "net2 is scheduled onto a DHCP agent")
    demo.openstack("network", "agent", "list", "--network", "net2")
    demo.expect(len(scheduled) == 1, f"net2 is allocated to one agent ({', '.join(scheduled)})")
    one = next(iter(scheduled))
    other = next(h for h in hosts if h != one)
    agent_one, agent_other = demo.dhcp_agent(one), demo.dhcp_agent(other)
    assert agent_one is not None and agent_other is not None

    demo.say(f"Add {other}'s DHCP agent to net2.")
    demo.openstack("network", "agent", "add", "network", "--dhcp", agent_other["id"], "net2")
    demo.openstack("network", "agent", "list", "--network", "net2")
    demo.expect(demo.lab.dhcp_hosts(net2) == {one, other}, "both DHCP agents host net2")

    demo.say(f"Remove net2 from {one}'s DHCP agent.")
    demo.openstack("network", "agent", "remove", "network", "--dhcp", agent_one["id"], "net2")
    demo.openstack("network", "agent", "list", "--network", "net2")
    demo.expect(demo.lab.dhcp_hosts(net2) == {other}, f"only {other}'s agent hosts net2")

    demo.say("HA of DHCP agents: let both agents host net2 and boot a VM on it.")
    demo.openstack("network", "agent", "add", "network", "--dhcp", agent_one["id"], "net2")
    demo.openstack("network", "agent", "list", "--network", "net2")
    demo.expect(demo.lab.dhcp_hosts(net2) == {one, other}, "both DHCP agents host net2")
    vm = lab.vm_boot("myserver4", "net2", hosts[0])
    demo.wait(lambda: all(demo.served_by(h, net2) for h in (one, other)),
              "dnsmasq serves net2 on both hosts")
    port_ip = vm["ip_address"]

    demo.say("Log in to myserver4 and run udhcpc.")
    lease = demo.wait(lambda: demo.dhcp("myserver4", "both").ip_address,
                      "the VM gets a lease", timeout=30)
    lease = demo.record.leases["both"]
    demo.expect(lease.ip_address == port_ip, f"the lease is the port's fixed IP {port_ip}")
    demo.expect(lease.server_host in (one, other), f"the lease came from {lease.server_host}")

    demo.say(f"Stop the DHCP agent on {hosts[0]}, and its dnsmasq processes.")
    lab.agent_stop(hosts[0], "dhcp", with_dnsmasq=True)
    survivor = hosts[1]
    lease = demo.dhcp("myserver4", "first-stopped")
    demo.expect(lease.ip_address == port_ip, f"the VM still gets {port_ip}")
    demo.expect(lease.server_host == survivor, f"from {survivor}'s DHCP port")

    demo.say(f"Stop the DHCP agent on {survivor} too (with its dnsmasq).")
    lab.agent_stop(survivor, "dhcp", with_dnsmasq=True)
    lease = demo.dhcp("myserver4", "both-stopped")
    demo.expect(lease.ip_address is None, "the VM cannot get an IP")

    demo.say(f"Start the DHCP agent on {survivor}.")
    lab.agent_start(survivor, "dhcp")
    demo.wait(lambda: demo.served_by(survivor, net2), f"{survivor} serves net2 again")
    lease = demo.wait(lambda: demo.dhcp("myserver4", "restarted").ip_address,
                      "the VM gets a lease again", timeout=30)
    lease = demo.record.leases["restarted"]
    demo.expect(lease.ip_address == port_ip, f"the VM gets {port_ip} again")
    demo.expect(lease.server_host == survivor, f"from {survivor}'s DHCP port")

    demo.say(f"Disable and remove an agent: the DHCP agent on {hosts[0]} (stopped).")
    gone = demo.dhcp_agent(hosts[0])
    assert gone is not None
    demo.openstack("network", "agent", "set", "--disable", gone["id"])
    demo.openstack("network", "agent", "list")
    demo.expect(demo.dhcp_agent(hosts[0])["admin_state_up"] is False,  # type: ignore[index]
                f"{hosts[0]}'s DHCP agent is disabled")
    demo.openstack("network", "agent", "delete", gone["id"])
    demo.openstack("network", "agent", "list")
    demo.expect(demo.dhcp_agent(hosts[0]) is None, f"{hosts[0]}'s DHCP agent is gone")

    demo.say(f"Restart the DHCP agent on {hosts[0]}: it appears on the agent list again.")
    lab.agent_start(hosts[0], "dhcp")
    demo.openstack("network", "agent", "list")
    back = demo.dhcp_agent(hosts[0])
    demo.expect(back is not None and back["alive"] and back["id"] != gone["id"],
                f"{hosts[0]}'s DHCP agent is back, alive, as a new agent")
    demo.wait(lambda: lab.dhcp_namespaces(hosts[0]) <= demo.hosted_by(hosts[0]),
              f"{hosts[0]} removed the DHCP namespace of every network it no longer hosts")
    demo.record.facts.update(net2=net2, port_ip=port_ip, first=one, other=other)
    return demo.record


def _scenarios() -> dict[str, Callable[[Demo], Record]]:
    from neutrino.lab.demo_l3_ha import l3_ha
    from neutrino.lab.demo_router import router

    return {"dhcp-ha": dhcp_ha, "router": router, "l3-ha": l3_ha}


SCENARIOS: dict[str, Callable[[Demo], Record]] = _scenarios()
TOPOLOGIES = {"dhcp-ha": "seed-000", "router": "seed-004", "l3-ha": "seed-003"}


def run(scenario: str, lab: Lab, out: Callable[[str], None] = print) -> Record:
    """Build the scenario's lab, run it, and always remove the lab afterwards."""
    lab.up(topology.load(TOPOLOGIES[scenario]))
    try:
        return SCENARIOS[scenario](Demo(lab, out))
    finally:
        lab.down()


def main(scenario: str, name: str, base: Path | None, keep: bool = False) -> int:
    """`neutrino lab demo SCENARIO`: 0 when every step did what the seed says."""
    lab = Lab(name, base)
    if lab.state:
        raise LabError(f"lab {name} is up; `neutrino lab --lab {name} down` first, or pick "
                       "another name with --lab")
    try:
        if keep:  # the lab stays up afterwards, for a look around
            lab.up(topology.load(TOPOLOGIES[scenario]))
            SCENARIOS[scenario](Demo(lab))
        else:
            run(scenario, lab)
    except DemoFailure as err:
        print(f"\nDemo {scenario} FAILED: {err}", file=sys.stderr)
        return 1
    print(f"\nDemo {scenario}: every step did what the seed says.")
    return 0
