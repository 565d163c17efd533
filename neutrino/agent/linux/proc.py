"""Processes by pid: is it (still) ours and running, and collecting it once it exits."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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
