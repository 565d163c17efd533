"""The lab's processes: started detached, found again and stopped by their pids."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def running(pid: int | None, marker: str) -> bool:
    """Whether `pid` is a live process whose command line contains `marker` (not a zombie,
    not a recycled pid)."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX" and marker in cmdline


def spawn(argv: Sequence[str], log: Path) -> int:
    """Start a process that outlives the command that started it; its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(pid: int | None, marker: str, *, sig: int = signal.SIGTERM,
         timeout: float = 15.0) -> bool:
    """Signal a process of ours and wait until it is gone (SIGKILL after `timeout`); True if
    it was running."""
    if pid is None or not running(pid, marker):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not running(pid, marker):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while running(pid, marker):
        _reap(pid)
        time.sleep(0.05)
    return True
