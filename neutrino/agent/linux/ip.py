"""Narrow, idempotent operations on links and forwarding entries, in one network namespace.

Each call either makes something so (may-exist) or removes it (if-exists); none touches a
link whose name does not carry one of neutrino's prefixes, so a bug here cannot reach the
machine's own interfaces. Kernel errors become `KernelError`, in this one place.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

LOG = logging.getLogger(__name__)
# Names neutrino creates, as Neutron names them; nothing else is ever modified or deleted.
OWNED_PREFIXES = ("brq", "vxlan-", "tap", "ns-")
VXLAN_PORT = 4789
ZERO_MAC = "00:00:00:00:00:00"


CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class KernelError(Exception):
    """A netlink request failed."""


def iproute(netns: str | None = None) -> IPRoute:
    """A netlink socket in a named namespace (None: this thread's own).

    The calling thread enters the namespace just long enough to open the socket, which stays
    bound to it; pyroute2's own `IPRoute(netns=...)` forks a helper process per socket
    instead, ten times slower, and a cost paid for every network on a host.
    """
    if netns is None:
        return IPRoute()
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        except FileNotFoundError as err:
            raise KernelError(f"no network namespace {netns}") from err
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise KernelError(f"cannot enter {netns}: {os.strerror(ctypes.get_errno())}")
            try:
                return IPRoute()
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:  # never go on in the wrong place
                    os.abort()
        finally:
            os.close(target)
    finally:
        os.close(own)


def create_namespace(name: str) -> None:
    """A named network namespace, made as `ip netns add` makes it (kept if it exists)."""
    if os.path.exists(f"/run/netns/{name}"):
        return
    result = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                            timeout=30, check=False)
    if result.returncode != 0 and not os.path.exists(f"/run/netns/{name}"):
        raise KernelError(f"cannot create namespace {name}: {result.stderr.strip()}")


@dataclass(frozen=True)
class Link:
    """What the driver needs to know of a link."""

    name: str
    index: int
    kind: str | None
    master: int | None
    up: bool
    vni: int | None = None
    local: str | None = None


def owned(name: str) -> bool:
    """Whether neutrino may change or delete a link of this name."""
    return name.startswith(OWNED_PREFIXES)


def _guard(name: str) -> None:
    if not owned(name):
        raise KernelError(f"refusing to touch {name!r}: not a link neutrino owns")


class Kernel:
    """Links and forwarding entries of one namespace (None: the current one)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns

    @contextmanager
    def _ipr(self) -> Iterator[IPRoute]:
        try:
            ipr = iproute(self.netns)
        except (OSError, NetlinkError) as err:
            raise KernelError(f"cannot open netlink in {self.netns or 'this namespace'}: "
                              f"{err}") from err
        try:
            yield ipr
        except NetlinkError as err:
            raise KernelError(f"netlink in {self.netns or 'this namespace'}: {err}") from err
        finally:
            ipr.close()

    # -- reading ------------------------------------------------------------------------

    def links(self) -> dict[str, Link]:
        """Every link of the namespace, by name."""
        out = {}
        with self._ipr() as ipr:
            for msg in ipr.get_links():
                name = msg.get_attr("IFLA_IFNAME")
                info = msg.get_attr("IFLA_LINKINFO")
                kind = info.get_attr("IFLA_INFO_KIND") if info else None
                vni = local = None
                if kind == "vxlan":
                    data = info.get_attr("IFLA_INFO_DATA")
                    vni = data.get_attr("IFLA_VXLAN_ID")
                    local = data.get_attr("IFLA_VXLAN_LOCAL")
                out[name] = Link(name, msg["index"], kind, msg.get_attr("IFLA_MASTER"),
                                 bool(msg["flags"] & 1), vni, local)
        return out

    def fdb_remotes(self, ifname: str) -> set[str]:
        """The remote endpoints of a VXLAN device's default (all-zero MAC) entries."""
        remotes = set()
        with self._ipr() as ipr:
            index = ipr.link_lookup(ifname=ifname)
            if not index:
                return set()
            for entry in ipr.fdb("dump", ifindex=index[0]):
                if entry.get_attr("NDA_LLADDR") == ZERO_MAC and entry.get_attr("NDA_DST"):
                    remotes.add(entry.get_attr("NDA_DST"))
        return remotes

    # -- making -------------------------------------------------------------------------

    def ensure_bridge(self, name: str) -> bool:
        """A bridge named `name`, up; True if something changed."""
        _guard(name)
        current = self.links().get(name)
        with self._ipr() as ipr:
            if current is None:
                ipr.link("add", ifname=name, kind="bridge")
                LOG.info("Created bridge %s in %s", name, self.netns or "this namespace")
                current = self.links()[name]
                changed = True
            else:
                changed = False
            if not current.up:
                ipr.link("set", index=current.index, state="up")
                changed = True
        return changed

    def ensure_vxlan(self, name: str, vni: int, local_ip: str, bridge: str) -> bool:
        """A unicast VXLAN device (no learning, no multicast) in `bridge`, up."""
        _guard(name)
        links = self.links()
        current = links.get(name)
        changed = False
        with self._ipr() as ipr:
            if current is not None and (current.vni != vni or current.local != local_ip):
                ipr.link("del", index=current.index)
                current, changed = None, True
            if current is None:
                ipr.link("add", ifname=name, kind="vxlan", vxlan_id=vni,
                         vxlan_local=local_ip, vxlan_port=VXLAN_PORT, vxlan_learning=0)
                LOG.info("Created %s (VNI %d, local %s) in %s", name, vni, local_ip,
                         self.netns or "this namespace")
                changed = True
        changed |= self.ensure_in_bridge(name, bridge)
        return changed

    def ensure_in_bridge(self, name: str, bridge: str) -> bool:
        """Make `name` a port of `bridge`, up; True if something changed."""
        _guard(name)
        links = self.links()
        link, master = links.get(name), links.get(bridge)
        if link is None or master is None:
            raise KernelError(f"cannot plug {name} into {bridge}: missing")
        changed = False
        with self._ipr() as ipr:
            if link.master != master.index:
                ipr.link("set", index=link.index, master=master.index)
                changed = True
            if not link.up:
                ipr.link("set", index=link.index, state="up")
                changed = True
        return changed

    def ensure_uplink(self, name: str, bridge: str) -> bool:
        """Enslave the operator's interface `name` to `bridge` (a flat network's uplink).

        The interface is not neutrino's: it is never created, renamed, moved or deleted, and
        it is refused outright when it carries addresses or routes — enslaving such an
        interface (a host's `eth0`) would cut the host off its network.
        """
        _guard(bridge)
        links = self.links()
        link, master = links.get(name), links.get(bridge)
        if link is None or master is None:
            raise KernelError(f"cannot plug uplink {name} into {bridge}: missing")
        if link.master == master.index:
            return False
        if link.master is not None:
            raise KernelError(f"refusing uplink {name}: it is already in another bridge")
        with self._ipr() as ipr:
            addresses = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(index=link.index)
                         if a["scope"] == 0]
            routes = ipr.get_routes(oif=link.index)
            if addresses or routes:
                raise KernelError(f"refusing uplink {name}: it carries addresses or routes "
                                  f"({', '.join(addresses) or 'routes'}); map an interface "
                                  "reserved for the physical network")
            ipr.link("set", index=link.index, master=master.index)
            if not link.up:
                ipr.link("set", index=link.index, state="up")
        LOG.info("Plugged uplink %s into %s in %s", name, bridge, self.netns or "this namespace")
        return True

    def ensure_remotes(self, name: str, remotes: set[str]) -> bool:
        """Exactly these flooding entries (all-zero MAC, one per remote) on a VXLAN device."""
        _guard(name)
        current = self.fdb_remotes(name)
        if current == remotes:
            return False
        with self._ipr() as ipr:
            index = ipr.link_lookup(ifname=name)[0]
            for dst in sorted(remotes - current):
                ipr.fdb("append", ifindex=index, lladdr=ZERO_MAC, dst=dst)
            for dst in sorted(current - remotes):
                ipr.fdb("del", ifindex=index, lladdr=ZERO_MAC, dst=dst)
        return True

    def delete(self, name: str) -> bool:
        """Remove a link if it exists; True if it did."""
        _guard(name)
        with self._ipr() as ipr:
            index = ipr.link_lookup(ifname=name)
            if not index:
                return False
            try:
                ipr.link("del", index=index[0])
            except NetlinkError as err:
                if err.code == errno.ENODEV:  # gone meanwhile
                    return False
                raise
        LOG.info("Deleted %s in %s", name, self.netns or "this namespace")
        return True


def summary(kernel: Kernel) -> dict[str, Any]:
    """The owned links of a namespace with their attributes (for tests and diagnostics)."""
    return {name: link for name, link in kernel.links().items() if owned(name)}
