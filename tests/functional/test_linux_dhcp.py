"""dnsmasq in qdhcp-<network>, and a real DHCP client in a VM namespace getting its lease."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.agent.dhcp.driver import DnsmasqDriver
from neutrino.agent.dhcp.render import Paths
from neutrino.agent.linux import process
from neutrino.agent.linux.kernel import Kernel
from neutrino.cmd.common import load_config
from neutrino.lab.base import open_tempdir
from neutrino.registry import bridge_name, dhcp_namespace, tap_name

DNSMASQ = shutil.which("dnsmasq", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or DNSMASQ is None or shutil.which("busybox") is None,
    reason="needs root, dnsmasq and busybox (tools/install installs them)")

SUBNET = "5ab0c0de-0000-4000-8000-000000000001"


def sh(*args: str) -> str:
    """Run a command; its output."""
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.fixture
def lab() -> Iterator[dict[str, Any]]:
    """A host namespace with the network's bridge, and a VM namespace; all removed after."""
    # dnsmasq drops its privileges, so its state must be traversable (pytest's is 0700).
    tmp_path = open_tempdir("ntt-dhcp-")
    tag = uuid.uuid4().hex[:6]
    network_id = str(uuid.uuid4())
    host, vm = f"ntt-h{tag}", f"ntt-v{tag}"
    for ns in (host, vm):
        sh("ip", "netns", "add", ns)
    conf_file = tmp_path / "dhcp.conf"
    conf_file.write_text(f"[DEFAULT]\nstate_path = {tmp_path}\ndhcp_lease_duration = 600\n")
    driver = DnsmasqDriver(load_config(["--config-file", str(conf_file)], "test"),
                           host_netns=host)
    Kernel(host).ensure_bridge(bridge_name(network_id))
    try:
        yield {"driver": driver, "host": host, "vm": vm, "network_id": network_id}
    finally:
        pid_file = Path(Paths(str(tmp_path / "dhcp" / network_id)).pid)
        if pid_file.exists() and Path(f"/proc/{pid_file.read_text().strip()}").exists():
            process.stop(int(pid_file.read_text().strip()))
        for ns in (dhcp_namespace(network_id, host), host, vm):
            subprocess.run(["ip", "netns", "delete", ns], check=False, capture_output=True)
        shutil.rmtree(tmp_path, ignore_errors=True)


def state(network_id: str, vms: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A network with a DHCP port (.2) and VM ports {port_id: (mac, ip)}."""
    def port(port_id: str, mac: str, ip: str, owner: str) -> dict[str, Any]:
        return {"id": port_id, "mac_address": mac, "device_owner": owner,
                "admin_state_up": True, "fixed_ips": [{"subnet_id": SUBNET, "ip_address": ip}]}

    return {"id": network_id, "mtu": 1450, "dhcp_port_id": "d" * 36,
            "subnets": [{"id": SUBNET, "cidr": "10.77.0.0/24", "ip_version": 4,
                         "enable_dhcp": True, "gateway_ip": "10.77.0.1",
                         "dns_nameservers": [], "host_routes": []}],
            "ports": [port("d" * 36, "fa:16:3e:00:00:02", "10.77.0.2", "network:dhcp"),
                      *(port(pid, mac, ip, "compute:nova") for pid, (mac, ip) in vms.items())]}


def boot_vm(lab: dict[str, Any], port_id: str, mac: str, ifname: str) -> None:
    """A VM's interface, plugged the way a real VM's tap is (veth made in both namespaces)."""
    tap = tap_name(port_id)
    sh("ip", "link", "add", tap, "netns", lab["host"], "type", "veth", "peer", "name", ifname,
       "netns", lab["vm"])
    Kernel(lab["host"]).ensure_in_bridge(tap, bridge_name(lab["network_id"]))
    sh("ip", "-n", lab["vm"], "link", "set", ifname, "address", mac, "up")


def dhcp(lab: dict[str, Any], ifname: str) -> tuple[str, str]:
    """Run udhcpc in the VM; the leased address and the server that gave it."""
    out = subprocess.run(["ip", "netns", "exec", lab["vm"], "busybox", "udhcpc", "-i", ifname,
                          "-n", "-q", "-t", "5", "-T", "1", "-s", "/bin/true"],
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"lease of (\S+) obtained from (\S+?),", out.stdout + out.stderr)
    assert match, out.stdout + out.stderr
    return match.group(1), match.group(2)


@pytest.mark.parametrize("watched", [True, False], ids=["hostsdir", "hostsfile-sighup"])
def test_vm_gets_its_fixed_ip_from_dnsmasq(lab: dict[str, Any], watched: bool) -> None:
    """The VM's lease is its port's fixed IP, from the DHCP port; ports come and go live,
    whether dnsmasq watches its host files or (inotify instances exhausted) is signalled."""
    driver, network_id = lab["driver"], lab["network_id"]
    driver.watch_host_files = watched
    vm1 = "a" * 8 + "-0000-4000-8000-000000000001"
    wanted = state(network_id, {vm1: ("fa:16:3e:00:00:10", "10.77.0.10")})
    driver.apply(("network", network_id), wanted)
    Kernel(lab["host"]).ensure_in_bridge(tap_name("d" * 36), bridge_name(network_id))
    boot_vm(lab, vm1, "fa:16:3e:00:00:10", "ntt-v1")
    assert dhcp(lab, "ntt-v1") == ("10.77.0.10", "10.77.0.2")
    assert driver.status().dhcp_ready == {vm1}

    paths = Paths(str(driver.root / network_id))
    pid = int(Path(paths.pid).read_text())
    option = "--dhcp-hostsdir=" if watched else "--dhcp-hostsfile="
    assert option.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    # A second pass changes nothing, and says so.
    assert driver.apply(("network", network_id), wanted) is False
    assert int(Path(paths.pid).read_text()) == pid

    vm2 = "b" * 8 + "-0000-4000-8000-000000000002"
    more = state(network_id, {vm1: ("fa:16:3e:00:00:10", "10.77.0.10"),
                              vm2: ("fa:16:3e:00:00:20", "10.77.0.20")})
    driver.apply(("network", network_id), more)  # a new port: one more file, no restart
    assert int(Path(paths.pid).read_text()) == pid
    boot_vm(lab, vm2, "fa:16:3e:00:00:20", "ntt-v2")
    assert dhcp(lab, "ntt-v2") == ("10.77.0.20", "10.77.0.2")

    # A port removed while others hold leases: one SIGHUP, and dnsmasq goes on serving
    # (dnsmasq 2.90 died here while host entries carried tags).
    driver.apply(("network", network_id), wanted)
    time.sleep(0.3)
    assert int(Path(paths.pid).read_text()) == pid and driver.drifted() == set()
    assert dhcp(lab, "ntt-v1") == ("10.77.0.10", "10.77.0.2")
    entries = ([f.read_text() for f in Path(paths.hostsdir).iterdir()] if watched
               else [Path(paths.hostsfile).read_text()])
    assert "fa:16:3e:00:00:10" in "".join(entries)
    assert "fa:16:3e:00:00:20" not in "".join(entries)

    driver.apply(("network", network_id), None)
    assert not Path(f"/proc/{pid}").exists()
    assert ("network", network_id) not in driver.present()
    assert dhcp_namespace(network_id, lab["host"]) not in os.listdir("/run/netns")


def dhcp_options(lab: dict[str, Any], ifname: str) -> dict[str, str]:
    """Run udhcpc in the VM asking for the TFTP server and boot file; what it was given."""
    script = Path(tempfile.mkdtemp(prefix="ntt-udhcpc-", dir="/tmp")) / "print.sh"
    script.write_text("#!/bin/sh\nenv | grep -E '^(ip|tftp|bootfile)=' "
                      "> \"$(dirname \"$0\")/got.$1\"\n")
    script.chmod(0o755)
    try:
        subprocess.run(["ip", "netns", "exec", lab["vm"], "busybox", "udhcpc", "-i", ifname,
                        "-n", "-q", "-t", "5", "-T", "1", "-O", "tftp", "-O", "bootfile",
                        "-s", str(script)], capture_output=True, text=True, timeout=60)
        got = script.parent / "got.bound"
        assert got.exists(), "udhcpc got no lease"
        return dict(line.split("=", 1) for line in got.read_text().split())
    finally:
        shutil.rmtree(script.parent, ignore_errors=True)


def test_a_port_gets_its_own_dhcp_options(lab: dict[str, Any]) -> None:
    """A port's extra_dhcp_opts reach its VM and no other; a changed value is re-read
    without a restart; dnsmasq survives a port leaving while tagged clients hold leases
    (host entries carry no tags); a port losing its options restarts it, leases kept."""
    driver, network_id = lab["driver"], lab["network_id"]
    pxe = "c" * 8 + "-0000-4000-8000-000000000003"
    plain = "d" * 8 + "-0000-4000-8000-000000000004"
    gone = "e" * 8 + "-0000-4000-8000-000000000005"
    macs = {pxe: ("fa:16:3e:00:00:30", "10.77.0.30"), plain: ("fa:16:3e:00:00:40", "10.77.0.40"),
            gone: ("fa:16:3e:00:00:50", "10.77.0.50")}

    def with_opts(ports: dict[str, tuple[str, str]], tftp: str | None) -> dict[str, Any]:
        wanted = state(network_id, ports)
        for port in wanted["ports"]:
            if port["id"] in (pxe, gone) and tftp is not None:
                port["extra_dhcp_opts"] = [
                    {"opt_name": "tftp-server", "opt_value": tftp, "ip_version": 4},
                    {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}]
        return wanted

    driver.apply(("network", network_id), with_opts(macs, "10.77.0.7"))
    Kernel(lab["host"]).ensure_in_bridge(tap_name("d" * 36), bridge_name(network_id))
    for port_id, ifname in ((pxe, "ntt-o1"), (plain, "ntt-o2"), (gone, "ntt-o3")):
        boot_vm(lab, port_id, macs[port_id][0], ifname)
    assert dhcp_options(lab, "ntt-o1") == {"ip": "10.77.0.30", "tftp": "10.77.0.7",
                                           "bootfile": "pxelinux.0"}
    assert dhcp_options(lab, "ntt-o2") == {"ip": "10.77.0.40"}
    assert dhcp_options(lab, "ntt-o3")["tftp"] == "10.77.0.7"
    paths = Paths(str(driver.root / network_id))
    pid = int(Path(paths.pid).read_text())

    driver.apply(("network", network_id), with_opts(macs, "10.77.0.8"))  # a value: SIGHUP
    assert int(Path(paths.pid).read_text()) == pid
    assert dhcp_options(lab, "ntt-o1")["tftp"] == "10.77.0.8"

    left = {k: v for k, v in macs.items() if k != gone}  # the tagged port leaves: a restart
    driver.apply(("network", network_id), with_opts(left, "10.77.0.8"))
    pid = int(Path(paths.pid).read_text())
    driver.apply(("network", network_id), with_opts(left, "10.77.0.9"))  # SIGHUP, leases held
    time.sleep(0.3)
    assert int(Path(paths.pid).read_text()) == pid and driver.drifted() == set()
    assert dhcp_options(lab, "ntt-o1")["tftp"] == "10.77.0.9"

    driver.apply(("network", network_id), with_opts(left, None))  # options gone: a restart
    assert int(Path(paths.pid).read_text()) != pid
    assert dhcp_options(lab, "ntt-o1") == {"ip": "10.77.0.30"}
    driver.apply(("network", network_id), None)


def test_agent_refuses_a_state_path_dnsmasq_cannot_reach() -> None:
    """dnsmasq reads its host entries after becoming nobody: under a directory closed to
    others it would start and answer no client. The agent says so and does not start."""
    closed = Path(tempfile.mkdtemp(prefix="ntt-closed-", dir="/tmp"))  # mode 0700
    try:
        conf_file = closed / "dhcp.conf"
        conf_file.write_text(f"[DEFAULT]\nstate_path = {closed}/state\n"
                             "[AGENT]\ndataplane = linux\nserver_url = http://127.0.0.1:9\n")
        agent = Path(sys.executable).with_name("neutrino-dhcp-agent")
        result = subprocess.run([str(agent), "--config-file", str(conf_file)],
                                capture_output=True, text=True, timeout=60, check=False)
        logged = result.stdout + result.stderr
        assert result.returncode == 2, logged
        assert f"{closed} is closed to other users" in logged
        assert f"chmod o+x {closed}" in logged
    finally:
        shutil.rmtree(closed)
