"""The Linux bridge data plane in a throwaway network namespace: kernel state, not calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.linux.kernel import Kernel, KernelError, summary
from neutrino.agent.linux.l2 import ORPHAN, LinuxBridgeDriver
from neutrino.cmd.common import load_config
from neutrino.registry import bridge_name, tap_name
from tests.support import root_network_snapshot

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="needs root and iproute2 to make network namespaces")

NET_ID = "5f2c9a10-6c1e-4c36-9b0b-2d1e7c3f0a11"
NET = ("network", NET_ID)
PORT = "8a3b2c1d-0e9f-4a8b-b7c6-d5e4f3a2b1c0"
MAC = "fa:16:3e:12:34:56"
LOCAL = "192.0.2.10"


@pytest.fixture
def netns() -> Iterator[str]:
    """A namespace of the test's own, removed afterwards; the root namespace's network stays
    exactly as it was."""
    before = root_network_snapshot()
    name = f"ntt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
        assert root_network_snapshot() == before


@pytest.fixture
def driver(netns: str, tmp_path: Path) -> LinuxBridgeDriver:
    """The driver with VXLAN local_ip 192.0.2.10, acting in the test namespace."""
    conf_file = tmp_path / "l2.conf"
    conf_file.write_text(f"[VXLAN]\nlocal_ip = {LOCAL}\n")
    return LinuxBridgeDriver(load_config(["--config-file", str(conf_file)], "test"),
                             netns=netns)


def network(remotes: list[str], admin_up: bool = True) -> dict[str, Any]:
    """A VXLAN network's desired state with one local port."""
    return {"id": NET_ID, "network_type": "vxlan", "segmentation_id": 1001,
            "ports": [{"id": PORT, "admin_state_up": admin_up, "mac_address": MAC,
                       "port_security_enabled": False}],
            "remote_endpoints": [{"host": f"h{i}", "ip_address": ip}
                                 for i, ip in enumerate(remotes)]}


def test_bridge_vxlan_and_remotes(driver: LinuxBridgeDriver, netns: str) -> None:
    """A bridge, a unicast VXLAN device in it, and one flooding entry per remote host."""
    assert driver.apply(NET, network(["192.0.2.11", "192.0.2.12"])) is True
    links = summary(driver.kernel)
    bridge, vxlan = links[bridge_name(NET_ID)], links["vxlan-1001"]
    assert bridge.kind == "bridge" and bridge.up
    assert (vxlan.kind, vxlan.vni, vxlan.local) == ("vxlan", 1001, LOCAL)
    assert vxlan.master == bridge.index and vxlan.up
    assert driver.kernel.fdb_remotes("vxlan-1001") == {"192.0.2.11", "192.0.2.12"}

    # A second pass changes nothing, and says so.
    before = (summary(driver.kernel), driver.kernel.fdb_remotes("vxlan-1001"))
    assert driver.apply(NET, network(["192.0.2.11", "192.0.2.12"])) is False
    assert (summary(driver.kernel), driver.kernel.fdb_remotes("vxlan-1001")) == before

    # A host leaves, another joins: exactly the new set of entries.
    driver.apply(NET, network(["192.0.2.12", "192.0.2.13"]))
    assert driver.kernel.fdb_remotes("vxlan-1001") == {"192.0.2.12", "192.0.2.13"}

    driver.apply(NET, None)
    assert bridge_name(NET_ID) not in summary(driver.kernel)
    assert "vxlan-1001" not in summary(driver.kernel)


def test_tap_is_plugged_and_reported(driver: LinuxBridgeDriver, netns: str) -> None:
    """A VM's tap goes into its network's bridge; the port is then ACTIVE (DOWN if disabled)."""
    driver.apply(NET, network([]))
    assert driver.status().ports == {PORT: "DOWN"}  # no tap yet
    tap = tap_name(PORT)
    subprocess.run(["ip", "-n", netns, "link", "add", tap, "type", "veth", "peer", "name",
                    "ntt-vm0"], check=True)
    driver.apply(NET, network([]))
    links = summary(driver.kernel)
    assert links[tap].master == links[bridge_name(NET_ID)].index and links[tap].up
    assert driver.status().ports == {PORT: "ACTIVE"}
    driver.apply(NET, network([], admin_up=False))
    assert driver.status().ports == {PORT: "DOWN"}


def test_orphans_are_removed_and_foreign_links_never_touched(driver: LinuxBridgeDriver,
                                                             netns: str) -> None:
    """A bridge of a network no longer here is found and removed; others are refused."""
    subprocess.run(["ip", "-n", netns, "link", "add", "brqdeadbeef000", "type", "bridge"],
                   check=True)
    subprocess.run(["ip", "-n", netns, "link", "add", "eth9", "type", "veth", "peer", "name",
                    "ntt-peer9"], check=True)
    keys = driver.present()
    assert keys == {("network", ORPHAN + "brqdeadbeef000")}
    for key in keys:
        driver.apply(key, None)
    assert "brqdeadbeef000" not in Kernel(netns).links()
    with pytest.raises(KernelError):
        Kernel(netns).delete("eth9")
    assert "eth9" in Kernel(netns).links()


def test_new_tap_is_found_as_drift(driver: LinuxBridgeDriver, netns: str) -> None:
    """A VM's tap that appears after its network was applied is seen by the cheap look."""
    driver.apply(NET, network([]))
    assert driver.drifted() == set()
    subprocess.run(["ip", "-n", netns, "link", "add", tap_name(PORT), "type", "veth", "peer",
                    "name", "ntt-vm1"], check=True)
    assert driver.drifted() == {NET}
    driver.apply(NET, network([]))
    assert driver.drifted() == set()


def test_a_tap_that_leaves_turns_its_port_down(driver: LinuxBridgeDriver,
                                               netns: str) -> None:
    """The status says what the host has, without reading every link for it: a tap taken
    out of its bridge or deleted turns its port DOWN once the host's events or a look for
    drift see it, and ACTIVE again once plugged."""
    tap = tap_name(PORT)

    def add_tap() -> None:
        subprocess.run(["ip", "-n", netns, "link", "add", tap, "type", "veth", "peer",
                        "name", "ntt-vm3"], check=True)

    add_tap()
    driver.apply(NET, network([]))
    assert driver.status().ports == {PORT: "ACTIVE"}

    subprocess.run(["ip", "-n", netns, "link", "set", tap, "nomaster"], check=True)
    assert driver.drifted() == {NET}
    assert driver.status().ports == {PORT: "DOWN"}
    driver.apply(NET, network([]))
    assert driver.status().ports == {PORT: "ACTIVE"}

    subprocess.run(["ip", "-n", netns, "link", "del", tap], check=True)
    assert driver.drifted() == set()  # nothing to plug; the port is no longer served
    assert driver.status().ports == {PORT: "DOWN"}

    add_tap()
    driver.apply(NET, network([]))
    assert driver.status().ports == {PORT: "ACTIVE"}
    stop = threading.Event()
    events = threading.Thread(target=driver.events, args=(lambda keys: None, stop),
                              daemon=True)
    events.start()
    try:
        time.sleep(0.3)  # the events socket is bound
        subprocess.run(["ip", "-n", netns, "link", "del", tap], check=True)
        deadline = time.monotonic() + 5
        while driver.status().ports != {PORT: "DOWN"} and time.monotonic() < deadline:
            time.sleep(0.02)
        assert driver.status().ports == {PORT: "DOWN"}  # seen by the events, no look
    finally:
        stop.set()
        events.join(5)


def test_what_changes_under_the_agent_is_put_back(driver: LinuxBridgeDriver,
                                                  netns: str) -> None:
    """Between verifications an apply trusts what it read back; what changes under it is
    still put back: a tap taken out of its bridge and a deleted bridge as soon as a look
    for drift sees them, a lost flooding entry at the next verification."""
    tap = tap_name(PORT)
    subprocess.run(["ip", "-n", netns, "link", "add", tap, "type", "veth", "peer", "name",
                    "ntt-vm2"], check=True)
    state = network(["192.0.2.11"])
    assert driver.apply(NET, state) is True
    assert driver.apply(NET, state) is False

    subprocess.run(["ip", "-n", netns, "link", "set", tap, "nomaster"], check=True)
    assert driver.drifted() == {NET}
    assert driver.apply(NET, state) is True
    links = summary(driver.kernel)
    assert links[tap].master == links[bridge_name(NET_ID)].index

    subprocess.run(["ip", "-n", netns, "link", "del", bridge_name(NET_ID)], check=True)
    assert driver.drifted() == {NET}
    assert driver.apply(NET, state) is True
    links = summary(driver.kernel)
    assert links[tap].master == links[bridge_name(NET_ID)].index
    assert links["vxlan-1001"].master == links[bridge_name(NET_ID)].index
    assert driver.drifted() == set()

    subprocess.run(["ip", "netns", "exec", netns, "bridge", "fdb", "del", "00:00:00:00:00:00",
                    "dev", "vxlan-1001", "dst", "192.0.2.11"], check=True)
    driver.verify_interval = 0  # the verification is due
    assert driver.apply(NET, state) is True
    assert driver.kernel.fdb_remotes("vxlan-1001") == {"192.0.2.11"}
    assert driver.apply(NET, state) is False


def flat_network() -> dict[str, Any]:
    """A flat network on physnet1 with one local port."""
    return {"id": NET_ID, "network_type": "flat", "physical_network": "physnet1",
            "segmentation_id": None,
            "ports": [{"id": PORT, "admin_state_up": True, "mac_address": MAC,
                       "port_security_enabled": False}],
            "remote_endpoints": []}


def test_flat_uplink_is_enslaved_and_released(netns: str, tmp_path: Path) -> None:
    """The mapped interface joins the bridge, is released (not deleted) with it, and one
    that carries an address is refused and left exactly as it was."""
    conf_file = tmp_path / "l2.conf"
    conf_file.write_text("[LINUX_BRIDGE]\nphysical_interface_mappings = physnet1:ntt-up0\n")
    flat = LinuxBridgeDriver(load_config(["--config-file", str(conf_file)], "test"),
                             netns=netns)
    subprocess.run(["ip", "-n", netns, "link", "add", "ntt-up0", "type", "veth", "peer",
                    "name", "ntt-up1"], check=True)
    flat.apply(NET, flat_network())
    links = Kernel(netns).links()
    assert links["ntt-up0"].master == links[bridge_name(NET_ID)].index
    assert flat.configurations()["interface_mappings"] == {"physnet1": "ntt-up0"}
    flat.apply(NET, flat_network())  # a second pass changes nothing
    assert Kernel(netns).links()["ntt-up0"] == links["ntt-up0"]
    flat.apply(NET, None)
    links = Kernel(netns).links()
    assert bridge_name(NET_ID) not in links and links["ntt-up0"].master is None

    subprocess.run(["ip", "-n", netns, "addr", "add", "198.51.100.7/24", "dev", "ntt-up0"],
                   check=True)
    with pytest.raises(KernelError, match="carries addresses"):
        flat.apply(NET, flat_network())
    assert Kernel(netns).links()["ntt-up0"].master is None
