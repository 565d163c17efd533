"""Seed 004 with a centralized router: "create initial networks" and "verify network
operation", every step checked with real packets (`neutrino lab demo router`)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from neutrino.lab import probes

if TYPE_CHECKING:
    from neutrino.lab.demo import Demo, Record

EXT_CIDR, POOL = "203.0.113.0/24", ("203.0.113.101", "203.0.113.200")
DEMO_CIDR = "192.168.1.0/24"
INTERNET = "192.0.2.1"


def router(demo: Demo) -> Record:
    """Seed 004's north-south story on a legacy router in network1."""
    lab = demo.lab
    demo.say("Verify the presence and operation of the agents.")
    demo.openstack("network", "agent", "list")
    alive = {(a["agent_type"], a["host"]) for a in demo.agents() if a["alive"]}
    demo.expect({("L3 agent", "network1"), ("DHCP agent", "network1"),
                 ("Linux bridge agent", "compute1")} <= alive,
                "network1 runs the L3 and DHCP agents; the hosts their Linux bridge agents")

    demo.say("Create the external network (flat, on the physical network 'external').")
    external_network(demo)

    demo.say("With the demo project's credentials: its VXLAN network (project networks are "
             "VXLAN here; the seed's admin `--tenant-id` needs Keystone to name the project), "
             "its subnet, a router, an interface and the gateway.")
    demo.openstack("network", "create", "demo-net", "-f", "value", "-c", "id", user="demo")
    shown = json.loads(demo.openstack("network", "show", "demo-net", "-f", "json"))
    demo.expect(shown["provider:network_type"] == "vxlan"
                and shown["project_id"] == lab.demo_project,
                "demo-net is a VXLAN network of the demo project")
    demo.openstack("subnet", "create", "demo-subnet", "--network", "demo-net",
                   "--subnet-range", DEMO_CIDR, "--gateway", "192.168.1.1", "-f", "value",
                   "-c", "id", user="demo")
    demo.openstack("router", "create", "demo-router", user="demo")
    demo.openstack("router", "add", "subnet", "demo-router", "demo-subnet", user="demo")
    demo.openstack("router", "set", "demo-router", "--external-gateway", "ext-net",
                   user="demo")
    router_id = json.loads(demo.openstack("router", "show", "demo-router", "-f", "json",
                                          user="demo"))["id"]

    demo.say("On network1, the qrouter and qdhcp namespaces.")
    demo.out("$ neutrino lab host netns network1")
    spaces = demo.wait(lambda: _namespaces(demo, "network1", router_id),
                       "network1 has qrouter-<router> and a qdhcp- namespace")
    demo.out("\n".join(spaces))

    demo.say("The router's gateway IP: the lowest address of the external pool.")
    ports = json.loads(demo.openstack("port", "list", "--router", "demo-router", "-f",
                                      "json"))
    gateway = next((ip["ip_address"] for p in ports for ip in _fixed(p)
                    if ip["ip_address"].startswith("203.0.113.")), None)
    demo.expect(gateway == POOL[0], f"the gateway port has {POOL[0]} ({gateway})")
    demo.out(f"$ neutrino lab outside exec -- ping -c 4 {gateway}")
    demo.wait(lambda: probes.ping(lab.outside, POOL[0]),
              f"{POOL[0]} answers ping from the external network", timeout=30)

    demo.say("Launch an instance on compute1 in demo-net; from its console, ping the "
             "router and the internet.")
    vm = lab.vm_boot("demo-instance1", "demo-net", "compute1")
    vm_ns = lab.vm_namespace("demo-instance1")
    lease = demo.wait(lambda: demo.dhcp("demo-instance1", "vm").ip_address,
                      "the instance gets its lease", timeout=60)
    demo.expect(lease == vm["ip_address"], f"its lease is its port's fixed IP {lease}")
    demo.out("$ neutrino lab vm exec demo-instance1 -- ping -c 4 192.168.1.1")
    demo.wait(lambda: probes.ping(vm_ns, "192.168.1.1"), "the instance pings 192.168.1.1",
              timeout=30)
    demo.out(f"$ neutrino lab vm exec demo-instance1 -- ping -c 4 {INTERNET}")
    demo.wait(lambda: probes.ping(vm_ns, INTERNET),
              f"the instance pings the internet ({INTERNET}) through the router's SNAT",
              timeout=30)
    snat = probes.tcp(lab.internet, vm_ns, INTERNET, 8080)
    demo.out(f"TCP from the instance to {INTERNET}:8080: {snat}")
    demo.expect(snat.ok and snat.server_peer == POOL[0],
                f"without a floating IP, its connections leave as the gateway {POOL[0]}")

    demo.say("Step 9: security group rules to allow ping and SSH to the instance. Until "
             "then its project's default group lets in only its own members: not even its "
             "router reaches it.")
    router_ns = f"{lab.host_namespace('network1')}-qrouter-{router_id}"
    demo.out(f"$ neutrino lab host exec network1 -- ip netns exec qrouter-{router_id} "
             f"ping -c 2 {vm['ip_address']}")
    demo.expect(not probes.ping(router_ns, vm["ip_address"], count=2),
                "without a rule, pings to the instance go unanswered")
    blocked = probes.tcp(vm_ns, router_ns, vm["ip_address"], 22, timeout=2)
    demo.expect(not blocked.ok, "and so do connections to its port 22")
    demo.openstack("security", "group", "rule", "create", "--protocol", "icmp", "default",
                   "-f", "value", "-c", "id", user="demo")
    demo.openstack("security", "group", "rule", "create", "--protocol", "tcp",
                   "--dst-port", "22", "default", "-f", "value", "-c", "id", user="demo")
    rules = json.loads(demo.openstack("security", "group", "rule", "list", "default",
                                      "-f", "json", user="demo"))
    demo.out("\n".join(f"{r.get('IP Protocol')} {r.get('Port Range')} "
                        f"{r.get('IP Range') or r.get('Remote Security Group') or ''} "
                        f"{r.get('Direction')}" for r in rules))
    demo.wait(lambda: probes.ping(router_ns, vm["ip_address"]),
              "with the ICMP rule, the router pings the instance", timeout=15)
    demo.wait(lambda: probes.tcp(vm_ns, router_ns, vm["ip_address"], 22, timeout=2).ok,
              "with the TCP 22 rule, a connection to its port 22 is accepted", timeout=15)

    demo.say("Create a floating IP on the external network and associate it.")
    fip = json.loads(demo.openstack("floating", "ip", "create", "ext-net", "-f", "json",
                                    user="demo"))
    address = fip["floating_ip_address"]
    demo.expect(fip["status"] == "DOWN" and not fip["port_id"],
                f"{address} is created DOWN, not associated")
    demo.openstack("floating", "ip", "set", "--port", vm["port_id"], address, user="demo")
    demo.wait(lambda: json.loads(demo.openstack("floating", "ip", "show", address, "-f",
                                                "json", user="demo"))["status"] == "ACTIVE",
              f"{address} turns ACTIVE once the L3 agent has it in the kernel")
    demo.out("$ neutrino lab vm list")
    listed = lab.vm_addresses("demo-instance1")
    demo.out(listed)
    demo.expect(listed == f"demo-net={vm['ip_address']}, {address}",
                "the instance's addresses read as nova list shows them")

    demo.say("From the external network, ping the floating IP; connect to the instance.")
    demo.out(f"$ neutrino lab outside exec -- ping -c 4 {address}")
    demo.wait(lambda: probes.ping(lab.outside, address), f"{address} answers from outside",
              timeout=30)
    inbound = probes.tcp(vm_ns, lab.outside, address, 22)
    demo.out(f"TCP from outside to {address}:22: {inbound}")
    demo.expect(inbound.ok and inbound.server_local == vm["ip_address"],
                "a connection to the floating IP reaches the instance (DNAT to its fixed IP)")
    outbound = probes.tcp(lab.internet, vm_ns, INTERNET, 8080)
    demo.out(f"TCP from the instance to {INTERNET}:8080: {outbound}")
    demo.expect(outbound.ok and outbound.server_peer == address,
                f"the instance's own connections leave with the floating IP {address}")

    demo.say("Remove the ICMP rule: the outside's pings stop; add it again: they pass.")
    icmp_rule = next(r["ID"] for r in json.loads(demo.openstack(
        "security", "group", "rule", "list", "default", "--protocol", "icmp", "-f", "json",
        user="demo")))
    demo.openstack("security", "group", "rule", "delete", icmp_rule, user="demo")
    demo.wait(lambda: not probes.ping(lab.outside, address),
              f"{address} no longer answers pings from outside", timeout=15)
    demo.openstack("security", "group", "rule", "create", "--protocol", "icmp", "default",
                   "-f", "value", "-c", "id", user="demo")
    demo.wait(lambda: probes.ping(lab.outside, address),
              f"{address} answers from outside again", timeout=15)

    demo.say("Disassociate the floating IP: it stops answering.")
    demo.openstack("floating", "ip", "unset", "--port", address, user="demo")
    demo.wait(lambda: not probes.ping(lab.outside, address),
              f"{address} no longer answers from outside", timeout=15)

    demo.say("Delete everything: no namespace stays behind.")
    lab.vm_delete("demo-instance1")
    demo.openstack("floating", "ip", "delete", address, user="demo")
    demo.openstack("router", "unset", "--external-gateway", "demo-router", user="demo")
    demo.openstack("router", "remove", "subnet", "demo-router", "demo-subnet", user="demo")
    demo.openstack("router", "delete", "demo-router", user="demo")
    demo.openstack("subnet", "delete", "demo-subnet", user="demo")
    demo.openstack("network", "delete", "demo-net", user="demo")
    demo.openstack("subnet", "delete", "ext-subnet")
    demo.openstack("network", "delete", "ext-net")
    demo.out("$ neutrino lab host netns network1")
    demo.wait(lambda: not lab.host_netns("network1"),
              "network1 has no qrouter- or qdhcp- namespace left", timeout=30)
    demo.record.facts.update(router=router_id, gateway=gateway, floating_ip=address,
                             fixed_ip=vm["ip_address"], inbound=inbound, outbound=outbound,
                             snat=snat)
    return demo.record


def external_network(demo: Demo) -> None:
    """Seed 004's `ext-net` (flat, on 'external') and its subnet, through the CLI."""
    demo.openstack("network", "create", "ext-net", "--external", "--provider-network-type",
                   "flat", "--provider-physical-network", "external", "-f", "value",
                   "-c", "id")
    demo.openstack("subnet", "create", "ext-subnet", "--network", "ext-net",
                   "--subnet-range", EXT_CIDR, "--allocation-pool",
                   f"start={POOL[0]},end={POOL[1]}", "--no-dhcp", "--gateway", "203.0.113.1",
                   "-f", "value", "-c", "id")


def _fixed(port: dict[str, object]) -> list[dict[str, str]]:
    """A port's fixed IPs from `openstack port list -f json` (a list of dicts)."""
    value = port.get("Fixed IP Addresses") or port.get("fixed_ips") or []
    return list(value) if isinstance(value, list) else []


def _namespaces(demo: Demo, host: str, router_id: str) -> list[str] | None:
    spaces = demo.lab.host_netns(host)
    has_router = f"qrouter-{router_id}" in spaces
    has_dhcp = any(s.startswith("qdhcp-") for s in spaces)
    if has_router and has_dhcp:
        return spaces
    time.sleep(0.25)
    return None
