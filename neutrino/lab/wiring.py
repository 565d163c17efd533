"""The lab's namespaces and wires: hosts, the underlay between them, the outside world.

Everything is made with the shared Linux layer (`agent.linux.netns` and `Kernel`), always
by name and in namespaces the lab made; every veth pair is created with both ends directly
in their namespaces, so nothing the lab makes ever appears in (or moves out of) the root
namespace, and no lab namespace has a path to it.
"""

from __future__ import annotations

import netaddr

from neutrino.agent.linux import netns
from neutrino.agent.linux.kernel import Kernel, Route
from neutrino.lab.base import LabBase
from neutrino.lab.topology import Topology

UNDERLAY = "172.30.0.{}/24"
# The outside world's link to the "internet" behind it.
INTERNET_LINK = ("100.64.0.1/30", "100.64.0.2/30")


def kernel(namespace: str) -> Kernel:
    """The lab's own view of one of its namespaces: every link there is the lab's."""
    return Kernel(namespace, owned=True)


def wire(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair made directly in both namespaces, both ends up (kept if it exists)."""
    kernel(ns_a).ensure_veth(name_a, name_b, ns_b)
    kernel(ns_a).ensure_link(name_a, up=True)
    kernel(ns_b).ensure_link(name_b, up=True)


def bridge(namespace: str, name: str, ports: tuple[str, ...] = ()) -> None:
    """A bridge in a namespace with these ports, all up."""
    k = kernel(namespace)
    k.ensure_bridge(name)
    for port in ports:
        k.ensure_in_bridge(port, name)


class Wiring(LabBase):
    """Namespaces and wires."""

    @property
    def underlay(self) -> str:
        """The namespace joining the hosts' tunnel interfaces."""
        return f"{self.name}-underlay"

    @property
    def outside(self) -> str:
        """The namespace standing for the world outside the cloud (flat uplinks)."""
        return f"{self.name}-outside"

    @property
    def internet(self) -> str:
        """The namespace standing for the internet behind the outside world."""
        return f"{self.name}-internet"

    def tunnel_address(self, host: str) -> str:
        """A host's tunnel endpoint (VXLAN local_ip) with its prefix."""
        index = [h.name for h in self.topology.hosts].index(host) + 1
        return UNDERLAY.format(10 + index)

    def remember_namespace(self, name: str) -> None:
        """Make a namespace that `down` removes with the lab."""
        netns.create(name)
        if name not in self.state["namespaces"]:
            self.state["namespaces"].append(name)
            self.save()

    def wire_up(self, topology: Topology) -> None:
        """Underlay and outside namespaces, and each host's namespace wired to both."""
        self.remember_namespace(self.underlay)
        self.remember_namespace(self.outside)
        bridge(self.underlay, "ul-br")
        bridge(self.outside, "ext-br")
        for index, host in enumerate(topology.hosts, start=1):
            ns = self.host_namespace(host.name)
            self.remember_namespace(ns)
            wire(ns, "ul0", self.underlay, f"ul-{index}")
            bridge(self.underlay, "ul-br", (f"ul-{index}",))
            kernel(ns).ensure_addresses("ul0", [UNDERLAY.format(10 + index)])
            wire(ns, "ext0", self.outside, f"ext-{index}")
            bridge(self.outside, "ext-br", (f"ext-{index}",))
            self.out(f"Host {host.name}: namespace {ns}, tunnel address "
                     f"{UNDERLAY.format(10 + index)}, agents {', '.join(host.agents)}")
        if topology.outside_gateway:
            self.wire_outside(topology)

    def wire_outside(self, topology: Topology) -> None:
        """The outside world's address on the external network, and the internet behind it
        (routed by the outside namespace, as an upstream router would)."""
        outside = kernel(self.outside)
        outside.ensure_addresses("ext-br", [topology.outside_gateway or ""])
        self.out(f"Outside world ({self.outside}): {topology.outside_gateway} on the "
                 f"external network {topology.physical_network}")
        if not topology.internet:
            return
        self.remember_namespace(self.internet)
        wire(self.outside, "inet-1", self.internet, "inet0")
        near, far = INTERNET_LINK
        outside.ensure_addresses("inet-1", [near])
        internet = kernel(self.internet)
        internet.ensure_addresses("inet0", [far, topology.internet])
        outside.ensure_sysctls({"net.ipv4.ip_forward": "1"})
        network = str(netaddr.IPNetwork(topology.internet).cidr)
        outside.ensure_routes([Route(network, far.split("/")[0])])
        internet.ensure_routes([Route("default", near.split("/")[0])])
        self.out(f"Internet ({self.internet}): {topology.internet}, behind the outside world")

    def lab_namespaces(self) -> list[str]:
        """Every namespace of this lab now, by its prefix (what agents made in its hosts
        included)."""
        return sorted(n for n in netns.names() if n.startswith(self.prefix))

    def remove_namespaces(self) -> list[str]:
        """Remove every namespace of the lab; the names removed."""
        # The ones agents made inside hosts first, the hosts and wires last.
        made = set(self.state.get("namespaces", []))
        ordered = sorted(self.lab_namespaces(), key=lambda n: (n in made, n))
        return [n for n in ordered if netns.remove(n)]
