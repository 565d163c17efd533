"""What one router should be on this host, as a frozen plan (pure).

`plan` takes a router's desired state (as the server sends it) and the agent's settings and
says everything the driver makes, as Neutron's L3 agent builds a legacy router on Linux:
- a `qrouter-<id>` namespace with forwarding on;
- per interface, a `qr-` device in the namespace with the port's MAC and gateway addresses,
  whose peer (`tap...`) the host's L2 agent plugs into the network's bridge;
- for the external gateway, a `qg-` device with the gateway IP and every floating IP (/32),
  the default route via the external subnet's gateway, and the extra routes;
- the NAT table: SNAT of the attached subnets behind the gateway IP (when `enable_snat`),
  and per floating IP, DNAT in and SNAT out, as elements of two maps so that one floating IP
  more is one element more, whatever the table's size.

An HA router has the same namespace, devices and NAT table on every host hosting it, plus
an `ha-` device on the HA network with this host's HA address; its real addresses and
routes are keepalived's to add (on the host VRRP makes primary) and to remove (elsewhere):
`RouterPlan.ha` is keepalived's plan (`keepalived.HaPlan`). Until the host's HA port
exists the router is plumbed but serves nowhere here (`ha` None, `vrrp` True).

Every host of an HA router also has its fence (`fence_table`): the kernel itself stops the
router's traffic on a host whose keepalived stopped advertising (killed, frozen, its whole
host frozen) or that hears another primary, whatever the addresses left on its devices;
and its ARP replies (`arp_fence_table`), which would teach the switches to send the
router's MAC to that host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import netaddr

from neutrino import registry
from neutrino.agent.l3.keepalived import VIP_PREFIX, VIP_PREFIXLEN, Address, HaPlan
from neutrino.agent.linux.kernel import Route
from neutrino.agent.linux.netfilter import Chain, NamedSet, Table

NAT_TABLE = "neutrino-l3"
FENCE_TABLE = "neutrino-ha-fence"
ARP_FENCE_TABLE = "neutrino-ha-arp-fence"
FENCE_TABLES = frozenset({("inet", FENCE_TABLE), ("netdev", ARP_FENCE_TABLE)})
# The lease lasts this many advert intervals: less than the time a backup waits before it
# takes over (3 intervals and a skew), so that the old primary is dark before the new one
# serves.
LEASE_ADVERTS = 3
# Forwarding on; answer ARP only for addresses on the asking interface (the router's
# ports share one namespace); IPv6 off until the router serves it.
SYSCTLS = (("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.arp_ignore", "1"),
           ("net.ipv4.conf.all.arp_announce", "2"),
           ("net.netfilter.nf_conntrack_tcp_be_liberal", "1"))
EXTERNAL_MARK = "0x2"
# While primary, keepalived repeats its gratuitous ARPs every second: after a partition
# heals, the bridges may have learned the router's MAC where the other (former) primary
# is, and would send its traffic there until the real primary speaks again.
GARP_REFRESH = 1


@dataclass(frozen=True, order=True)
class PortPlan:
    """One port of the router: its device in the namespace and its peer on the host."""

    id: str
    device: str  # qr-... or qg-... in the router's namespace
    outer: str  # tap... on the host, plugged by the L2 agent
    mac: str
    addresses: frozenset[str]  # CIDRs
    mtu: int | None = None


@dataclass(frozen=True, order=True)
class FloatingIp:
    """A floating IP the router serves: outside address and the fixed IP behind it."""

    id: str
    address: str
    fixed: str


@dataclass(frozen=True)
class RouterPlan:
    """One router on this host."""

    router_id: str
    namespace: str
    internal: tuple[PortPlan, ...]
    gateway: PortPlan | None
    routes: frozenset[Route]
    table: Table
    floating_ips: tuple[FloatingIp, ...]
    sysctls: tuple[tuple[str, str], ...] = SYSCTLS
    vrrp: bool = False  # an HA router: keepalived, not the driver, sets addresses and routes
    ha_port: PortPlan | None = None  # this host's port on the HA network (ha-...)
    ha: HaPlan | None = None  # keepalived's plan; None until the HA port exists
    fences: tuple[Table, ...] = ()  # an HA router's fence (`fence_table`, `arp_fence_table`)

    @property
    def ports(self) -> tuple[PortPlan, ...]:
        """Every port, the gateway and then the HA port last."""
        return self.internal + ((self.gateway,) if self.gateway else ()) + \
            ((self.ha_port,) if self.ha_port else ())


def namespace(router_id: str, host_namespace: str | None = None) -> str:
    """A router's namespace."""
    return registry.namespace("qrouter-", router_id, host_namespace)


def _addresses(port: dict[str, Any]) -> frozenset[str]:
    return frozenset(f"{ip['ip_address']}/{netaddr.IPNetwork(ip['cidr']).prefixlen}"
                     for ip in port["fixed_ips"]
                     if netaddr.IPAddress(ip["ip_address"]).version == 4)


def _port(port: dict[str, Any], prefix: str, extra: frozenset[str] = frozenset()) -> PortPlan:
    return PortPlan(port["id"], registry.device_name(prefix, port["id"]),
                    registry.tap_name(port["id"]), port["mac_address"],
                    _addresses(port) | extra, port.get("mtu"))


def _first_ipv4(port: dict[str, Any]) -> dict[str, Any] | None:
    return next((ip for ip in port["fixed_ips"]
                 if netaddr.IPAddress(ip["ip_address"]).version == 4), None)


def nat_table(gateway: PortPlan | None, gateway_ip: str | None, enable_snat: bool,
              internal_cidrs: list[str], fips: tuple[FloatingIp, ...]) -> Table:
    """The router's NAT table (pure): floating IPs as map elements, SNAT behind the gateway.

    As Neutron's iptables rules: traffic between the router's own networks is not SNATed
    (unless it was DNATed: a VM reaching another's floating IP from inside), a fixed IP with
    a floating IP leaves with it, the rest leaves with the gateway IP when SNAT is on."""
    dnat = NamedSet("fip_dnat", "ipv4_addr : ipv4_addr",
                    frozenset(f"{f.address} : {f.fixed}" for f in fips), map=True)
    snat = NamedSet("fip_snat", "ipv4_addr : ipv4_addr",
                    frozenset(f"{f.fixed} : {f.address}" for f in fips), map=True)
    chains = [Chain("prerouting", ("dnat to ip daddr map @fip_dnat",), type="nat",
                    hook="prerouting", priority=-100, policy="accept"),
              Chain("output", ("dnat to ip daddr map @fip_dnat",), type="nat",
                    hook="output", priority=-100, policy="accept")]
    post: list[str] = []
    mangle: list[str] = []
    if gateway is not None:
        qg = gateway.device
        mangle.append(f'iifname "{qg}" meta mark set {EXTERNAL_MARK}')
        post.append(f'oifname != "{qg}" ct status != dnat accept')
        post.append("snat to ip saddr map @fip_snat")
        if enable_snat and gateway_ip is not None:
            address = next(iter(sorted(a.split("/")[0] for a in gateway.addresses
                                       if not a.endswith("/32"))), None)
            if address is not None:
                sources = ", ".join(sorted(internal_cidrs))
                if sources:
                    post.append(f'oifname "{qg}" ip saddr {{ {sources} }} snat to {address}')
                # Hairpin: a VM reaching a floating IP from inside returns through us.
                post.append(f"meta mark != {EXTERNAL_MARK} ct status dnat snat to {address}")
    chains.append(Chain("postrouting", tuple(post), type="nat", hook="postrouting",
                        priority=100, policy="accept"))
    chains.append(Chain("external_mark", tuple(mangle), type="filter", hook="prerouting",
                        priority=-150, policy="accept"))
    return Table("ip", NAT_TABLE, tuple(chains), (dnat, snat))


def fence_table(advert_int: float) -> Table:
    """An HA router's fence (pure): the kernel passes the router's traffic only while this
    host is VRRP primary, and stops it by itself when it no longer is.

    The lease is a set element that every VRRP advert this host sends renews (only the
    primary sends adverts) and that expires `LEASE_ADVERTS` intervals after the last; an
    advert heard from another primary closes the fence for as long. So a keepalived killed
    with SIGKILL, or a frozen host (SIGSTOP of all its processes, the kernel still
    answering), goes dark before the backup takes over, with nobody left on it to remove
    addresses; and when a partition heals, both primaries stop serving until VRRP has
    left one, instead of both serving for an advert or two. The key is the device group
    (0, "default", for every device here): a constant, since nft looks sets up by an
    expression of the packet. The HA network itself (adverts, conntrackd) and loopback
    are never fenced.
    """
    lease = _lease_timeout(advert_int)
    # Only another host's advert closes the fence (ours never loop back, but a multicast
    # one could).
    prerouting = _fence_chain("prerouting", "iif", f"fib saddr type != local update @heard "
                              f"{{ iifgroup {lease} }}")
    output = _fence_chain("output", "oif", f"update @lease {{ oifgroup {lease} }}")
    return Table("inet", FENCE_TABLE, (prerouting, output), LEASE_SETS)


# Both sides of the fence keep these: the lease its own adverts renew, and the adverts of
# another primary heard (keyed by the device group, a constant: see `fence_table`).
LEASE_SETS = (NamedSet("lease", "devgroup", flags=("timeout",)),
              NamedSet("heard", "devgroup", flags=("timeout",)))


def _lease_timeout(advert_int: float) -> str:
    """How long an advert sent or heard counts, as an nft set element's timeout."""
    return f"timeout {round(advert_int * LEASE_ADVERTS * 1000)}ms"


def arp_fence_table(advert_int: float, ha_port: PortPlan, devices: tuple[str, ...]) -> Table:
    """The fence's ARP side (pure): the router's devices send ARP replies only under the
    same rule as `fence_table`'s traffic (ARP is not IP: the inet fence never sees it).

    A frozen host's kernel would go on answering ARP for the addresses it keeps, and a
    learning switch that hears the answer sends the router's MAC (the same on every host)
    to the frozen host, where the fence drops it: the new primary's traffic goes dark
    until it speaks again. Its own lease and heard sets, renewed by the same adverts: sent
    on the ha- device (egress), or heard there from another MAC (ingress). Requests pass:
    keepalived's gratuitous ARPs are requests, and a fenced host resolves nothing it could
    send. Hooks are per device (netdev family), so the table changes with the router's
    ports; made again, its lease waits for the next advert. A router with no port but its
    HA one has no `replies` chain.

    The ha- device's egress also drops every ARP packet from the VRID's address: nobody
    sends to it, and keepalived's gratuitous ARPs for it (at each transition and every
    `GARP_REFRESH` while primary) would flood the project's HA network, which every
    router of the project shares on every host: with 200 routers, 400 namespaces handle
    each of them (a tenth of the machine in a cold start)."""
    lease = _lease_timeout(advert_int)

    def hooked(name: str, hook: str, on: tuple[str, ...], *rules: str) -> Chain:
        return Chain(name, rules, type="filter", hook=hook, priority=-300, policy="accept",
                     devices=on)
    sent = hooked("ha-egress", "egress", (ha_port.device,),
                  f"ip protocol vrrp update @lease {{ oifgroup {lease} }}",
                  f"arp saddr ip {VIP_PREFIX}.0/{VIP_PREFIXLEN} drop")
    heard = hooked("ha-ingress", "ingress", (ha_port.device,),
                   f"ip protocol vrrp ether saddr != {ha_port.mac} update @heard "
                   f"{{ iifgroup {lease} }}")
    replies = (hooked("replies", "egress", devices,
                      "arp operation reply oifgroup != @lease drop",
                      "arp operation reply oifgroup @heard drop"),) if devices else ()
    return Table("netdev", ARP_FENCE_TABLE, (sent, heard, *replies), LEASE_SETS)


def _fence_chain(hook: str, side: str, on_advert: str) -> Chain:
    """One base chain of the fence: what a VRRP advert on the HA network does to the
    sets, then the HA network and loopback pass, the rest only while the lease holds and
    no other primary was heard. (A wildcard is literal inside a set: `{ "ha-*", "lo" }`
    would not match ha-, hence a rule each.)"""
    return Chain(hook, (f'{side}name "ha-*" ip protocol vrrp {on_advert}',
                        f'{side}name "ha-*" accept', f'{side}name "lo" accept',
                        f"{side}group != @lease drop", f"{side}group @heard drop"),
                 type="filter", hook=hook, priority=-300, policy="accept")


@dataclass(frozen=True)
class HaSettings:
    """The L3 agent's keepalived settings (`ha_vrrp_*`)."""

    advert_int: float = 2.0
    auth_password: str | None = None
    health_check_interval: int = 0
    confs_path: str = ""  # where each router's keepalived files go (its own directory)
    conntrackd: bool = True  # conntrackd beside keepalived (`ha_conntrackd_enabled`)
    track_file: str | None = None  # the host links' file keepalived tracks (`host_links`)


def ha_plan(router_id: str, vrid: int, ha_port: PortPlan, internal: tuple[PortPlan, ...],
            gateway: PortPlan | None, routes: frozenset[Route],
            settings: HaSettings, peers: tuple[str, ...] = ()) -> HaPlan:
    """keepalived's plan for a router: every real address and route is VRRP's to give."""
    excluded = tuple(sorted(Address(a, p.device) for p in (*internal, *(
        (gateway,) if gateway else ())) for a in p.addresses))
    base = f"{settings.confs_path}/{router_id}" if settings.confs_path else ""
    checked = settings.health_check_interval > 0 and bool(base)
    return HaPlan(router_id=router_id, vrid=vrid, ha_device=ha_port.device,
                  ha_cidr=min(ha_port.addresses), advert_int=settings.advert_int,
                  auth_password=settings.auth_password, excluded=excluded,
                  routes=tuple(sorted(routes, key=lambda r: (r.dst, r.gateway or "",
                                                             r.dev or ""))),
                  garp_master_refresh=GARP_REFRESH, unicast_peers=peers,
                  health_check_interval=settings.health_check_interval if checked else 0,
                  health_check_script=f"{base}/ha_check_script.sh" if checked else None,
                  conntrackd_script=f"{base}/conntrackd.sh"
                  if settings.conntrackd and base else None,
                  track_file=settings.track_file)


def plan(state: dict[str, Any], host_namespace: str | None = None,
         ha_settings: HaSettings | None = None) -> RouterPlan | None:
    """The router this host should have; None when it should have none (admin down)."""
    if not state.get("admin_state_up", True):
        return None
    router_id = state["id"]
    internal = tuple(sorted(_port(p, "qr-") for p in state.get("interfaces", [])))
    fips = tuple(sorted(FloatingIp(f["id"], f["floating_ip_address"], f["fixed_ip_address"])
                        for f in state.get("floatingips", []) if f.get("fixed_ip_address")))
    gw_state = state.get("gateway")
    gateway = gateway_ip = None
    routes: set[Route] = set()
    if gw_state:
        gateway = _port(gw_state, "qg-", frozenset(f"{f.address}/32" for f in fips))
        first = _first_ipv4(gw_state)
        gateway_ip = first.get("gateway_ip") if first else None
        if gateway_ip:
            routes.add(Route("default", gateway_ip, gateway.device))
    routes |= {Route(r["destination"], r["nexthop"]) for r in state.get("routes", [])}
    cidrs = sorted({ip["cidr"] for p in state.get("interfaces", []) for ip in p["fixed_ips"]
                    if netaddr.IPNetwork(ip["cidr"]).version == 4})
    table = nat_table(gateway, gateway_ip, bool(gw_state and gw_state.get("enable_snat", True)),
                      cidrs, fips)
    vrrp = state.get("ha")
    if not vrrp:
        return RouterPlan(router_id, namespace(router_id, host_namespace), internal, gateway,
                          frozenset(routes), table, fips)
    ha_port = _port(vrrp["port"], "ha-") if vrrp.get("port") and vrrp["port"]["fixed_ips"] \
        else None
    keepalived = ha_plan(router_id, vrrp["vr_id"], ha_port, internal, gateway,
                         frozenset(routes), ha_settings or HaSettings(),
                         tuple(sorted(vrrp.get("peers", [])))) \
        if ha_port is not None and vrrp.get("vr_id") else None
    advert_int = (ha_settings or HaSettings()).advert_int
    served = tuple(p.device for p in internal) + ((gateway.device,) if gateway else ())
    fences = [fence_table(advert_int)] + ([arp_fence_table(advert_int, ha_port, served)]
                                          if ha_port is not None else [])
    return RouterPlan(router_id, namespace(router_id, host_namespace), internal, gateway,
                      frozenset(routes), table, fips, vrrp=True, ha_port=ha_port, ha=keepalived,
                      fences=tuple(fences))
