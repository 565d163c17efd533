"""Narrow, idempotent operations on one network namespace: links, forwarding entries,
addresses, routes, rules, neighbours and sysctls, through netlink (pyroute2).

Each call either makes something so (may-exist) or removes it (if-exists) and says whether it
changed anything. In a namespace neutrino did not make (a host's own), no link whose name
lacks one of the registry's prefixes is ever changed, so a bug here cannot reach the
machine's own interfaces; routes, rules and sysctls are only ever written in namespaces
neutrino made (`owned=True`). Kernel errors become our exceptions in `translate`, the one
errno map:

    KernelError            anything the kernel refused
    ├── NotFound           ENODEV, ENOENT, ESRCH, ENXIO: the thing (or namespace) is not there
    ├── AlreadyExists      EEXIST
    └── NotOwned           refused here: not ours to touch
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netaddr
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.agent.linux import netns
from neutrino.registry import OWNED_PREFIXES

LOG = logging.getLogger(__name__)
VXLAN_PORT = 4789
ZERO_MAC = "00:00:00:00:00:00"
MAIN_TABLE = 254
PROTO_KERNEL = 2
PROTO_STATIC = 4  # routes we add carry it, so that kernel-made ones are told apart
RTN_UNICAST = 1
NUD_PERMANENT = 0x80
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000


class KernelError(Exception):
    """The kernel refused a request, or it was refused here."""


class NotFound(KernelError):
    """What the request names does not exist."""


class AlreadyExists(KernelError):
    """What the request makes exists already."""


class NotOwned(KernelError):
    """Refused: the thing is not neutrino's to change."""


_ERRNO = {errno.ENODEV: NotFound, errno.ENOENT: NotFound, errno.ESRCH: NotFound,
          errno.ENXIO: NotFound, errno.EEXIST: AlreadyExists}


def translate(err: BaseException, what: str) -> KernelError:
    """Our exception for a kernel error code (netlink or OS)."""
    code = getattr(err, "code", None) or getattr(err, "errno", None)
    cls = _ERRNO.get(code or 0, KernelError)
    return cls(f"{what}: {err}")


@dataclass(frozen=True)
class Link:
    """What the drivers need to know of a link."""

    name: str
    index: int
    kind: str | None
    master: int | None
    up: bool
    vni: int | None = None
    local: str | None = None
    mac: str | None = None
    mtu: int | None = None
    carrier: bool = True  # the lower layer is up (IFF_LOWER_UP): a cable, a veth's peer


@dataclass(frozen=True, order=True)
class Route:
    """A route in a table: to `dst` (a CIDR, `default` for 0.0.0.0/0) via `gateway` and/or out
    of `dev`."""

    dst: str
    gateway: str | None = None
    dev: str | None = None
    table: int = MAIN_TABLE


@dataclass(frozen=True, order=True)
class Rule:
    """A policy rule: packets from `src` (or arriving on `iif`) look up `table`."""

    priority: int
    table: int
    src: str | None = None
    iif: str | None = None


@dataclass(frozen=True, order=True)
class Neighbour:
    """A permanent neighbour entry."""

    dev: str
    ip: str
    mac: str


def owned(name: str) -> bool:
    """Whether neutrino may change or delete a link of this name outside its namespaces."""
    return name.startswith(OWNED_PREFIXES)


def _same(current: Route, wanted: Route) -> bool:
    return (current.dst, current.gateway, current.table) == \
        (wanted.dst, wanted.gateway, wanted.table) and wanted.dev in (None, current.dev)


def _dst(msg: Any) -> str:
    dst = msg.get_attr("RTA_DST")
    if dst is None:
        return "default"
    return str(netaddr.IPNetwork(f"{dst}/{msg['dst_len']}"))


class Kernel:
    """One namespace (None: the calling thread's own).

    `owned`: neutrino made the namespace, so every link in it is its own and routes, rules
    and sysctls may be written there. `session()` keeps one netlink socket for a series of
    calls from one thread; otherwise each call opens its own.
    """

    def __init__(self, namespace: str | None = None, *, owned: bool = False) -> None:
        self.netns = namespace
        self.owned = owned
        self._local = threading.local()

    @property
    def where(self) -> str:
        """The namespace's name, for messages."""
        return self.netns or "this namespace"

    # -- sockets and guards -------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Kernel]:
        """Reuse one netlink socket for the calls made within the block (this thread)."""
        if getattr(self._local, "ipr", None) is not None:
            yield self
            return
        self._local.ipr = self._open()
        try:
            yield self
        finally:
            self._local.ipr.close()
            self._local.ipr = None

    def _open(self) -> IPRoute:
        try:
            return netns.iproute(self.netns)
        except netns.NamespaceError as err:
            raise NotFound(f"no namespace {self.netns}: {err}") from err
        except (OSError, NetlinkError) as err:
            raise translate(err, f"netlink in {self.where}") from err

    @contextmanager
    def _ipr(self, what: str = "netlink") -> Iterator[IPRoute]:
        shared = getattr(self._local, "ipr", None)
        ipr = shared or self._open()
        try:
            yield ipr
        except NetlinkError as err:
            raise translate(err, f"{what} in {self.where}") from err
        finally:
            if shared is None:
                ipr.close()

    def _guard(self, name: str) -> None:
        if not self.owned and not owned(name):
            raise NotOwned(f"refusing to touch {name!r} in {self.where}: not a link "
                           "neutrino owns")

    def _guard_namespace(self, what: str) -> None:
        if not self.owned:
            raise NotOwned(f"refusing to change {what} in {self.where}: only in namespaces "
                           "neutrino made")

    def _index(self, ipr: IPRoute, name: str) -> int:
        found = ipr.link_lookup(ifname=name)
        if not found:
            raise NotFound(f"no link {name} in {self.where}")
        return int(found[0])

    # -- links ----------------------------------------------------------------------------

    @staticmethod
    def _link_of(msg: Any) -> Link:
        info = msg.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        vni = local = None
        if kind == "vxlan":
            data = info.get_attr("IFLA_INFO_DATA")
            vni = data.get_attr("IFLA_VXLAN_ID")
            local = data.get_attr("IFLA_VXLAN_LOCAL")
        return Link(msg.get_attr("IFLA_IFNAME"), msg["index"], kind, msg.get_attr("IFLA_MASTER"),
                    bool(msg["flags"] & IFF_UP), vni, local, msg.get_attr("IFLA_ADDRESS"),
                    msg.get_attr("IFLA_MTU"), bool(msg["flags"] & IFF_LOWER_UP))

    def links(self, details: bool = True) -> dict[str, Link]:
        """Every link of the namespace, by name.

        A namespace neutrino made holds a few links (a DHCP port, a router's ports): one
        netlink dump. A host's namespace may hold thousands, where pyroute2 takes 0.4 ms to
        parse each (1.2 s for 3,000) and iproute2's JSON output 20 ms for all of them, and
        agents read a host's links on every look for drift: there, iproute2 reads them.
        Without `details` (enough to tell what is in which bridge, and up) iproute2 leaves
        the kinds and VXLAN attributes out: a third of the text to parse, on every look."""
        if self.owned:
            with self._ipr("listing links") as ipr:
                return {link.name: link for link in map(self._link_of, ipr.get_links())}
        argv = ["ip", "-j", "-d", "link", "show"] if details else ["ip", "-j", "link", "show"]
        result = netns.run(self.netns, argv, timeout=30)
        if result.returncode != 0:
            if not netns.exists(self.netns or "") and self.netns is not None:
                raise NotFound(f"no namespace {self.netns}")
            raise KernelError(f"listing links in {self.where}: {result.stderr.strip()}")
        raw = json.loads(result.stdout or "[]")
        index = {item["ifname"]: item["ifindex"] for item in raw}
        out = {}
        for item in raw:
            info = item.get("linkinfo") or {}
            data = info.get("info_data") or {}
            kind = info.get("info_kind")
            out[item["ifname"]] = Link(
                item["ifname"], item["ifindex"], kind, index.get(item.get("master", "")),
                "UP" in item.get("flags", []), data.get("id") if kind == "vxlan" else None,
                data.get("local") if kind == "vxlan" else None, item.get("address"),
                item.get("mtu"), "LOWER_UP" in item.get("flags", []))
        return out

    def link(self, name: str) -> Link | None:
        """One link by name (None if absent): one request, not a dump of every link, which
        matters in a host's namespace with a thousand taps."""
        with self._ipr(f"reading {name}") as ipr:
            try:
                return self._link_of(ipr.link("get", ifname=name)[0])
            except NetlinkError as err:
                if err.code in (errno.ENODEV, errno.ENOENT):
                    return None
                raise

    def ensure_bridge(self, name: str) -> bool:
        """A bridge named `name`, up; True if something changed."""
        self._guard(name)
        current = self.link(name)
        changed = False
        with self._ipr(f"making bridge {name}") as ipr:
            if current is None:
                ipr.link("add", ifname=name, kind="bridge")
                LOG.info("Created bridge %s in %s", name, self.where)
                current = self.link(name)
                assert current is not None
                changed = True
            if not current.up:
                ipr.link("set", index=current.index, state="up")
                changed = True
        return changed

    def ensure_vxlan(self, name: str, vni: int, local_ip: str, bridge: str,
                     remotes: set[str]) -> bool:
        """A unicast VXLAN device (no learning, no multicast) in `bridge`, up, flooding to
        exactly `remotes`."""
        self._guard(name)
        current = self.link(name)
        changed = False
        with self._ipr(f"making {name}") as ipr:
            if current is not None and (current.vni != vni or current.local != local_ip):
                ipr.link("del", index=current.index)
                current, changed = None, True
            if current is None:
                ipr.link("add", ifname=name, kind="vxlan", vxlan_id=vni,
                         vxlan_local=local_ip, vxlan_port=VXLAN_PORT, vxlan_learning=0)
                LOG.info("Created %s (VNI %d, local %s) in %s", name, vni, local_ip,
                         self.where)
                changed = True
        changed |= self.ensure_in_bridge(name, bridge)
        # A device made just now has no flooding entries: they are not read back.
        return self.ensure_remotes(name, remotes,
                                   assume=set() if current is None else None) or changed

    def ensure_veth(self, name: str, peer: str, peer_netns: str | None) -> bool:
        """A veth pair `name` (here) / `peer` (in `peer_netns`), made directly in both
        namespaces; an existing `name` is kept. Both ends are left down."""
        self._guard(name)
        with self._ipr(f"making veth {name}") as ipr:
            if ipr.link_lookup(ifname=name):
                return False
            peer_spec: dict[str, Any] = {"ifname": peer}
            if peer_netns is not None:
                peer_spec["net_ns_fd"] = peer_netns
            ipr.link("add", ifname=name, kind="veth", peer=peer_spec)
        LOG.info("Created veth %s in %s, peer %s in %s", name, self.where, peer,
                 peer_netns or self.where)
        return True

    def ensure_link(self, name: str, *, up: bool = True, mac: str | None = None,
                    mtu: int | None = None) -> bool:
        """A link's state, MAC and MTU as given (None: left as they are)."""
        self._guard(name)
        link = self.link(name)
        if link is None:
            raise NotFound(f"no link {name} in {self.where}")
        changes: dict[str, Any] = {}
        if mac is not None and (link.mac or "").lower() != mac.lower():
            changes["address"] = mac
        if mtu is not None and link.mtu != mtu:
            changes["mtu"] = mtu
        if link.up != up:
            changes["state"] = "up" if up else "down"
        if not changes:
            return False
        with self._ipr(f"setting {name}") as ipr:
            ipr.link("set", index=link.index, **changes)
        return True

    def ensure_in_bridge(self, name: str, bridge: str) -> bool:
        """Make `name` a port of `bridge`, up; True if something changed."""
        self._guard(name)
        link, master = self.link(name), self.link(bridge)
        if link is None or master is None:
            raise NotFound(f"cannot plug {name} into {bridge} in {self.where}: missing")
        changed = False
        with self._ipr(f"plugging {name}") as ipr:
            if link.master != master.index:
                ipr.link("set", index=link.index, master=master.index)
                changed = True
            if not link.up:
                ipr.link("set", index=link.index, state="up")
                changed = True
        return changed

    def ensure_out_of_bridge(self, name: str, bridge: str) -> bool:
        """Take `name` out of `bridge` if it is in it; True if it was."""
        self._guard(name)
        link, master = self.link(name), self.link(bridge)
        if link is None or master is None or link.master != master.index:
            return False
        with self._ipr(f"unplugging {name}") as ipr:
            ipr.link("set", index=link.index, master=0)
        LOG.info("Unplugged %s from %s in %s", name, bridge, self.where)
        return True

    def ensure_uplink(self, name: str, bridge: str) -> bool:
        """Enslave the operator's interface `name` to `bridge` (a flat network's uplink).

        The interface is not neutrino's: it is never created, renamed, moved or deleted, and
        it is refused outright when it carries addresses or routes — enslaving such an
        interface (a host's `eth0`) would cut the host off its network.
        """
        self._guard(bridge)
        link, master = self.link(name), self.link(bridge)
        if link is None or master is None:
            raise NotFound(f"cannot plug uplink {name} into {bridge}: missing")
        if link.master == master.index:
            return False
        if link.master is not None:
            raise NotOwned(f"refusing uplink {name}: it is already in another bridge")
        with self._ipr(f"plugging uplink {name}") as ipr:
            addresses = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=link.index)
                         if a["scope"] == 0]
            # Routes someone put there (the kernel's own, such as IPv6 link-local ones,
            # come and go with the link and its addresses).
            routes = [r for r in ipr.get_routes(oif=link.index)
                      if r["proto"] != PROTO_KERNEL and r["type"] == RTN_UNICAST]
            if addresses or routes:
                raise NotOwned(f"refusing uplink {name}: it carries addresses or routes "
                               f"({', '.join(addresses) or 'routes'}); map an interface "
                               "reserved for the physical network")
            ipr.link("set", index=link.index, master=master.index)
            if not link.up:
                ipr.link("set", index=link.index, state="up")
        LOG.info("Plugged uplink %s into %s in %s", name, bridge, self.where)
        return True

    def delete(self, name: str) -> bool:
        """Remove a link if it exists; True if it did."""
        self._guard(name)
        with self._ipr(f"deleting {name}") as ipr:
            index = ipr.link_lookup(ifname=name)
            if not index:
                return False
            try:
                ipr.link("del", index=index[0])
            except NetlinkError as err:
                if err.code == errno.ENODEV:  # gone meanwhile
                    return False
                raise
        LOG.info("Deleted %s in %s", name, self.where)
        return True

    # -- forwarding entries ---------------------------------------------------------------

    def fdb_remotes(self, ifname: str) -> set[str]:
        """The remote endpoints of a VXLAN device's default (all-zero MAC) entries.

        Read with iproute2's JSON output, filtered by device in the kernel: pyroute2 dumps
        every entry of every bridge of the host and parses them (60 ms with 400 networks)."""
        result = netns.run(self.netns, ["bridge", "-j", "fdb", "show", "dev", ifname],
                           timeout=30)
        if result.returncode != 0:
            if "does not exist" in result.stderr or "Cannot find device" in result.stderr:
                return set()
            raise KernelError(f"reading {ifname}'s forwarding entries in {self.where}: "
                              f"{result.stderr.strip()}")
        return {entry["dst"] for entry in json.loads(result.stdout or "[]")
                if entry.get("mac") == ZERO_MAC and entry.get("dst")}

    def ensure_remotes(self, name: str, remotes: set[str],
                       assume: set[str] | None = None) -> bool:
        """Exactly these flooding entries (all-zero MAC, one per remote) on a VXLAN device.
        `assume`: the entries the caller knows are there (it put them there, or made the
        device just now: none). Then they are not read (reading runs `bridge`, tens of
        milliseconds in a host namespace with a thousand links, 40 % of a new network's
        cost when a host starts with hundreds of them): only the difference is applied."""
        self._guard(name)
        current = set(assume) if assume is not None else self.fdb_remotes(name)
        if current == remotes:
            return False
        with self._ipr(f"flooding entries of {name}") as ipr:
            index = self._index(ipr, name)
            for dst in sorted(remotes - current):
                ipr.fdb("append", ifindex=index, lladdr=ZERO_MAC, dst=dst)
            for dst in sorted(current - remotes):
                ipr.fdb("del", ifindex=index, lladdr=ZERO_MAC, dst=dst)
        return True

    # -- addresses ------------------------------------------------------------------------

    def addresses(self, name: str) -> set[str]:
        """The global-scope addresses of a link, as CIDRs (`10.0.0.1/24`)."""
        with self._ipr(f"reading addresses of {name}") as ipr:
            return self._addresses(ipr, self._index(ipr, name))

    @staticmethod
    def _addresses(ipr: IPRoute, index: int) -> set[str]:
        return {f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                for a in ipr.get_addr(index=index) if a["scope"] == 0}

    def ensure_addresses(self, name: str, wanted: Iterable[str],
                         assume: Iterable[str] | None = None) -> bool:
        """Exactly these global-scope addresses (CIDRs) on a link; True if it changed.

        `assume`: what the caller knows is there (it put it there): only the difference is
        applied, without reading the link's addresses back — one floating IP more on a
        router with a thousand costs one request, not a dump of a thousand. The caller reads
        them back (no `assume`) now and then, so that drift is still repaired."""
        self._guard(name)
        wanted_set = {str(netaddr.IPNetwork(c)) for c in wanted}
        assumed = None if assume is None else {str(netaddr.IPNetwork(c)) for c in assume}
        if assumed == wanted_set:
            return False  # nothing to ask the kernel
        with self._ipr(f"addresses of {name}") as ipr:
            index = self._index(ipr, name)
            current = self._addresses(ipr, index) if assumed is None else assumed
            if current == wanted_set:
                return False
            for cidr in sorted(current - wanted_set):
                address, prefix = cidr.split("/")
                try:
                    ipr.addr("del", index=index, address=address, prefixlen=int(prefix))
                except NetlinkError as err:
                    if assume is None or err.code != errno.EADDRNOTAVAIL:
                        raise
            for cidr in sorted(wanted_set - current):
                address, prefix = cidr.split("/")
                try:
                    ipr.addr("add", index=index, address=address, prefixlen=int(prefix))
                except NetlinkError as err:
                    if assume is None or err.code != errno.EEXIST:
                        raise
        return True

    # -- routes ---------------------------------------------------------------------------

    def routes(self, table: int = MAIN_TABLE) -> set[Route]:
        """The IPv4 unicast routes of a table that neutrino added (protocol static).

        Read with iproute2, which asks the kernel for that table and protocol only: pyroute2
        reads every table, the local one included, where each floating IP of a router has
        a route (a second for a thousand)."""
        result = netns.run(self.netns, ["ip", "-j", "-4", "route", "show", "table",
                                        str(table), "proto", "static"], timeout=30)
        if result.returncode != 0:
            if "table does not exist" in result.stderr:
                return set()  # no route was ever put there
            raise KernelError(f"reading routes of table {table} in {self.where}: "
                              f"{result.stderr.strip()}")
        out = set()
        for entry in json.loads(result.stdout or "[]"):
            if entry.get("type", "unicast") != "unicast":
                continue
            dst = entry["dst"] if entry["dst"] == "default" else \
                str(netaddr.IPNetwork(entry["dst"]))
            out.add(Route(dst, entry.get("gateway"), entry.get("dev"), table))
        return out

    def ensure_routes(self, wanted: Iterable[Route], tables: Iterable[int] = (MAIN_TABLE,)
                      ) -> bool:
        """Exactly these static routes in these tables (kernel-made routes are left alone).

        A wanted route without a device matches a route to the same place via the same
        gateway out of any device (the kernel fills the device in)."""
        self._guard_namespace("routes")
        want = set(wanted)
        changed = False
        for table in sorted(set(tables) | {r.table for r in want}):
            current = self.routes(table)
            mine = {r for r in want if r.table == table}
            kept = {c for c in current if any(_same(c, w) for w in mine)}
            missing = {w for w in mine if not any(_same(c, w) for c in current)}
            stale = current - kept
            if not missing and not stale:
                continue
            with self._ipr(f"routes of table {table}") as ipr:
                for route in sorted(stale):
                    ipr.route("del", **self._route_args(ipr, route))
                for route in sorted(missing):
                    ipr.route("replace", **self._route_args(ipr, route))
            changed = True
        return changed

    def _route_args(self, ipr: IPRoute, route: Route) -> dict[str, Any]:
        args: dict[str, Any] = {"dst": "0.0.0.0/0" if route.dst == "default" else route.dst,
                                "table": route.table, "proto": PROTO_STATIC}
        if route.gateway:
            args["gateway"] = route.gateway
        if route.dev:
            args["oif"] = self._index(ipr, route.dev)
        return args

    # -- rules ----------------------------------------------------------------------------

    def rules(self) -> set[Rule]:
        """The IPv4 policy rules other than the kernel's three defaults."""
        out = set()
        with self._ipr("reading rules") as ipr:
            for msg in ipr.get_rules(family=2):
                priority = msg.get_attr("FRA_PRIORITY") or 0
                if priority in (0, 32766, 32767):
                    continue
                src = msg.get_attr("FRA_SRC")
                out.add(Rule(priority, msg.get_attr("FRA_TABLE") or msg["table"],
                             f"{src}/{msg['src_len']}" if src else None,
                             msg.get_attr("FRA_IIFNAME")))
        return out

    def ensure_rules(self, wanted: Iterable[Rule]) -> bool:
        """Exactly these policy rules (besides the kernel's defaults)."""
        self._guard_namespace("rules")
        want, current = set(wanted), self.rules()
        if want == current:
            return False
        with self._ipr("rules") as ipr:
            for rule in sorted(current - want):
                ipr.rule("del", **self._rule_args(rule))
            for rule in sorted(want - current):
                ipr.rule("add", **self._rule_args(rule))
        return True

    @staticmethod
    def _rule_args(rule: Rule) -> dict[str, Any]:
        args: dict[str, Any] = {"family": 2, "priority": rule.priority, "table": rule.table}
        if rule.src:
            net = netaddr.IPNetwork(rule.src)
            args.update(src=str(net.ip), src_len=net.prefixlen)
        if rule.iif:
            args["iifname"] = rule.iif
        return args

    # -- neighbours -----------------------------------------------------------------------

    def neighbours(self, name: str) -> set[Neighbour]:
        """The permanent IPv4 neighbour entries of a link."""
        with self._ipr(f"reading neighbours of {name}") as ipr:
            index = self._index(ipr, name)
            return {Neighbour(name, n.get_attr("NDA_DST"), n.get_attr("NDA_LLADDR"))
                    for n in ipr.get_neighbours(family=2, ifindex=index)
                    if n["state"] & NUD_PERMANENT and n.get_attr("NDA_LLADDR")}

    def ensure_neighbours(self, name: str, wanted: Iterable[Neighbour]) -> bool:
        """Exactly these permanent neighbour entries on a link."""
        self._guard(name)
        want, current = set(wanted), self.neighbours(name)
        if want == current:
            return False
        with self._ipr(f"neighbours of {name}") as ipr:
            index = self._index(ipr, name)
            for entry in sorted(current - want):
                ipr.neigh("del", dst=entry.ip, lladdr=entry.mac, ifindex=index)
            for entry in sorted(want - current):
                ipr.neigh("replace", dst=entry.ip, lladdr=entry.mac, ifindex=index,
                          state=NUD_PERMANENT)
        return True

    # -- sysctls --------------------------------------------------------------------------

    def sysctls(self, keys: Iterable[str]) -> dict[str, str]:
        """Network sysctls of the namespace (`net.ipv4.ip_forward`), as text."""
        out = {}
        with netns.entered(self.netns):
            for key in keys:
                out[key] = Path("/proc/sys", *key.split(".")).read_text().strip()
        return out

    def ensure_sysctls(self, wanted: dict[str, str]) -> bool:
        """These network sysctls in a namespace neutrino made; True if any changed.

        /proc/sys/net shows the namespace of the thread that opens the file, so the thread
        enters the namespace for the reads and writes; the root namespace is never written."""
        self._guard_namespace("sysctls")
        if self.netns is None:
            raise NotOwned("refusing to write sysctls outside a named namespace")
        changed = False
        try:
            with netns.entered(self.netns):
                for key, value in sorted(wanted.items()):
                    if not key.startswith("net."):
                        raise NotOwned(f"refusing sysctl {key}: only net.* per namespace")
                    target = Path("/proc/sys", *key.split("."))
                    if target.read_text().strip() != str(value):
                        target.write_text(str(value))
                        changed = True
        except OSError as err:
            raise translate(err, f"sysctls in {self.where}") from err
        return changed


def summary(kernel: Kernel) -> dict[str, Link]:
    """The owned links of a namespace with their attributes (for tests and diagnostics)."""
    return {name: link for name, link in kernel.links().items() if owned(name)}
