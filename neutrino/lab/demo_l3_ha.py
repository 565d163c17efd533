"""HA routers with VRRP on seed 003's hosts (`neutrino lab demo l3-ha`): a router on
network1 and network2, a VM with a floating IP on compute1, a ping and a TCP connection from
outside kept running while the serving node fails in two ways; the gaps and the
connection's fate are printed, and the node that comes back does not take the router back.
"""

from __future__ import annotations

import json
import signal
import time
from typing import TYPE_CHECKING, Any

from neutrino.lab import probes
from neutrino.lab.demo_router import external_network

if TYPE_CHECKING:
    from neutrino.lab.demo import Demo, Record

DEMO_CIDR = "192.168.1.0/24"
NODES = ("network1", "network2")


def l3_ha(demo: Demo) -> Record:
    """Seed 003's HA router, and its failovers with real packets."""
    lab = demo.lab
    router_id, vm_ns, address, active = build(demo)
    facts: dict[str, Any] = {"router": router_id, "floating_ip": address}
    for fault in ("agent-and-keepalived", "link"):
        active = _failover(demo, router_id, vm_ns, address, active, fault, facts)
    demo.record.facts.update(facts)

    demo.say("Delete everything.")
    lab.vm_delete("demo-instance1")
    demo.openstack("floating", "ip", "delete", address, user="demo")
    demo.openstack("router", "unset", "--external-gateway", "demo-router", user="demo")
    demo.openstack("router", "remove", "subnet", "demo-router", "demo-subnet", user="demo")
    demo.openstack("router", "delete", "demo-router", user="demo")
    for host in NODES:
        demo.wait(lambda h=host: f"qrouter-{router_id}" not in lab.host_netns(h)  # type: ignore[misc]
                  and not lab.keepalived_pids(h), f"{host} has no router namespace and no "
                  "keepalived left", timeout=30)
    return demo.record


def build(demo: Demo) -> tuple[str, str, str, str]:
    """The networks, the HA router (one active node), a VM with a floating IP that answers
    from outside: the router's id, the VM's namespace, the floating IP, the active node."""
    lab = demo.lab
    demo.say("Verify the agents: L3, DHCP and Linux bridge agents on network1 and network2, "
             "Linux bridge agents on the computes.")
    demo.openstack("network", "agent", "list")
    alive = {(a["agent_type"], a["host"]) for a in demo.agents() if a["alive"]}
    demo.expect({("L3 agent", "network1"), ("L3 agent", "network2")} <= alive,
                "network1 and network2 run L3 agents")

    demo.say("The external network and, as the demo project, its network, subnet and "
             "router: with l3_ha = True (the seed's neutron.conf) every router is HA.")
    external_network(demo)
    demo.openstack("network", "create", "demo-net", "-f", "value", "-c", "id", user="demo")
    demo.openstack("subnet", "create", "demo-subnet", "--network", "demo-net",
                   "--subnet-range", DEMO_CIDR, "--gateway", "192.168.1.1", "-f", "value",
                   "-c", "id", user="demo")
    demo.openstack("router", "create", "demo-router", "-f", "value", "-c", "id", user="demo")
    demo.openstack("router", "add", "subnet", "demo-router", "demo-subnet", user="demo")
    demo.openstack("router", "set", "demo-router", "--external-gateway", "ext-net",
                   user="demo")
    shown = json.loads(demo.openstack("router", "show", "demo-router", "-f", "json"))
    router_id = shown["id"]
    demo.expect(shown["ha"] is True, "the admin sees demo-router as an HA router")

    demo.say("One router on both network nodes: one active, one standby.")
    seen = demo.wait(lambda: _one_active(demo), "one L3 agent active, the other standby")
    demo.openstack("network", "agent", "list", "--router", "demo-router", "--long")
    active = next(host for host, state in seen.items() if state == "active")
    standby = next(host for host in NODES if host != active)
    for host in NODES:
        demo.expect(f"qrouter-{router_id}" in lab.host_netns(host),
                    f"{host} has the qrouter-{router_id} namespace")
    demo.expect(bool(lab.keepalived_pids(active).get(router_id))
                and bool(lab.keepalived_pids(standby).get(router_id)),
                "keepalived runs for the router on both nodes")

    demo.say("A VM on compute1 with a floating IP; its security group lets in ping and TCP.")
    vm = lab.vm_boot("demo-instance1", "demo-net", "compute1")
    vm_ns = lab.vm_namespace("demo-instance1")
    demo.wait(lambda: demo.dhcp("demo-instance1", "vm").ip_address, "the VM gets its lease",
              timeout=60)
    for rule in (["--protocol", "icmp"], ["--protocol", "tcp", "--dst-port", "5001"]):
        demo.openstack("security", "group", "rule", "create", *rule, "default", "-f", "value",
                       "-c", "id", user="demo")
    fip = json.loads(demo.openstack("floating", "ip", "create", "ext-net", "-f", "json",
                                    user="demo"))
    address = fip["floating_ip_address"]
    demo.openstack("floating", "ip", "set", "--port", vm["port_id"], address, user="demo")
    demo.wait(lambda: probes.ping(lab.outside, address), f"{address} answers from outside",
              timeout=60)
    demo.record.facts["router"] = router_id
    return router_id, vm_ns, address, active


def _failover(demo: Demo, router_id: str, vm_ns: str, address: str, active: str,
              fault: str, facts: dict[str, Any]) -> str:
    """Fail the active node one way while the flows run; check the other takes over and
    the failed node comes back as standby. The new active node."""
    lab = demo.lab
    other = next(host for host in NODES if host != active)
    flows = probes.Flows(vm_ns, lab.outside, address).start()
    time.sleep(1)
    if fault == "link":
        demo.say(f"Cut {active}'s underlay and external links.")
        demo.out(f"$ neutrino lab host link down {active}")
        lab.host_link(active, up=False)
    else:
        demo.say(f"Kill {active}'s L3 agent and its keepalived (kill -9).")
        demo.out(f"$ neutrino lab agent kill {active} l3 --with-keepalived")
        lab.agent_stop(active, "l3", sig=signal.SIGKILL, with_keepalived=True)
    demo.wait(lambda: probes.ping(lab.outside, address, wait=0.5),
              f"{address} answers again, through {other}", timeout=30)
    time.sleep(1)
    report = flows.stop()
    demo.out(f"{fault}: {report}")
    facts[fault] = report
    demo.expect(report.ping_gap < 5, f"the ping's longest gap: {report.ping_gap:.2f} s")
    demo.out(f"the TCP connection {'survived' if report.tcp_survived else 'broke'} "
             f"({report.tcp_gap:.2f} s without an echo)")
    demo.wait(lambda: states(demo).get(other) == "active",
              f"{other}'s L3 agent reports the router active", timeout=30)
    demo.openstack("network", "agent", "list", "--router", "demo-router", "--long")

    if fault == "link":
        # Cut off, the node heard no adverts and made itself primary too: VRRP settles the
        # two once their adverts meet again (the higher HA address wins a tie).
        demo.say(f"Heal {active}'s links: VRRP leaves exactly one primary.")
        demo.out(f"$ neutrino lab host link up {active}")
        lab.host_link(active, up=True)
        seen = demo.wait(lambda: _one_active(demo), "one L3 agent active, the other "
                         "standby", timeout=30)
        demo.openstack("network", "agent", "list", "--router", "demo-router", "--long")
        winner = next(host for host, state in seen.items() if state == "active")
        demo.wait(lambda: probes.ping(lab.outside, address), f"{address} answers through "
                  f"{winner}", timeout=30)
        return winner
    demo.say(f"{active} comes back; it does not take the router back (nopreempt).")
    demo.out(f"$ neutrino lab agent start {active} l3")
    lab.agent_start(active, "l3")
    demo.wait(lambda: states(demo) == {other: "active", active: "standby"},
              f"{other} active, {active} standby", timeout=60)
    time.sleep(2)
    demo.openstack("network", "agent", "list", "--router", "demo-router", "--long")
    demo.expect(states(demo) == {other: "active", active: "standby"},
                f"two seconds later {other} still serves the router")
    demo.expect(probes.ping(lab.outside, address), f"{address} still answers")
    return other


def states(demo: Demo, router_id: str | None = None) -> dict[str, str]:
    """host -> ha_state of the router's L3 agents, as the API (and the CLI's HA State
    column) shows them."""
    router_id = router_id or demo.record.facts.get("router") or _router_id(demo)
    agents = demo.lab.api_get(f"/v2.0/routers/{router_id}/l3-agents")["agents"]
    return {a["host"]: a["ha_state"] for a in agents}


def _router_id(demo: Demo) -> str:
    found = demo.lab.api_get("/v2.0/routers", name="demo-router")["routers"]
    demo.record.facts["router"] = found[0]["id"]
    return str(found[0]["id"])


def _one_active(demo: Demo) -> dict[str, str] | None:
    found = states(demo)
    if sorted(found.values()) == ["active", "standby"]:
        return found
    time.sleep(0.25)
    return None
