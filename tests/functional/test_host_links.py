"""The host links' file HA routers' keepalived track, following a throwaway host's links."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.agent.l3.host_links import HostLinks
from neutrino.agent.linux import netns
from neutrino.agent.linux.kernel import Kernel
from tests.support import root_network_snapshot, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make namespaces")


@pytest.fixture
def host() -> Iterator[str]:
    """A host namespace with an uplink `ul0` (a veth whose peer stays up) and `ext0`."""
    before = root_network_snapshot()
    name = f"nthl{uuid.uuid4().hex[:6]}"
    netns.create(name)
    try:
        kernel = Kernel(name, owned=True)
        for link in ("ul0", "ext0"):
            kernel.ensure_veth(link, f"{link}p", name)
            kernel.ensure_link(link, up=True)
            kernel.ensure_link(f"{link}p", up=True)
        yield name
    finally:
        netns.remove(name)
        assert root_network_snapshot() == before


def says(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def test_the_file_follows_the_tracked_links(host: str, tmp_path: Path) -> None:
    """0 while every tracked link is up with carrier; 1 within moments of one going down,
    losing its carrier (its peer down) or being deleted; 0 again once it is back; all
    while other links of the host come and go by the hundred."""
    path = tmp_path / "host-links"
    links = HostLinks(str(path), ["ul0", "ext0"], host)
    stop = threading.Event()
    watcher = threading.Thread(target=links.run, args=(stop,), daemon=True)
    churn = threading.Thread(target=_churn, args=(host, stop), daemon=True)
    watcher.start()
    churn.start()
    kernel = Kernel(host, owned=True)
    try:
        wait_for(lambda: says(path) == "0", 5, what="the first look")
        kernel.ensure_link("ul0", up=False)
        wait_for(lambda: says(path) == "1", 2, what="ul0 down seen")
        kernel.ensure_link("ul0", up=True)
        wait_for(lambda: says(path) == "0", 2, what="ul0 up seen")
        kernel.ensure_link("ext0p", up=False)  # ext0 stays up, without carrier
        wait_for(lambda: says(path) == "1", 2, what="ext0's carrier loss seen")
        kernel.ensure_link("ext0p", up=True)
        wait_for(lambda: says(path) == "0", 2, what="ext0's carrier back")
        kernel.delete("ul0")
        wait_for(lambda: says(path) == "1", 2, what="ul0 gone seen")
        kernel.ensure_veth("ul0", "ul0p", host)
        kernel.ensure_link("ul0", up=True)
        kernel.ensure_link("ul0p", up=True)
        wait_for(lambda: says(path) == "0", 2, what="a new ul0 seen")
    finally:
        stop.set()
        watcher.join(5)
        churn.join(5)


def test_nothing_tracked_no_file(tmp_path: Path) -> None:
    """Without tracked links there is no file and nothing runs (keepalived tracks none)."""
    links = HostLinks(str(tmp_path / "host-links"), [], None)
    assert not links.enabled and links.sync() is False
    links.run(threading.Event())  # returns at once
    assert not (tmp_path / "host-links").exists()


def _churn(host: str, stop: threading.Event) -> None:
    """Links of no interest made and deleted in a loop, as a cold start's taps are."""
    i = 0
    while not stop.is_set():
        name = f"chn{i % 50}"
        subprocess.run(["ip", "-n", host, "link", "add", name, "type", "veth", "peer",
                        "name", f"{name}p"], capture_output=True, check=False)
        subprocess.run(["ip", "-n", host, "link", "del", name], capture_output=True,
                       check=False)
        i += 1
