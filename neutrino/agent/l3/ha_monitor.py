"""Which HA routers this host serves, seen as the kernel changes, not by polling.

keepalived on the primary node adds the VRID's address (`keepalived.vip_address`) to the
router's `ha-` device and removes it when it stops being primary. `HaMonitor` holds one
netlink socket per HA router, opened in the router's namespace and subscribed to its IPv4
address events; one thread waits on all of them at once, and an event in a namespace makes
it read that router's `ha-` addresses again: `active` with the VRID's address, `standby`
without. A change is handed to the agent (`notify`), whose next status report carries it:
the server's `ha_state` follows the kernel within one report, whatever keepalived does
between two of its adverts.

It also holds a pidfd of each router's keepalived VRRP process. A keepalived killed with
SIGKILL cannot take its addresses away, and the other host takes over about three adverts
later: the moment the process is gone, `on_dead` (the driver) removes the addresses here,
so that two hosts never hold them for longer than that takes.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from neutrino.agent.linux import netns, process
from neutrino.agent.linux.kernel import Kernel

LOG = logging.getLogger(__name__)
MISSING_LOOK = 0.2  # seconds between looks for a VRRP pid file not written yet
RTMGRP_IPV4_IFADDR = 0x10
NETLINK_ROUTE = 0
ACTIVE, STANDBY = "active", "standby"


@dataclass(frozen=True)
class Watched:
    """One router's VRID address, where to look for it."""

    router_id: str
    namespace: str
    device: str
    vip: str  # CIDR, as keepalived adds it
    pid_file: str | None = None  # keepalived's VRRP process, the one holding the addresses


def open_pidfd(pid_file: str | None) -> tuple[int, int] | None:
    """(pid, pidfd) of the live process a pid file names, or None if there is none.

    A zombie is none: a keepalived killed together with the agent that started it is
    reparented to init, which may leave it unreaped, and its pid file stays; a pidfd of it
    would be ready at once, and it would be found dead again at every look."""
    if pid_file is None:
        return None
    try:
        pid = int(Path(pid_file).read_text().strip())
        pidfd = os.pidfd_open(pid)
    except (OSError, ValueError):
        return None
    if not process.running(pid):  # looked after opening: a death from now on is seen
        os.close(pidfd)
        return None
    return pid, pidfd


def address_events(namespace: str) -> socket.socket:
    """A netlink socket in `namespace` that receives its IPv4 address changes."""
    with netns.entered(namespace):
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                             NETLINK_ROUTE)
    sock.bind((0, RTMGRP_IPV4_IFADDR))
    return sock


def read_state(watched: Watched) -> str:
    """`active` if the router's `ha-` device holds the VRID's address here."""
    try:
        addresses = Kernel(watched.namespace, owned=True).addresses(watched.device)
    except Exception:  # the device or namespace is not (or no longer) there
        return STANDBY
    return ACTIVE if watched.vip in addresses else STANDBY


class HaMonitor:
    """The VRRP state of this host's HA routers, kept current by netlink events."""

    def __init__(self, on_dead: Callable[[str], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._watched: dict[str, Watched] = {}
        self._socks: dict[str, socket.socket] = {}
        self._states: dict[str, str] = {}
        self._pidfds: dict[str, tuple[int, int]] = {}  # router -> (pid, pidfd)
        self.on_dead = on_dead
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)

    def watch(self, watched: Watched) -> None:
        """Follow a router (again, if where it is changed); its state is read now."""
        with self._lock:
            same = self._watched.get(watched.router_id) == watched
        self._follow_process(watched)
        if same:
            return
        sock = address_events(watched.namespace)  # before the read: no event is missed
        state = read_state(watched)
        with self._lock:
            old = self._socks.pop(watched.router_id, None)
            self._watched[watched.router_id] = watched
            self._socks[watched.router_id] = sock
            self._states[watched.router_id] = state
        if old is not None:
            old.close()
        os.write(self._wake_w, b"w")  # the waiting thread takes the new socket
        LOG.info("Watching HA router %s in %s: %s", watched.router_id, watched.namespace,
                 state)

    def _follow_process(self, watched: Watched) -> None:
        """Hold a pidfd of the router's keepalived VRRP process (again, if it changed)."""
        found = open_pidfd(watched.pid_file)
        with self._lock:
            old = self._pidfds.get(watched.router_id)
            if found is not None and old is not None and old[0] == found[0]:
                os.close(found[1])
                return
            if found is not None:
                self._pidfds[watched.router_id] = found
            else:
                self._pidfds.pop(watched.router_id, None)
        if old is not None:
            os.close(old[1])
        os.write(self._wake_w, b"w")

    def forget(self, router_id: str) -> None:
        """Stop following a router (it left this host, or its keepalived was stopped)."""
        with self._lock:
            self._watched.pop(router_id, None)
            self._states.pop(router_id, None)
            sock = self._socks.pop(router_id, None)
            pidfd = self._pidfds.pop(router_id, None)
        if pidfd is not None:
            os.close(pidfd[1])
        if sock is not None:
            sock.close()
            os.write(self._wake_w, b"w")

    def states(self) -> dict[str, str]:
        """router id -> active or standby, for the routers followed."""
        with self._lock:
            return dict(self._states)

    def refresh(self, router_id: str) -> str | None:
        """Read one router's state again; the new state, or None if not followed."""
        with self._lock:
            watched = self._watched.get(router_id)
        if watched is None:
            return None
        state = read_state(watched)
        with self._lock:
            if router_id not in self._watched:
                return None
            old = self._states.get(router_id)
            self._states[router_id] = state
        if old != state:
            LOG.info("HA router %s is %s here (was %s)", router_id, state, old)
        return state if old != state else None

    def run(self, notify: Callable[[str], None], stop: threading.Event,
            timeout: float = 1.0) -> None:
        """Wait for address events until `stop`; `notify(router_id)` on each change.

        poll, not select: select takes no descriptor above 1023, and every HA router holds
        two (a few hundred routers on one agent reach that). A keepalived whose VRRP pid
        file is not written yet is looked for again every `MISSING_LOOK` seconds, whatever
        the other routers' events: without its pidfd, its death would be seen late, by the
        agent's next look, and the router would go dark for the backup's whole wait."""
        last_look = 0.0
        while not stop.is_set():
            with self._lock:
                by_fd = {s.fileno(): r for r, s in self._socks.items()}
                by_pidfd = {fd: r for r, (_pid, fd) in self._pidfds.items()}
                missing = any(r not in self._pidfds for r in self._watched)
            poller = select.poll()
            for fd in (self._wake_r, *by_fd, *by_pidfd):
                poller.register(fd, select.POLLIN)
            wait = MISSING_LOOK if missing else timeout
            # A descriptor closed meanwhile (POLLNVAL) is skipped: the next turn has the
            # sockets as they are now.
            ready = [fd for fd, event in poller.poll(wait * 1000)
                     if not event & select.POLLNVAL]
            if missing and time.monotonic() - last_look >= MISSING_LOOK:
                last_look = time.monotonic()
                self._follow_missing()
            for fd in ready:
                if fd == self._wake_r:
                    self._drain_wake()
                    continue
                if fd in by_pidfd:
                    self._process_died(by_pidfd[fd], fd)
                    notify(by_pidfd[fd])
                    continue
                router_id = by_fd[fd]
                if not self._drain(router_id) or self.refresh(router_id) is None:
                    continue
                notify(router_id)

    def _follow_missing(self) -> None:
        """Routers whose keepalived had not written its VRRP pid file yet: try again."""
        with self._lock:
            missing = [w for r, w in self._watched.items() if r not in self._pidfds]
        for watched in missing:
            if watched.pid_file and os.path.exists(watched.pid_file):
                self._follow_process(watched)

    def _process_died(self, router_id: str, fd: int) -> None:
        """A router's keepalived VRRP process is gone: its addresses go too (`on_dead`)."""
        with self._lock:
            held = self._pidfds.get(router_id)
            if held is None or held[1] != fd:
                return
            del self._pidfds[router_id]
        os.close(fd)
        LOG.warning("keepalived of HA router %s (pid %d) died", router_id, held[0])
        if self.on_dead is not None:
            try:
                self.on_dead(router_id)
            except Exception:  # the agent's next pass repairs what this could not
                LOG.exception("Releasing the addresses of HA router %s failed", router_id)
        self.refresh(router_id)

    def _drain(self, router_id: str) -> bool:
        """Read every pending event of one router's socket (their content does not matter:
        the addresses are read again); False if the socket went away."""
        with self._lock:
            sock = self._socks.get(router_id)
        if sock is None:
            return False
        try:
            while sock.recv(65536):
                pass
        except BlockingIOError:
            return True
        except OSError:
            return False
        return True

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        """Close every socket."""
        with self._lock:
            socks = list(self._socks.values())
            self._socks.clear()
            self._watched.clear()
            self._states.clear()
        with self._lock:
            pidfds = [fd for _pid, fd in self._pidfds.values()]
            self._pidfds.clear()
        for sock in socks:
            sock.close()
        for fd in pidfds:
            os.close(fd)
        os.close(self._wake_r)
        os.close(self._wake_w)
