"""What a lab is made of: its hosts and their agents (seed 000's by default), the physical
network its hosts' `ext0` reach, and the addresses of the outside world."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AGENT_KINDS = ("l2", "dhcp", "l3")
DEFAULT_AGENTS = ("l2", "dhcp")  # a host given no agents runs these
_LAB_NAME = re.compile(r"^[a-z][a-z0-9]{0,5}$")
_HOST_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,15}$")


class TopologyError(ValueError):
    """A topology that cannot be built."""


@dataclass(frozen=True)
class Host:
    """One simulated host and the agents it runs."""

    name: str
    agents: tuple[str, ...]


@dataclass(frozen=True)
class Topology:
    """A controller (the server) and hosts."""

    name: str
    controller: str
    hosts: tuple[Host, ...]
    server_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The physical network of the hosts' `ext0` uplinks to the outside namespace.
    physical_network: str = "physnet1"
    # The outside's address on that network (the external subnet's gateway), and an
    # "internet" address behind it; None: the outside only bridges.
    outside_gateway: str | None = None
    internet: str | None = None

    def host(self, name: str) -> Host:
        """A host by name."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise TopologyError(f"no host {name!r} in topology {self.name} "
                            f"(hosts: {', '.join(h.name for h in self.hosts)})")


SEED_000 = {
    "name": "seed-000",
    "controller": "controlnode",
    "hosts": [{"name": "HostA", "agents": ["l2", "dhcp"]},
              {"name": "HostB", "agents": ["l2", "dhcp"]}],
}
SEED_004 = {
    "name": "seed-004",
    "controller": "controller",
    "hosts": [{"name": "network1", "agents": ["l2", "dhcp", "l3"]},
              {"name": "compute1", "agents": ["l2"]},
              {"name": "compute2", "agents": ["l2"]}],
    "physical_network": "external",
    "outside_gateway": "203.0.113.1/24",
    "internet": "192.0.2.1/24",
}
SEED_003 = {
    "name": "seed-003",
    "controller": "controller",
    # neutron.conf as seed 003 writes it (its DVR half is not implemented yet).
    "server_options": {"DEFAULT": {"l3_ha": True, "l3_ha_net_cidr": "169.254.192.0/18",
                                   "max_l3_agents_per_router": 3}},
    "hosts": [{"name": "network1", "agents": ["l2", "dhcp", "l3"]},
              {"name": "network2", "agents": ["l2", "dhcp", "l3"]},
              {"name": "compute1", "agents": ["l2"]},
              {"name": "compute2", "agents": ["l2"]}],
    "physical_network": "external",
    "outside_gateway": "203.0.113.1/24",
    "internet": "192.0.2.1/24",
}
BUILTIN: dict[str, dict[str, Any]] = {"seed-000": SEED_000, "seed-003": SEED_003,
                                     "seed-004": SEED_004}


def check_lab_name(name: str) -> str:
    """A lab name short enough to prefix every namespace and interface it makes."""
    if not _LAB_NAME.match(name):
        raise TopologyError(f"lab name {name!r}: 1-6 lower-case letters and digits, "
                            "starting with a letter")
    return name


def parse(data: dict[str, Any]) -> Topology:
    """A topology from its JSON form."""
    try:
        hosts = tuple(Host(str(h["name"]), tuple(h.get("agents", DEFAULT_AGENTS)))
                      for h in data["hosts"])
    except (KeyError, TypeError) as err:
        raise TopologyError(f"a topology needs hosts with names: {err}") from err
    if not hosts:
        raise TopologyError("a topology needs at least one host")
    for host in hosts:
        if not _HOST_NAME.match(host.name):
            raise TopologyError(f"host name {host.name!r}: up to 16 letters and digits")
        unknown = set(host.agents) - set(AGENT_KINDS)
        if unknown:
            raise TopologyError(f"host {host.name}: unknown agents {sorted(unknown)} "
                                f"(known: {', '.join(AGENT_KINDS)})")
    if len({h.name for h in hosts}) != len(hosts):
        raise TopologyError("host names must be unique")
    return Topology(str(data.get("name", "custom")), str(data.get("controller", "controlnode")),
                    hosts, dict(data.get("server_options", {})),
                    str(data.get("physical_network", "physnet1")),
                    data.get("outside_gateway"), data.get("internet"))


def load(name_or_file: str) -> Topology:
    """A built-in topology by name, or one from a JSON file."""
    if name_or_file in BUILTIN:
        return parse(BUILTIN[name_or_file])
    path = Path(name_or_file)
    if not path.is_file():
        raise TopologyError(f"no topology {name_or_file!r}: neither built in "
                            f"({', '.join(BUILTIN)}) nor a file")
    try:
        return parse(json.loads(path.read_text()))
    except json.JSONDecodeError as err:
        raise TopologyError(f"{path}: not JSON: {err}") from err
