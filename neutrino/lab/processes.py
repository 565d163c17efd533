"""The lab's processes: started detached, so that they outlive the command that started them
(found again and stopped by pid with `neutrino.agent.linux.proc`)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path


def spawn(argv: Sequence[str], log: Path) -> int:
    """Start a process that outlives the command that started it; its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid
