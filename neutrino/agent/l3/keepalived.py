"""keepalived for one HA router, as pure functions of a frozen plan.

`HaPlan` says everything one node's keepalived needs for one router; `render` turns it into
keepalived.conf, `health_check_text` into the health-check script, `command` gives the
command line and `daemon` the record `process.Daemons` supervises. Nothing here touches the
host: the agent writes the files, starts the daemon in the router's namespace and sends
`RELOAD_SIGNAL` when the text changes.

The shape follows Neutron's HA routers, so that an operator recognises it:
- every node starts `state BACKUP` with `nopreempt`, so that a node coming back never takes
  the router from the one serving it;
- `virtual_ipaddress` holds only the VRID's own link-local address on the `ha-` device
  (`vip_address`), which keeps the adverts small; every real address of the router
  (`qr-` gateways, `qg-` addresses, floating IPs) is under `virtual_ipaddress_excluded`,
  and the routes under `virtual_routes`;
- addresses and routes off the `ha-` device are `no_track`: removing one (a floating IP
  going away) must not make the node give the router up (Neutron bug 2097770).

VRRP versions, advert intervals and the password (checked with keepalived 2.2.7):
- VRRPv2 counts the advert interval in whole seconds: keepalived rounds `advert_int 0.2`
  ("must be an integer. rounding"). A fractional interval therefore needs VRRPv3
  (centiseconds, 0.01 to 40.95 s), which the plan picks by itself (`HaPlan.version`).
- VRRPv3 has no authentication: keepalived ignores an `authentication` block in a version 3
  instance ("does not support authentication. Ignoring."). Under VRRPv3 the password is
  therefore not rendered at all and the configuration says so in a comment;
  `HaPlan.password_ignored` lets the agent log it. The password was never a protection
  (it travels in clear, and RFC 3768 dropped it): losing it costs a guard against two
  clusters sharing a VRID on one network, not security. Refusing the router instead would
  leave it down for a setting that buys nothing.
- Under VRRPv2 keepalived uses the first 8 characters of `auth_pass` (and warns about the
  rest): only those are rendered.
"""

from __future__ import annotations

import ipaddress
import signal
from dataclasses import dataclass

from neutrino.agent.linux.kernel import MAIN_TABLE, Route
from neutrino.agent.linux.process import Daemon

# The VRID's address is 169.254.0.<vrid>/24; 255 would be that /24's broadcast address.
VIP_PREFIX = "169.254.0"
VIP_PREFIXLEN = 24
MAX_VRID = 254
# 255 means "address owner" to keepalived: MASTER at once, whatever nopreempt says.
MAX_PRIORITY = 254
AUTH_PASS_LEN = 8  # keepalived ignores the rest of auth_pass
V3_MAX_ADVERT_INT = 40.95  # 12 bits of centiseconds
GLOBAL_ROUTER_ID = "neutrino"
RELOAD_SIGNAL = signal.SIGHUP
HEALTH_CHECK_FALL = 2
HEALTH_CHECK_RISE = 2
HOST_LINKS = "host_links"  # the track_file's name in keepalived.conf
# A keepalived configuration word ends at whitespace and `#`/`!` start comments; a path or
# password carrying one of these would be cut or misread, so the plan refuses them.
_UNSAFE = frozenset(" \t\n\r\"'#!{}\\")


@dataclass(frozen=True, order=True)
class Address:
    """An address keepalived adds on the primary node and removes on the others."""

    cidr: str  # e.g. 203.0.113.101/24; a floating IP is a /32
    device: str  # the router's device in its namespace (qr-..., qg-...)


@dataclass(frozen=True)
class HaPlan:
    """One HA router's keepalived on this node (see the module's docstring for the rules)."""

    router_id: str
    vrid: int  # 1..254, the router's VRRP id on the HA network
    ha_device: str  # the router's ha- device in its namespace
    ha_cidr: str  # this node's address on the HA network, e.g. 169.254.192.5/18
    priority: int = 50
    advert_int: float = 2  # seconds; fractional values switch to VRRPv3
    auth_password: str | None = None  # None or "": no authentication
    vrrp_version: int | None = None  # None: 2 for a whole advert_int, 3 otherwise
    excluded: tuple[Address, ...] = ()  # every real address of the router
    routes: tuple[Route, ...] = ()  # default route, on-link and extra routes
    garp_master_delay: int = 60  # seconds after becoming primary to send GARPs again
    # Seconds between gratuitous ARPs while primary (0: none): switches that learned the
    # router's MAC on another host's port (a healed partition) learn it back at once.
    garp_master_refresh: int = 0
    # The other nodes' HA addresses: adverts go to them alone (VRRP unicast) instead of
    # to the HA network's multicast group, which every router of the project shares, so
    # that a keepalived wakes for its own router's adverts only. Empty: multicast.
    unicast_peers: tuple[str, ...] = ()
    health_check_interval: int = 0  # seconds; 0: no health check
    health_check_script: str | None = None  # path of the script `health_check_text` writes
    notify_script: str | None = None  # called with: INSTANCE VR_<vrid> <STATE> <priority>
    conntrackd_script: str | None = None  # called with primary, backup or fault
    # A file of the agent's saying whether the host links every router here needs are up
    # (0) or not (non-zero: FAULT, the addresses given up); see `host_links`. None: none.
    track_file: str | None = None

    def __post_init__(self) -> None:
        # Refuse here what keepalived would round, ignore or misparse (it only warns, and a
        # router would run with settings nobody asked for).
        if not 1 <= self.vrid <= MAX_VRID:
            raise ValueError(f"router {self.router_id}: VRID {self.vrid} not in 1..{MAX_VRID}")
        if not 1 <= self.priority <= MAX_PRIORITY:
            raise ValueError(f"router {self.router_id}: priority {self.priority} "
                             f"not in 1..{MAX_PRIORITY}")
        if self.vrrp_version not in (None, 2, 3):
            raise ValueError(f"router {self.router_id}: VRRP version {self.vrrp_version}")
        self._check_advert_int()
        if self.health_check_interval < 0 or self.garp_master_delay < 0:
            raise ValueError(f"router {self.router_id}: negative interval or delay")
        self._check_addresses()
        self._check_words()

    def _check_addresses(self) -> None:
        try:
            ha_network = ipaddress.ip_interface(self.ha_cidr).network
            for address in self.excluded:
                ipaddress.ip_interface(address.cidr)
            for route in self.routes:
                _is_default(route.dst)
                if route.gateway:
                    ipaddress.ip_address(route.gateway)
        except ValueError as err:
            raise ValueError(f"router {self.router_id}: {err}") from None
        if ha_network.overlaps(ipaddress.ip_network(f"{VIP_PREFIX}.0/{VIP_PREFIXLEN}")):
            raise ValueError(f"router {self.router_id}: HA network {ha_network} overlaps "
                             f"the VRID addresses {VIP_PREFIX}.0/{VIP_PREFIXLEN}")

    def _check_words(self) -> None:
        if not self.ha_device:
            raise ValueError(f"router {self.router_id}: no HA device")
        for word in (self.router_id, self.ha_device, self.health_check_script, self.notify_script,
                     self.conntrackd_script, self.track_file, self.password,
                     *(a.device for a in self.excluded), *(r.dev for r in self.routes)):
            if word and _UNSAFE & set(word):
                raise ValueError(f"router {self.router_id}: {word!r} cannot be written "
                                 "in keepalived.conf")

    def _check_advert_int(self) -> None:
        interval = self.advert_int
        if self.version == 2:
            if interval != int(interval) or not 1 <= interval <= 255:
                raise ValueError(f"router {self.router_id}: VRRPv2 needs a whole advert_int "
                                 f"in 1..255 s, not {interval}")
        elif (not 0.01 <= interval <= V3_MAX_ADVERT_INT
              or abs(interval * 100 - round(interval * 100)) > 1e-6):
            raise ValueError(f"router {self.router_id}: VRRPv3 needs an advert_int in "
                             f"0.01..{V3_MAX_ADVERT_INT} s in steps of 0.01, not {interval}")

    @property
    def version(self) -> int:
        """The VRRP version rendered: as set, else 2 for a whole advert_int, 3 otherwise."""
        if self.vrrp_version is not None:
            return self.vrrp_version
        return 2 if self.advert_int == int(self.advert_int) else 3

    @property
    def password(self) -> str | None:
        """The password as rendered: its first 8 characters under VRRPv2, else None."""
        if not self.auth_password or self.version != 2:
            return None
        return self.auth_password[:AUTH_PASS_LEN]

    @property
    def password_ignored(self) -> bool:
        """A password is set but not rendered, VRRPv3 having no authentication."""
        return bool(self.auth_password) and self.version != 2

    @property
    def instance(self) -> str:
        """The vrrp_instance's name (keepalived passes it to the notify script)."""
        return f"VR_{self.vrid}"

    @property
    def health_check_name(self) -> str:
        """The vrrp_script's name."""
        return f"ha_health_check_{self.vrid}"

    @property
    def nexthops(self) -> tuple[tuple[str, str | None], ...]:
        """(nexthop, device) of every default route, the ones the health check pings."""
        return tuple((r.gateway, r.dev) for r in self.routes
                     if r.gateway and _is_default(r.dst))

    @property
    def health_checked(self) -> bool:
        """Whether keepalived runs the health check: an interval, a script, and a default
        route to check (without one the check could only ever succeed)."""
        return bool(self.health_check_interval > 0 and self.health_check_script
                    and self.nexthops)


@dataclass(frozen=True)
class Paths:
    """Where one router's keepalived keeps its files (a directory of its own)."""

    base: str

    @property
    def conf(self) -> str:
        """keepalived.conf."""
        return f"{self.base}/keepalived.conf"

    @property
    def pid(self) -> str:
        """The parent process's pid file."""
        return f"{self.base}/keepalived.pid"

    @property
    def vrrp_pid(self) -> str:
        """The VRRP child process's pid file."""
        return f"{self.base}/keepalived-vrrp.pid"

    @property
    def health_check(self) -> str:
        """The health-check script."""
        return f"{self.base}/ha_check_script.sh"


def vip_address(vrid: int) -> str:
    """The VRID's own address, the only one keepalived advertises: 169.254.0.<vrid>/24."""
    if not 1 <= vrid <= MAX_VRID:
        raise ValueError(f"VRID {vrid} not in 1..{MAX_VRID}")
    return f"{VIP_PREFIX}.{vrid}/{VIP_PREFIXLEN}"


def _is_default(dst: str) -> bool:
    return dst == "default" or ipaddress.ip_network(dst, strict=False).prefixlen == 0


def _seconds(value: float) -> str:
    return f"{value:g}"


def _block(name: str, body: list[str], indent: str = "    ") -> list[str]:
    return [f"{indent}{name} {{", *(f"{indent}    {line}" for line in body), f"{indent}}}"]


def _address_line(address: Address, ha_device: str) -> str:
    # No `scope link` for IPv6 link-local addresses: keepalived 2.2.7 refuses a scope on any
    # IPv6 address ("ignoring scope"), and the kernel gives fe80::/10 link scope anyway.
    line = f"{address.cidr} dev {address.device}"
    return line if address.device == ha_device else f"{line} no_track"


def _route_line(route: Route) -> str:
    dst = route.dst
    if dst == "default":
        dst = "::/0" if route.gateway and ":" in route.gateway else "0.0.0.0/0"
    parts = [dst]
    if route.gateway:
        parts.append(f"via {route.gateway}")
    if route.dev:
        parts.append(f"dev {route.dev}")
    if not route.gateway:
        parts.append("scope link")
    if route.table != MAIN_TABLE:
        parts.append(f"table {route.table}")
    return " ".join([*parts, "no_track protocol static"])


def _route_key(route: Route) -> tuple[str, str, str, int]:
    return (route.dst, route.gateway or "", route.dev or "", route.table)


def render(plan: HaPlan) -> str:
    """keepalived.conf for one router on this node."""
    lines = [f"# keepalived for HA router {plan.router_id}, written by neutrino.",
             "global_defs {",
             f"    router_id {GLOBAL_ROUTER_ID}",
             # Scripts are ours (the agent writes them, as root, in its own directory): run
             # them as root without keepalived looking for a keepalived_script user, and
             # refuse any that a non-root user could have replaced.
             "    script_user root",
             "    enable_script_security",
             "}"]
    if plan.health_checked:
        lines += ["", f"vrrp_script {plan.health_check_name} {{",
                  f"    script {plan.health_check_script}",
                  f"    interval {plan.health_check_interval}",
                  f"    fall {HEALTH_CHECK_FALL}",
                  f"    rise {HEALTH_CHECK_RISE}",
                  "}"]
    if plan.track_file:
        lines += ["", f"track_file {HOST_LINKS} {{", f"    file {plan.track_file}", "}"]
    lines += ["", f"vrrp_instance {plan.instance} {{", *_instance(plan), "}"]
    return "\n".join(lines) + "\n"


def _instance(plan: HaPlan) -> list[str]:
    body = ["    state BACKUP",
            f"    interface {plan.ha_device}",
            f"    virtual_router_id {plan.vrid}",
            f"    priority {plan.priority}",
            f"    version {plan.version}",
            f"    advert_int {_seconds(plan.advert_int)}",
            "    nopreempt",
            f"    garp_master_delay {plan.garp_master_delay}"]
    if plan.garp_master_refresh:
        body.append(f"    garp_master_refresh {plan.garp_master_refresh}")
    if plan.password is not None:
        body += _block("authentication", ["auth_type PASS", f"auth_pass {plan.password}"])
    elif plan.password_ignored:
        body.append("    # no authentication: VRRPv3 has none (the password is ignored)")
    # No `track_interface { ha-... }`: keepalived always tracks the instance's own interface
    # (FAULT when it goes down) and 2.2.7 warns that it ignores it there.
    if plan.health_checked:
        body += _block("track_script", [plan.health_check_name])
    if plan.track_file:
        # Weight 0: any non-zero value puts the instance in FAULT (not a priority change).
        body += _block("track_file", [f"{HOST_LINKS} weight 0"])
    if plan.notify_script:
        body.append(f"    notify {plan.notify_script}")
    if plan.conntrackd_script:
        # A quoted command is split into words by keepalived: the script, then the state.
        body += [f'    notify_master "{plan.conntrackd_script} primary"',
                 f'    notify_backup "{plan.conntrackd_script} backup"',
                 f'    notify_fault "{plan.conntrackd_script} fault"']
    if plan.unicast_peers:
        own = str(ipaddress.ip_interface(plan.ha_cidr).ip)
        body.append(f"    unicast_src_ip {own}")
        body += _block("unicast_peer", sorted(set(plan.unicast_peers),
                                              key=ipaddress.ip_address))
    body += _block("virtual_ipaddress", [f"{vip_address(plan.vrid)} dev {plan.ha_device}"])
    if plan.excluded:
        body += _block("virtual_ipaddress_excluded",
                       [_address_line(a, plan.ha_device) for a in sorted(set(plan.excluded))])
    if plan.routes:
        body += _block("virtual_routes",
                       [_route_line(r) for r in sorted(set(plan.routes), key=_route_key)])
    return body


def health_check_text(plan: HaPlan) -> str:
    """The health-check script keepalived runs in the router's namespace: success on a
    node that does not hold the router (its first address absent), else a ping of each
    default route's nexthop, failing on the first that does not answer."""
    lines = ["#!/bin/sh",
             f"# Health check of HA router {plan.router_id} (VRID {plan.vrid}), "
             "run by keepalived; written by neutrino."]
    first = min(plan.excluded, default=None)
    if first is None or not plan.nexthops:
        return "\n".join([*lines, "exit 0"]) + "\n"
    host = ipaddress.ip_interface(first.cidr)
    # `to ADDRESS/32` (or /128) matches the address whatever its prefix length on the device.
    lines += ["# A backup holds none of the router's addresses: nothing to check there.",
              f'[ -n "$(ip -o addr show dev {first.device} to '
              f'{host.ip}/{host.max_prefixlen})" ] || exit 0']
    for nexthop, device in plan.nexthops:
        # A link-local nexthop is only reachable through its device.
        scoped = device is not None and ipaddress.ip_address(nexthop).is_link_local
        via = f"-I {device} " if scoped else ""
        lines.append(f"ping -c 1 -w 1 {via}{nexthop} >/dev/null 2>&1 || exit 1")
    return "\n".join([*lines, "exit 0"]) + "\n"


def command(paths: Paths, foreground: bool = False) -> list[str]:
    """keepalived's command line for one router.

    `-P` runs only the VRRP process, `-B` no BFD process: otherwise keepalived also looks
    for a running BFD child by the shared default /run/bfd.pid. `-f`, `-p` and `-r` keep
    the configuration and both pid files in the router's directory, so that routers never
    share a file, and with `-f` keepalived reads nothing under /etc/keepalived. `-D` logs
    each transition and its cause. Detached (the default), keepalived points its standard
    streams at /dev/null as it forks, so it logs to syslog only; `foreground` adds `-n -l`
    (stay attached, log to the console) for a supervisor or a person that reads its output.
    """
    args = ["keepalived", "-P", "-B", "-D", "-f", paths.conf, "-p", paths.pid,
            "-r", paths.vrrp_pid]
    return [*args, "-n", "-l"] if foreground else args


def daemon(plan: HaPlan, paths: Paths, namespace: str | None) -> Daemon:
    """The detached keepalived of a router for `process.Daemons` (reload: RELOAD_SIGNAL).

    keepalived refuses to start while either pid file names a live process, and a zombie
    counts as live (it probes with kill(pid, 0)): the agent, subreaper of its daemons,
    collects a dead keepalived before starting the next (`Daemons.dead` does)."""
    return Daemon(f"keepalived for router {plan.router_id}", tuple(command(paths)),
                  paths.pid, paths.conf, namespace)
