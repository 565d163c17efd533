"""Processes by pid, and daemons in namespaces supervised by pid file.

`running`, `stop` and `reap` work on any process of ours (the DHCP agent's dnsmasq, the lab's
servers and agents). `Daemons` supervises daemons that outlive their agent: it starts one in
its namespace, adopts a running one after an agent restart (same pid file, same command
line), restarts it when its command line changes, reloads it with a signal, stops it, and
names the ones that died so that the next pass respawns them.

Reaping: an agent is the subreaper of the daemons it starts (they detach, and their middle
processes exit to it). Collecting every exited child (`waitpid(-1)`) could take the exit
status a thread is waiting for in `subprocess.run`; `children` lets any number of threads run
and wait for commands while the reaper collects only when no such wait is in flight.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

LOG = logging.getLogger(__name__)
PR_SET_CHILD_SUBREAPER = 36


class DaemonError(RuntimeError):
    """A daemon could not be started."""


def closed_to_others(path: str | Path) -> Path | None:
    """The first directory on the way to `path` that other users cannot enter (no `o+x`),
    or None. Daemons that drop their privileges (dnsmasq becomes `nobody`) read their
    files after doing so: under such a directory they start, and then read nothing."""
    current = Path(path).resolve()
    ancestors = [current, *current.parents]
    for directory in reversed(ancestors):
        try:
            mode = directory.stat().st_mode
        except FileNotFoundError:
            return None  # what does not exist yet is made by us, open to others
        if not mode & 0o001:
            return directory
    return None


class _Children:
    """Waits for commands and the collection of exited children, kept apart."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting = 0

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Held while a thread waits for a child of its own (`subprocess.run`)."""
        with self._cond:
            self._waiting += 1
        try:
            yield
        finally:
            with self._cond:
                self._waiting -= 1

    def reap(self) -> int:
        """Collect every exited child if no thread waits for one now; how many."""
        collected = 0
        with self._cond:
            if self._waiting:
                return 0  # the next call collects them; zombies cost nothing meanwhile
            while True:
                try:
                    pid, _status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return collected
                if pid == 0:
                    return collected
                collected += 1


children = _Children()


def running(pid: int | None, marker: str | None = None) -> bool:
    """Whether `pid` is a live process (not a zombie) and, given a `marker`, one whose
    command line contains it (so that a recycled pid is not taken for ours)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if marker else b""
    except (OSError, ProcessLookupError):
        return False
    if stat[stat.rfind(")") + 2] in "ZX":
        return False
    return marker is None or marker.encode() in cmdline


def reap(pid: int) -> None:
    """Collect an exited child's status, if it is ours to collect."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def reap_children() -> int:
    """Collect every exited child (see `children`); how many."""
    return children.reap()


def become_subreaper() -> None:
    """Adopt the daemons this process starts once they detach, so that stopping one can
    reap it here; otherwise they would wait on PID 1, which may not reap (containers)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        LOG.debug("prctl(PR_SET_CHILD_SUBREAPER) is not available here")


def _collect(pid: int, timeout: float = 1.0) -> None:
    """Wait (briefly) until an exited child of ours is collected; nothing if it is not ours."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not ours (its parent collects it), or collected already
        if done:
            return
        time.sleep(0.01)


def stop(pid: int | None, marker: str | None = None, *, sig: int = signal.SIGTERM,
         timeout: float = 15.0) -> bool:
    """Signal a process of ours and wait until it is gone (SIGKILL after `timeout`); True if
    it was running.

    The marker identifies the process before it is signalled; afterwards only the pid is
    watched, since an exiting process's command line empties before it becomes a zombie."""
    if pid is None or not running(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while running(pid) and time.monotonic() < deadline:
        reap(pid)
        time.sleep(0.02)
    if running(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while running(pid):
            reap(pid)
            time.sleep(0.02)
    _collect(pid)
    return True


def cmdline(pid: int) -> list[str] | None:
    """A process's arguments (without the program), or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[1:] if a]


@dataclass(frozen=True)
class Daemon:
    """A daemon to run: what it is (for the logs), its command line, where, and how to find
    it again. It detaches by itself and writes `pid_file`; `marker`, a string of its command
    line, tells it from a process that took a recycled pid."""

    name: str
    argv: tuple[str, ...]
    pid_file: str
    marker: str
    netns: str | None = None
    # It stays in the foreground (it writes no pid file): started without waiting for it,
    # and its pid file written here.
    foreground: bool = False


@dataclass(frozen=True)
class Outcome:
    """What `Daemons.ensure` did."""

    pid: int | None
    started: bool = False
    restarted: bool = False
    reloaded: bool = False

    @property
    def changed(self) -> bool:
        """Whether the daemon was started, restarted or reloaded."""
        return self.started or self.restarted or self.reloaded


class Daemons:
    """Supervision of daemons by pid file (see the module's docstring)."""

    def __init__(self, stop_timeout: float = 2.5) -> None:
        self.stop_timeout = stop_timeout
        self._lock = threading.Lock()
        self._known: dict[str, int | None] = {}  # pid file -> pid validated at the last ensure

    def pid(self, daemon: Daemon) -> int | None:
        """The daemon's pid from its pid file, if it runs (not a recycled pid)."""
        try:
            pid = int(Path(daemon.pid_file).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if running(pid, daemon.marker) else None

    def ensure(self, daemon: Daemon, reload: int | None = None) -> Outcome:
        """The daemon running with exactly its command line: adopted if it runs so, restarted
        if its command line differs, started if it does not run; `reload` is a signal to send
        to a daemon kept running (its files changed)."""
        pid = self.pid(daemon)
        restarted = False
        if pid is not None:
            if cmdline(pid) == list(daemon.argv[1:]):
                if reload is not None:
                    os.kill(pid, reload)
                self._remember(daemon, pid)
                return Outcome(pid, reloaded=reload is not None)
            LOG.info("Restarting %s (pid %d): its command line changed", daemon.name, pid)
            stop(pid, daemon.marker, timeout=self.stop_timeout)
            restarted = True
        pid = self._start(daemon)
        return Outcome(pid, started=not restarted, restarted=restarted)

    def _start(self, daemon: Daemon) -> int | None:
        from neutrino.agent.linux import netns

        Path(daemon.pid_file).unlink(missing_ok=True)
        if daemon.foreground:
            return self._spawn(daemon)
        result = netns.run(daemon.netns, daemon.argv, timeout=30)
        if result.returncode != 0:
            raise DaemonError(f"{daemon.name} failed to start: "
                              f"{(result.stderr or result.stdout).strip()}")
        # A daemon writes its pid file as it detaches; give it a moment if it has not yet.
        deadline = time.monotonic() + 2.0
        pid = self.pid(daemon)
        while pid is None and time.monotonic() < deadline:
            time.sleep(0.01)
            pid = self.pid(daemon)
        LOG.info("Started %s (pid %s)", daemon.name, pid)
        self._remember(daemon, pid)
        return pid

    def _spawn(self, daemon: Daemon) -> int:
        """Start a foreground daemon in its own session (the child is the daemon: its pid
        is the daemon's) and write its pid file; the agent, its subreaper, collects it."""
        from neutrino.agent.linux import netns

        child = netns.popen(daemon.netns, daemon.argv, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
        child.returncode = 0  # never waited for here: the reaper collects it
        tmp = Path(daemon.pid_file + ".tmp")
        tmp.write_text(f"{child.pid}\n")
        tmp.replace(daemon.pid_file)
        LOG.info("Started %s (pid %d)", daemon.name, child.pid)
        self._remember(daemon, child.pid)
        return child.pid

    def _remember(self, daemon: Daemon, pid: int | None) -> None:
        with self._lock:
            self._known[daemon.pid_file] = pid

    def stop(self, daemon: Daemon, sig: int = signal.SIGTERM) -> bool:
        """Stop the daemon if it runs; True if it did."""
        pid = self.pid(daemon)
        with self._lock:
            self._known.pop(daemon.pid_file, None)
        if pid is None:
            return False
        stop(pid, daemon.marker, sig=sig, timeout=self.stop_timeout)
        LOG.info("Stopped %s (pid %d)", daemon.name, pid)
        return True

    def dead(self) -> set[str]:
        """Pid files of supervised daemons found dead since their last `ensure` (a cheap
        look: one signal 0 per daemon; exited children are collected first, so that a dead
        daemon of ours is not taken for a live zombie)."""
        reap_children()
        with self._lock:
            known = dict(self._known)
        return {pid_file for pid_file, pid in known.items() if not running(pid)}


def run(argv: Sequence[str], timeout: float = 30,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command here and wait for it (registered with the reaper); never raises on a
    non-zero exit."""
    with children.waiting():
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              input=stdin, check=False)
