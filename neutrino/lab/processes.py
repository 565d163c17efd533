"""The lab's processes: started detached, found again and stopped by their pids."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from neutrino.agent.linux.proc import reap, running

__all__ = ["running", "spawn", "stop"]


def spawn(argv: Sequence[str], log: Path) -> int:
    """Start a process that outlives the command that started it; its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


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
        reap(pid)
        if not running(pid, marker):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while running(pid, marker):
        reap(pid)
        time.sleep(0.05)
    return True
