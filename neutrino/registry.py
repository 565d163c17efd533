"""Who the agents are, written once: type, binary, topic, and the names of what they make.

The server (agent types it knows, projections), the agents (what they report, which links
they may touch), the lab, the swarm and the tests all read these records; a new kind of
agent starts with one more `AgentKind` here. Device names follow Neutron's, so that an
operator recognises them: a prefix and the start of the resource's id, 14 characters at most
(the kernel allows 15).
"""

from __future__ import annotations

from dataclasses import dataclass

DEVICE_NAME_LEN = 14


@dataclass(frozen=True)
class AgentKind:
    """One kind of agent."""

    name: str  # the short name the lab and the command line use
    agent_type: str
    binary: str
    topic: str
    prefixes: tuple[str, ...]  # device names it creates (and may therefore change)


DHCP = AgentKind("dhcp", "DHCP agent", "neutrino-dhcp-agent", "dhcp_agent", ("tap", "ns-"))
L2 = AgentKind("l2", "Linux bridge agent", "neutrino-linuxbridge-agent", "N/A",
               ("brq", "vxlan-", "tap"))
L3 = AgentKind("l3", "L3 agent", "neutrino-l3-agent", "l3_agent", ("tap", "qr-", "qg-"))

KINDS: dict[str, AgentKind] = {k.name: k for k in (DHCP, L2, L3)}
BY_TYPE: dict[str, AgentKind] = {k.agent_type: k for k in KINDS.values()}
# Every device name neutrino may create, change or delete in a namespace it does not own.
OWNED_PREFIXES: tuple[str, ...] = tuple(sorted({p for k in KINDS.values() for p in k.prefixes}))


def kind(name: str) -> AgentKind:
    """An agent kind by its short name (KeyError if unknown)."""
    return KINDS[name]


def device_name(prefix: str, resource_id: str) -> str:
    """A device name: the prefix and as much of the id as fits (Neutron's rule)."""
    return (prefix + resource_id)[:DEVICE_NAME_LEN]


def tap_name(port_id: str) -> str:
    """A port's device on its host: a VM's tap, or the host end of a DHCP port's veth."""
    return device_name("tap", port_id)


def bridge_name(network_id: str) -> str:
    """A network's bridge on every host."""
    return device_name("brq", network_id)


def dhcp_ns_device(port_id: str) -> str:
    """The DHCP port's end inside its DHCP namespace."""
    return device_name("ns-", port_id)


def vxlan_name(vni: int) -> str:
    """A VXLAN network's tunnel device."""
    return f"vxlan-{vni}"


def namespace(prefix: str, resource_id: str, host_namespace: str | None = None) -> str:
    """A namespace of a resource (`qdhcp-<id>`), after the host's namespace when the host is
    itself a namespace (the lab: `<lab>-<host>-qdhcp-<id>`)."""
    name = f"{prefix}{resource_id}"
    return f"{host_namespace}-{name}" if host_namespace else name


def dhcp_namespace(network_id: str, host_namespace: str | None = None) -> str:
    """A network's DHCP namespace."""
    return namespace("qdhcp-", network_id, host_namespace)
