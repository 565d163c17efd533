"""Security groups on a Linux bridge host, as two nftables tables rendered from the
desired state (pure: no I/O in this module but `Firewall`, which applies them).

Why two tables: conntrack does not exist in the bridge family on these kernels, and nftables
has no physdev match. So
- the bridge table `neutrino_sg` does what needs the port a frame came in on and no state:
  anti-spoofing per tap (only the port's MAC and addresses and its allowed address pairs may
  leave it, ARP included; no DHCP or router advertisement server answers from a VM);
- the inet table `neutrino_sg` sees bridged IPv4/IPv6 (br_netfilter) with conntrack: a zone
  per network, set from the bridge the frame crossed, then per-port verdicts. A port is found
  by its bridge and MAC: `iifname . ether daddr` for what goes to a VM, `iifname . ether
  saddr` for what leaves one (its source MAC is one of its own: the bridge table saw to it).
Ingress and egress are two base chains on the forward hook: an `accept` in a group's chain
ends one of them only, so a frame between two VMs of the host passes the sender's egress
and the receiver's ingress, each once. Each group's rules are one chain per direction,
jumped to from the chains of the ports in it; a remote group is a named set of its members'
addresses, so a member joining is one element, whatever the group's size.
Ports of routers and DHCP servers (`network:*`) and ports without port security are not
filtered at all.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import netaddr

from neutrino.agent.linux import netns
from neutrino.agent.linux.netfilter import Chain, NamedSet, Netfilter, Table
from neutrino.registry import bridge_name, tap_name

LOG = logging.getLogger(__name__)
TABLE = "neutrino_sg"
ZONE_FIRST, ZONE_LAST = 4097, 65535
# Protocols with ports where nft's transport header match (`th dport`) applies.
PORT_PROTOCOLS = {6, 17, 33, 132, 136}
PROTOCOL_NUMBERS = {
    "hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17,
    "ipv6-encap": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47, "esp": 50,
    "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ospf": 89,
    "vrrp": 112, "pgm": 113, "sctp": 132, "dccp": 33, "udplite": 136}
INGRESS_ICMPV6 = "{ mld-listener-query, nd-router-advert, nd-neighbor-solicit, " \
    "nd-neighbor-advert }"


@dataclass(frozen=True)
class Rule:
    """One security group rule, as the host needs it."""

    direction: str  # ingress / egress
    ethertype: str  # IPv4 / IPv6
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    remote_address_group_id: str | None = None


@dataclass(frozen=True)
class Group:
    """A security group: its rules, and whether it is stateful."""

    id: str
    stateful: bool
    rules: tuple[Rule, ...]


@dataclass(frozen=True, order=True)
class Port:
    """A filtered port of this host."""

    id: str
    network_id: str
    mac: str
    addresses: tuple[str, ...]  # fixed IPs
    pairs: tuple[tuple[str, str], ...]  # allowed address pairs: (mac, ip or CIDR)
    groups: tuple[str, ...]

    @property
    def tap(self) -> str:
        """Its device on the host."""
        return tap_name(self.id)

    @property
    def bridge(self) -> str:
        """Its network's bridge."""
        return bridge_name(self.network_id)

    @property
    def macs(self) -> tuple[str, ...]:
        """Every MAC it may send from."""
        return tuple(sorted({self.mac, *(m for m, _ in self.pairs)}))


@dataclass(frozen=True)
class Members:
    """Addresses of a remote group or an address group, split by family and by kind (an
    interval set refuses a CIDR that overlaps an address, so CIDRs are merged apart)."""

    ips4: frozenset[str] = frozenset()
    ips6: frozenset[str] = frozenset()
    nets4: frozenset[str] = frozenset()
    nets6: frozenset[str] = frozenset()

    @classmethod
    def of(cls, addresses: Iterable[str]) -> Members:
        """Parse addresses (IPs or CIDRs) once."""
        found: dict[str, set[str]] = {"ips4": set(), "ips6": set(), "nets4": set(),
                                      "nets6": set()}
        for text in addresses:
            if "/" not in text:  # the server's addresses are canonical: no parse needed
                found["ips6" if ":" in text else "ips4"].add(text)
                continue
            net = netaddr.IPNetwork(text)
            kind = "ips" if net.size == 1 else "nets"
            found[f"{kind}{net.version}"].add(str(net.ip) if net.size == 1 else str(net.cidr))
        return cls(**{k: frozenset(v) for k, v in found.items()})

    @classmethod
    def union(cls, many: Iterable[Members]) -> Members:
        """Several at once (one copy of each element, not one per operand)."""
        many = list(many)
        return cls(*(frozenset().union(*(getattr(m, f) for m in many))
                     for f in ("ips4", "ips6", "nets4", "nets6")))

    @property
    def addresses(self) -> frozenset[str]:
        """Every address and CIDR."""
        return self.ips4 | self.ips6 | self.nets4 | self.nets6

    def ips(self, version: int) -> frozenset[str]:
        """The single addresses of one family (a hash set's elements)."""
        return self.ips4 if version == 4 else self.ips6

    def nets(self, version: int) -> frozenset[str]:
        """The CIDRs of one family, merged (an interval set refuses overlaps)."""
        nets = self.nets4 if version == 4 else self.nets6
        if not nets:
            return frozenset()
        return frozenset(str(n) for n in netaddr.cidr_merge([netaddr.IPNetwork(n)
                                                             for n in nets]))

    def merged(self, version: int) -> frozenset[str]:
        """Addresses and CIDRs of one family merged into CIDRs (an address group)."""
        every = self.ips(version) | (self.nets4 if version == 4 else self.nets6)
        return frozenset(str(n) for n in netaddr.cidr_merge([netaddr.IPNetwork(n)
                                                             for n in every]))


NO_MEMBERS = Members()


@dataclass(frozen=True)
class Plan:
    """What the host's firewall should be."""

    ports: tuple[Port, ...]
    groups: Mapping[str, Group]
    members: Mapping[str, Members]  # remote group -> its members' addresses
    address_groups: Mapping[str, Members]  # address group -> its CIDRs
    zones: Mapping[str, int]  # network -> conntrack zone

    def stateful(self, port: Port) -> bool:
        """A port is stateless when any of its groups is (Neutron allows no mix)."""
        return all(self.groups[g].stateful for g in port.groups if g in self.groups)


def filtered(port: Mapping[str, Any]) -> bool:
    """Whether a port of the desired state is filtered: it has port security and is not a
    router's, DHCP server's or other network service's port."""
    return bool(port.get("port_security_enabled", True)) and \
        not str(port.get("device_owner") or "").startswith("network:")


def port_of(network_id: str, port: Mapping[str, Any]) -> Port:
    """A filtered port from the desired state of its network (pure)."""
    mac = str(port["mac_address"]).lower()
    pairs = tuple(sorted((str(p.get("mac_address") or mac).lower(),
                          _address(str(p["ip_address"])))
                         for p in port.get("allowed_address_pairs") or ()))
    return Port(port["id"], network_id, mac,
                tuple(sorted(str(f["ip_address"]) for f in port.get("fixed_ips") or ())),
                pairs, tuple(sorted(port.get("security_groups") or ())))


def group_of(state: Mapping[str, Any]) -> Group:
    """A security group from its desired state (pure)."""
    rules = tuple(sorted((Rule(
        r["direction"], r["ethertype"], r.get("protocol"), r.get("port_range_min"),
        r.get("port_range_max"), r.get("remote_ip_prefix"), r.get("remote_group_id"),
        r.get("remote_address_group_id")) for r in state.get("rules", ())), key=repr))
    return Group(state["id"], bool(state.get("stateful", True)), rules)


def _address(text: str) -> str:
    """An address pair's IP as it is; a CIDR in its network form (a host CIDR: the IP)."""
    net = netaddr.IPNetwork(text)
    return str(net.ip) if "/" not in text or net.size == 1 else str(net.cidr)


def zone_for(network_id: str, taken: Iterable[int]) -> int:
    """A conntrack zone for a network: its hashed slot, or the next free one (stable for
    the same set of networks, whatever order they come in)."""
    used = set(taken)
    span = ZONE_LAST - ZONE_FIRST + 1
    slot = zlib.crc32(network_id.encode()) % span
    for step in range(span):
        zone = ZONE_FIRST + (slot + step) % span
        if zone not in used:
            return zone
    raise RuntimeError("no conntrack zone left")


# -- rendering ---------------------------------------------------------------------------

def _family(ethertype: str) -> tuple[str, str]:
    """(nft address keyword, set type) of an ethertype."""
    return ("ip", "ipv4_addr") if ethertype == "IPv4" else ("ip6", "ipv6_addr")


def members_set(group_id: str, ethertype: str) -> str:
    """The named set of a remote group's member addresses of one family (a hash set:
    libnftables reads every element of a table's interval sets before any change, so a
    group of ten thousand in an interval set would make every element added cost tens of
    milliseconds)."""
    return f"rg{ethertype[-1]}-{group_id}"


def members_nets_set(group_id: str, ethertype: str) -> str:
    """The interval set of a remote group's CIDR members (allowed address pairs), made
    only when it has some."""
    return f"rn{ethertype[-1]}-{group_id}"


def address_group_set(address_group_id: str, ethertype: str) -> str:
    """The named set of an address group's CIDRs of one family."""
    return f"ag{ethertype[-1]}-{address_group_id}"


def rule_texts(rule: Rule, nets: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """A rule as nft statements: one, or two for a remote group that has CIDR members
    (`nets`: the CIDR sets that exist)."""
    if rule.remote_group_id:
        found = []
        for name in (members_set(rule.remote_group_id, rule.ethertype),
                     members_nets_set(rule.remote_group_id, rule.ethertype)):
            if name.startswith("rg") or name in nets:
                text = rule_text(rule, name)
                if text:
                    found.append(text)
        return tuple(found)
    text = rule_text(rule)
    return (text,) if text else ()


def rule_text(rule: Rule, remote_set: str | None = None) -> str | None:
    """One rule as an nft statement ending in `accept` (None: it can never match, e.g. a
    remote prefix of the other family); `remote_set` names the remote group's set."""
    ip, _ = _family(rule.ethertype)
    remote = "saddr" if rule.direction == "ingress" else "daddr"
    parts = [f"meta nfproto {'ipv4' if rule.ethertype == 'IPv4' else 'ipv6'}"]
    if rule.remote_ip_prefix:
        net = netaddr.IPNetwork(rule.remote_ip_prefix)
        if (net.version == 4) != (rule.ethertype == "IPv4"):
            return None
        if net.prefixlen:
            parts.append(f"{ip} {remote} {net.cidr}")
    elif rule.remote_group_id:
        parts.append(f"{ip} {remote} "
                     f"@{remote_set or members_set(rule.remote_group_id, rule.ethertype)}")
    elif rule.remote_address_group_id:
        parts.append(f"{ip} {remote} "
                     f"@{address_group_set(rule.remote_address_group_id, rule.ethertype)}")
    if rule.protocol is not None:
        number = PROTOCOL_NUMBERS.get(rule.protocol.lower()) if not rule.protocol.isdigit() \
            else int(rule.protocol)
        if number is None:
            return None
        parts.append(f"meta l4proto {number}")
        low, high = rule.port_range_min, rule.port_range_max
        if number in (1, 58) and low is not None:
            keyword = "icmp" if number == 1 else "icmpv6"
            parts.append(f"{keyword} type {low}")
            if high is not None:
                parts.append(f"{keyword} code {high}")
        elif number in PORT_PROTOCOLS and low is not None:
            high = low if high is None else high
            parts.append(f"th dport {low}" if low == high else f"th dport {low}-{high}")
    return " ".join(parts + ["accept"])


@lru_cache(maxsize=65536)
def group_chains(group: Group, nets: frozenset[str] = frozenset()) -> tuple[Chain, Chain]:
    """A group's ingress and egress chains (`nets`: the CIDR sets that exist)."""
    chains = []
    for direction in ("ingress", "egress"):
        rules = [t for r in group.rules if r.direction == direction
                 for t in rule_texts(r, nets)]
        chains.append(Chain(group_chain(group.id, direction), tuple(dict.fromkeys(rules))))
    return chains[0], chains[1]


def group_chain(group_id: str, direction: str) -> str:
    """The chain of a group's rules of one direction."""
    return f"g{direction[0]}-{group_id}"


# What every filtered port needs whatever its groups: DHCP and neighbour discovery in,
# DHCP and ICMPv6 out (a VM's router advertisements are stopped by the spoofing filter).
COMMON = {
    "ingress": ("meta l4proto udp udp sport 67 udp dport 68 accept",
                "meta l4proto udp udp sport 547 udp dport 546 accept",
                "icmpv6 type { mld-listener-query, nd-router-advert, nd-neighbor-solicit, "
                "nd-neighbor-advert } accept"),
    "egress": ("meta l4proto udp udp sport 68 udp dport 67 accept",
               "meta l4proto udp udp sport 546 udp dport 547 accept",
               "meta l4proto ipv6-icmp accept")}


@lru_cache(maxsize=65536)
def profile(groups: tuple[str, ...], stateful: bool) -> str:
    """The name shared by the chains of every port with the same groups and statefulness:
    a thousand ports in one group are one pair of chains, and a port more is elements."""
    digest = hashlib.sha256(f"{stateful} {' '.join(groups)}".encode()).hexdigest()[:16]
    return f"{'s' if stateful else 'n'}{digest}"


@lru_cache(maxsize=65536)
def profile_chain(groups: tuple[str, ...], stateful: bool, direction: str) -> Chain:
    """The chain for one direction of the ports of a profile: the state shortcut, the
    common traffic, their groups' chains, then drop."""
    rules = ["ct state established,related accept", "ct state invalid drop"] if stateful \
        else []
    rules.append(f"jump common_{direction}")
    rules += [f"jump {group_chain(g, direction)}" for g in groups]
    rules.append("drop")
    return Chain(f"{direction[0]}-{profile(groups, stateful)}", tuple(rules))


@lru_cache(maxsize=65536)
def _link_local(mac: str) -> str:
    return str(netaddr.EUI(mac).ipv6_link_local())


@lru_cache(maxsize=65536)
def spoof_elements(port: Port) -> dict[str, frozenset[str]]:
    """A port's elements of the spoofing sets: `sources` (tap . MAC) it may send from;
    `sources4` / `sources6` (tap . MAC . address) it may send as: fixed IPs, pairs and
    link-local addresses; `sources4n` / `sources6n` the same for CIDR pairs; `unaddressed`
    (tap . MAC) that may send any address (a port with no address at all)."""
    tap = f'"{port.tap}"'
    macs = frozenset(f"{tap} . {m}" for m in port.macs)
    found: dict[str, set[str]] = {"sources4": set(), "sources6": set(), "sources4n": set(),
                                  "sources6n": set()}
    for mac, address in [(port.mac, a) for a in port.addresses] + list(port.pairs):
        net = netaddr.IPNetwork(address)
        kind = f"sources{net.version}{'n' if '/' in address else ''}"
        found[kind].add(f"{tap} . {mac} . {address}")
    found["sources6"] |= {f"{tap} . {m} . {_link_local(m)}" for m in port.macs}
    anything = macs if not port.addresses and not port.pairs else frozenset()
    return {"sources": macs, "unaddressed": anything,
            **{k: frozenset(v) for k, v in found.items()}}


def spoofing_rules(nets4: bool, nets6: bool) -> tuple[str, ...]:
    """The spoofing chain; the CIDR pair sets are looked up only when they exist."""
    rules = list(SPOOFING)
    at = rules.index("ether type arp drop")
    if nets4:
        rules.insert(at, "ether type arp iifname . ether saddr . arp saddr ip @sources4n "
                     "accept")
    extra = []
    if nets4:
        extra.append("meta protocol ip iifname . ether saddr . ip saddr @sources4n accept")
    if nets6:
        extra.append("meta protocol ip6 iifname . ether saddr . ip6 saddr @sources6n "
                     "accept")
    at = rules.index("iifname . ether saddr @unaddressed accept")
    return tuple(rules[:at] + extra + rules[at:])


SPOOFING = (
    "iifname != @filtered accept",
    "meta l4proto udp udp sport 67 udp dport 68 drop",  # no DHCP server in a VM
    "meta l4proto udp udp sport 547 udp dport 546 drop",
    "icmpv6 type nd-router-advert drop",  # nor a router
    "iifname . ether saddr @sources ip saddr 0.0.0.0 ip daddr 255.255.255.255 "
    "udp sport 68 udp dport 67 accept",  # DHCP discovery, before the VM has an address
    "iifname . ether saddr @sources ip6 saddr :: ip6 daddr ff02::/16 accept",  # DAD, MLD
    "ether type arp iifname . ether saddr . arp saddr ip @sources4 accept",
    "ether type arp drop",
    "meta protocol ip iifname . ether saddr . ip saddr @sources4 accept",
    "meta protocol ip6 iifname . ether saddr . ip6 saddr @sources6 accept",
    "iifname . ether saddr @unaddressed accept",
    "drop")


def render(plan: Plan) -> tuple[Table, Table]:
    """The bridge and inet tables of a plan (pure)."""
    ports = sorted(plan.ports)
    filtered_taps = frozenset(f'"{port.tap}"' for port in ports)
    spoof: dict[str, set[str]] = {k: set() for k in (
        "sources", "sources4", "sources6", "sources4n", "sources6n", "unaddressed")}
    for port in ports:
        for kind, elements in spoof_elements(port).items():
            spoof[kind] |= elements
    spoof_sets = [NamedSet("filtered", "ifname", filtered_taps),
                  NamedSet("sources", "ifname . ether_addr", frozenset(spoof["sources"])),
                  NamedSet("sources4", "ifname . ether_addr . ipv4_addr",
                           frozenset(spoof["sources4"])),
                  NamedSet("sources6", "ifname . ether_addr . ipv6_addr",
                           frozenset(spoof["sources6"])),
                  NamedSet("unaddressed", "ifname . ether_addr",
                           frozenset(spoof["unaddressed"]))]
    for kind, family in (("sources4n", "ipv4_addr"), ("sources6n", "ipv6_addr")):
        if spoof[kind]:  # CIDR pairs are rare: their interval set exists only for them
            spoof_sets.append(NamedSet(kind, f"ifname . ether_addr . {family}",
                                       frozenset(spoof[kind]), flags=("interval",)))
    bridge = Table("bridge", TABLE, (
        Chain("spoofing", spoofing_rules(bool(spoof["sources4n"]), bool(spoof["sources6n"])),
              type="filter", hook="prerouting", priority=-200, policy="accept"),),
        tuple(spoof_sets))

    to_port: set[str] = set()
    from_port: set[str] = set()
    stateless: set[str] = set()
    profiles: set[tuple[tuple[str, ...], bool]] = set()
    for port in ports:
        groups = tuple(g for g in port.groups if g in plan.groups)
        stateful = plan.stateful(port)
        profiles.add((groups, stateful))
        name = profile(groups, stateful)
        for mac in port.macs:
            to_port.add(f'"{port.bridge}" . {mac} : jump i-{name}')
            from_port.add(f'"{port.bridge}" . {mac} : jump e-{name}')
            if not stateful:
                stateless.add(f'"{port.bridge}" . {mac}')
    zones = frozenset(f'"{bridge_name(n)}" : {z}' for n, z in plan.zones.items()
                      if any(p.network_id == n for p in ports))
    used = sorted({g for groups, _ in profiles for g in groups})
    remote_groups = sorted({r.remote_group_id for g in used for r in plan.groups[g].rules
                            if r.remote_group_id})
    address_groups = sorted({r.remote_address_group_id for g in used
                             for r in plan.groups[g].rules if r.remote_address_group_id})
    sets = [NamedSet("zones", "iifname : ct zone", zones, map=True, typeof=True),
            NamedSet("to_port", "ifname . ether_addr : verdict", frozenset(to_port),
                     map=True),
            NamedSet("from_port", "ifname . ether_addr : verdict", frozenset(from_port),
                     map=True),
            NamedSet("untracked", "ifname . ether_addr", frozenset(stateless))]
    nets: set[str] = set()
    for group_id in remote_groups:
        found = plan.members.get(group_id, NO_MEMBERS)
        for ethertype, version in (("IPv4", 4), ("IPv6", 6)):
            kind = _family(ethertype)[1]
            sets.append(NamedSet(members_set(group_id, ethertype), kind,
                                 found.ips(version)))
            if found.nets(version):
                nets.add(members_nets_set(group_id, ethertype))
                sets.append(NamedSet(members_nets_set(group_id, ethertype), kind,
                                     found.nets(version), flags=("interval",)))
    for address_group_id in address_groups:
        found = plan.address_groups.get(address_group_id, NO_MEMBERS)
        for ethertype, version in (("IPv4", 4), ("IPv6", 6)):
            sets.append(NamedSet(address_group_set(address_group_id, ethertype),
                                 _family(ethertype)[1],
                                 found.merged(version),
                                 flags=("interval",)))
    chains = [
        Chain("conntrack_zone", ("iifname . ether saddr @untracked notrack accept",
                                 "iifname . ether daddr @untracked notrack accept",
                                 "ct zone set iifname map @zones"),
              type="filter", hook="prerouting", priority=-300, policy="accept"),
        Chain("ingress", ("iifname . ether daddr vmap @to_port",), type="filter",
              hook="forward", priority=0, policy="accept"),
        Chain("egress", ("iifname . ether saddr vmap @from_port",), type="filter",
              hook="forward", priority=1, policy="accept"),
        Chain("common_ingress", COMMON["ingress"]),
        Chain("common_egress", COMMON["egress"])]
    for group_id in used:
        chains.extend(group_chains(plan.groups[group_id], frozenset(nets)))
    for groups, stateful in sorted(profiles):
        chains.append(profile_chain(groups, stateful, "ingress"))
        chains.append(profile_chain(groups, stateful, "egress"))
    return bridge, Table("inet", TABLE, tuple(chains), tuple(sets))


# -- effects -------------------------------------------------------------------------------

def _rules(plan: Plan, groups: tuple[str, ...], direction: str) -> frozenset[Rule]:
    return frozenset(r for g in groups if g in plan.groups for r in plan.groups[g].rules
                     if r.direction == direction)


def _remote(rule: Rule) -> tuple[str, str] | None:
    if rule.remote_group_id:
        return ("members", rule.remote_group_id)
    if rule.remote_address_group_id:
        return ("addresses", rule.remote_address_group_id)
    return None


def ended(before: Plan, after: Plan) -> dict[str, set[str]]:
    """Per port kept, the directions whose allowed traffic shrank (pure): a rule or a group
    gone, or a member gone from a remote group or address group that one of its rules
    names. Their flows are ended (conntrack entries deleted), so that what a removed rule
    allowed stops; what is still allowed goes on as new traffic. Worked out once per set
    of groups, not per port: a thousand ports usually share a few."""
    shrunk: set[tuple[str, str]] = set()
    for kind, old, new in (("members", before.members, after.members),
                           ("addresses", before.address_groups, after.address_groups)):
        for object_id, found in old.items():
            if found.addresses - new.get(object_id, NO_MEMBERS).addresses:
                shrunk.add((kind, object_id))
    verdicts: dict[tuple[tuple[str, ...], tuple[str, ...], str], bool] = {}

    def shrank(old_groups: tuple[str, ...], new_groups: tuple[str, ...],
               direction: str) -> bool:
        key = (old_groups, new_groups, direction)
        if key not in verdicts:
            rules = _rules(after, new_groups, direction)
            verdicts[key] = bool(_rules(before, old_groups, direction) - rules) or any(
                _remote(r) in shrunk for r in rules)
        return verdicts[key]

    out: dict[str, set[str]] = {}
    now = {p.id: p for p in after.ports}
    for port in before.ports:
        kept = now.get(port.id)
        if kept is None:
            continue
        for direction in ("ingress", "egress"):
            if shrank(port.groups, kept.groups, direction):
                out.setdefault(port.id, set()).add(direction)
    return out


class Firewall:
    """The host's security group tables, in one namespace neutrino made (the lab's host;
    the root namespace is refused, as every netfilter table of ours)."""

    def __init__(self, namespace: str | None) -> None:
        self.netfilter = Netfilter(namespace)
        self.namespace = namespace
        self._lock = threading.Lock()
        self._applied: Plan | None = None
        self._zones: dict[str, int] = {}

    def zones(self, network_ids: Iterable[str]) -> dict[str, int]:
        """A conntrack zone for each network, kept while the network stays."""
        with self._lock:
            wanted = sorted(set(network_ids))
            for network_id in list(self._zones):
                if network_id not in wanted:
                    del self._zones[network_id]
            for network_id in wanted:
                if network_id not in self._zones:
                    self._zones[network_id] = zone_for(network_id, self._zones.values())
            return dict(self._zones)

    def apply(self, plan: Plan, verify: bool = False) -> bool:
        """Make the host's tables match a plan; True if anything changed. Flows that a
        removed rule allowed are ended."""
        bridge, inet = render(plan)
        with self._lock:
            before = self._applied
            changed = self.netfilter.apply_changes(bridge, verify)
            changed |= self.netfilter.apply_changes(inet, verify)
            self._applied = plan
        if before is not None:
            self._end_flows(before, plan)
        return changed

    def _end_flows(self, before: Plan, after: Plan) -> None:
        ports = {p.id: p for p in after.ports}
        for port_id, directions in sorted(ended(before, after).items()):
            port = ports[port_id]
            zone = after.zones.get(port.network_id)
            for address in port.addresses:
                for direction in sorted(directions):
                    # What came to the port: its address was the destination; what it
                    # started: the source.
                    selector = "--orig-dst" if direction == "ingress" else "--orig-src"
                    argv = ["conntrack", "-D", selector, address]
                    if zone is not None:
                        argv += ["--zone", str(zone)]
                    netns.run(self.namespace, argv, timeout=10)
            LOG.info("Ended the flows of port %s that its removed rules allowed (%s)",
                     port_id, ", ".join(sorted(directions)))

    def remove(self) -> bool:
        """Delete both tables (no filtered port left on the host)."""
        with self._lock:
            self._applied = None
            changed = self.netfilter.remove("bridge", TABLE)
            return self.netfilter.remove("inet", TABLE) or changed
