"""The host links every HA router of this host needs, as one file keepalived tracks.

A host whose underlay (the HA network's tunnels) or external uplink is cut cannot tell a
dead peer from its own lost cable: its keepalived hears no adverts either way and stays
primary, holding the router's addresses beside the host that took over; and when the link
comes back, two primaries meet. When the cut is this host's own link, though, the kernel
knows: the link is down or has lost its carrier. `ha_vrrp_track_interfaces` names those
links; the agent writes `0` (all up) or `1` (one is down, or missing) into one file, and
every HA router's keepalived tracks it (`track_file`, weight 0: non-zero is FAULT). In
FAULT keepalived removes the router's addresses at once and sends a priority-0 advert
(where the HA network still reaches the peers, they take over without waiting); when the
file says `0` again it comes back as a backup, under the primary that served meanwhile.

The agent watches the host's link events (a netlink socket bound to the link group) and
looks again every second: what the file says follows the kernel within milliseconds of a
cut, whatever happened to the events.
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from neutrino.agent.linux import netns
from neutrino.agent.linux.kernel import Kernel, Link

LOG = logging.getLogger(__name__)
RTMGRP_LINK = 0x1
NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK = 16, 17
NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port
IFI_INDEX = struct.Struct("=i")  # in ifinfomsg, after family, padding and type
IFI_INDEX_OFFSET = NLMSG_HEADER.size + 4
OK, FAULT = "0", "1"
LOOK_INTERVAL = 1.0  # seconds between looks without events


def down(links: dict[str, Link | None]) -> list[str]:
    """The tracked links that are missing, down or without carrier (pure)."""
    return sorted(name for name, link in links.items()
                  if link is None or not link.up or not link.carrier)


class HostLinks:
    """Keeps the track file of one L3 agent's HA routers in step with the host's links."""

    def __init__(self, path: str, names: Iterable[str], host_netns: str | None) -> None:
        self.path = Path(path)
        self.names = tuple(sorted(set(names)))
        self.host_netns = host_netns
        self._lock = threading.Lock()
        self._written: str | None = None
        self._indexes: frozenset[int] | None = None  # of the tracked links; None: one missing

    @property
    def enabled(self) -> bool:
        """Whether any link is tracked (none: keepalived tracks no file, as Neutron's)."""
        return bool(self.names)

    def sync(self) -> bool:
        """Read the tracked links and write the file if it says otherwise; True if it
        changed."""
        if not self.enabled:
            return False
        kernel = Kernel(self.host_netns)
        with kernel.session():
            found = {name: kernel.link(name) for name in self.names}
        missing = down(found)
        self._indexes = None if None in found.values() else \
            frozenset(link.index for link in found.values() if link is not None)
        value = FAULT if missing else OK
        with self._lock:
            if value == self._written and self._file_says(value):
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(value + "\n")
            tmp.replace(self.path)
            before, self._written = self._written, value
        if value == FAULT:
            LOG.warning("Host link(s) %s down or missing: every HA router on this host "
                        "gives its addresses up (keepalived FAULT) until they are back",
                        ", ".join(missing))
        elif before is not None:
            LOG.warning("Host links %s up again: HA routers on this host come back as "
                        "backups", ", ".join(self.names))
        return True

    def _file_says(self, value: str) -> bool:
        try:
            return self.path.read_text().strip() == value
        except OSError:
            return False

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: the file follows the events of the tracked links (a host's other
        links, thousands of taps in a cold start, are passed over unread), and a look
        every `LOOK_INTERVAL` seconds."""
        if not self.enabled:
            return
        with netns.entered(self.host_netns):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                                 NETLINK_ROUTE)
        try:
            sock.bind((0, RTMGRP_LINK))
            looked = None  # a first look at once (an agent restarted: a link cut meanwhile)
            while not stop.is_set():
                wait = 0.0 if looked is None else looked + LOOK_INTERVAL - time.monotonic()
                # Events of other links (a cold start's thousands) never put the look off.
                if wait > 0 and not (select.select([sock], [], [], wait)[0]
                                     and self._tracked_changed(sock)):
                    continue
                looked = time.monotonic()
                try:
                    self.sync()
                except Exception:  # the next event or look tries again
                    LOG.exception("Reading the tracked host links %s failed",
                                  ", ".join(self.names))
        finally:
            sock.close()

    def _tracked_changed(self, sock: socket.socket) -> bool:
        """Read every pending link event; whether one may concern a tracked link (any
        event does while one of them is missing, or when events were lost)."""
        indexes = self._indexes
        relevant = indexes is None
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return relevant
                relevant = relevant or _touches(data, indexes or frozenset())
        except BlockingIOError:
            return relevant
        except OSError as err:  # ENOBUFS: events were lost
            return err.errno == errno.ENOBUFS or relevant


def _touches(data: bytes, indexes: frozenset[int]) -> bool:
    """Whether a batch of netlink messages holds a link event of one of `indexes`."""
    offset = 0
    while offset + IFI_INDEX_OFFSET + IFI_INDEX.size <= len(data):
        length, kind, _flags, _seq, _port = NLMSG_HEADER.unpack_from(data, offset)
        if length < NLMSG_HEADER.size:
            return True  # not what the kernel sends: look, to be sure
        if kind in (RTM_NEWLINK, RTM_DELLINK) and \
                IFI_INDEX.unpack_from(data, offset + IFI_INDEX_OFFSET)[0] in indexes:
            return True
        offset += (length + 3) & ~3
    return False
