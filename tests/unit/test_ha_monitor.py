"""The HA monitor's hold on keepalived's VRRP process, through its pid file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from neutrino.agent.l3.ha_monitor import open_pidfd


def test_a_pid_file_naming_a_zombie_gives_no_pidfd(tmp_path: Path) -> None:
    """A keepalived killed beside its agent may stay a zombie (init reaps it late), its pid
    file left: the monitor must not take it for a live process, or it would see it die
    again at every look (and the agent would put its restart off each time)."""
    pid_file = tmp_path / "keepalived-vrrp.pid"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        pid_file.write_text(f"{child.pid}\n")
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] \
                != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        assert open_pidfd(str(pid_file)) is None
    finally:
        child.wait()
    assert open_pidfd(str(pid_file)) is None  # reaped: gone


def test_a_pid_file_naming_a_live_process_gives_its_pidfd(tmp_path: Path) -> None:
    pid_file = tmp_path / "keepalived-vrrp.pid"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid_file.write_text(f"{child.pid}\n")
        found = open_pidfd(str(pid_file))
        assert found is not None and found[0] == child.pid
        os.close(found[1])
    finally:
        child.kill()
        child.wait()
    assert open_pidfd(None) is None
