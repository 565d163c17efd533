"""Processes by pid: is it (still) ours and running, stopping it, and collecting it once it
exits. Shared by the DHCP agent (its dnsmasq daemons) and the lab (servers and agents)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from pathlib import Path

LOG = logging.getLogger(__name__)
PR_SET_CHILD_SUBREAPER = 36


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


def reap_children() -> None:
    """Collect every exited child: the middle processes daemons leave when they detach (they
    exit to us, the subreaper) and any daemon that died. Call it only while no subprocess of
    ours is being waited for, or it could take a `subprocess.run` child's exit status."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def become_subreaper() -> None:
    """Adopt the daemons this process starts once they detach, so that stopping one can
    reap it here; otherwise they would wait on PID 1, which may not reap (containers)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        LOG.debug("prctl(PR_SET_CHILD_SUBREAPER) is not available here")


def stop(pid: int | None, marker: str | None = None, *, sig: int = signal.SIGTERM,
         timeout: float = 15.0) -> bool:
    """Signal a process of ours and wait until it is gone (SIGKILL after `timeout`); True if
    it was running."""
    if pid is None or not running(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reap(pid)
        if not running(pid, marker):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while running(pid, marker):
        reap(pid)
        time.sleep(0.05)
    reap(pid)
    return True
