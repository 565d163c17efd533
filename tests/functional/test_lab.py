"""The lab with real packets: seed 000's DHCP HA demo, failover, the CLI, and its cleanup."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from neutrino.lab import demo
from neutrino.lab.base import LabError, open_tempdir
from neutrino.lab.lab import Lab, Lease
from neutrino.lab.topology import parse
from tests.support import (
    VENV_BIN,
    namespaces,
    openstack_cli,
    our_processes,
    root_network_snapshot,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("busybox") is None
    or shutil.which("dnsmasq", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None,
    reason="needs root, dnsmasq and busybox (tools/install installs them)")


@pytest.fixture
def base() -> Iterator[Path]:
    """A lab base directory dnsmasq can read (pytest's own are 0700)."""
    path = open_tempdir("ntt-lab-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def lab_name() -> str:
    """A lab name of the tests' own."""
    return "t" + uuid.uuid4().hex[:5]


def leftovers(name: str) -> list[str]:
    """Namespaces and processes of a lab that still exist."""
    return sorted([ns for ns in namespaces() if ns.startswith(f"{name}-")]
                  + [p for p in our_processes() if f"/{name}/" in p])


def leased(lab: Lab, vm: str, attempts: int = 4) -> Lease | None:
    """One run of the VM's DHCP client: its lease, or None if no server answered."""
    lease = lab.vm_dhcp(vm, attempts)
    return lease if lease.ip_address else None


def test_lab_refuses_a_directory_dnsmasq_cannot_reach() -> None:
    """A lab under a directory closed to others would serve no lease (dnsmasq reads as
    nobody): `up` says so before it makes anything."""
    closed = Path(tempfile.mkdtemp(prefix="ntt-closed-", dir="/tmp"))  # mode 0700
    name = lab_name()
    try:
        with pytest.raises(LabError, match=f"chmod o\\+x {closed}"):
            Lab(name, closed, out=lambda _line: None).up(
                parse({"name": "closed", "hosts": [{"name": "HostA"}]}))
        assert leftovers(name) == []
        assert not (closed / name).exists()
    finally:
        shutil.rmtree(closed)


@pytest.mark.slow
def test_dhcp_ha_demo_end_to_end(base: Path) -> None:
    """Seed 000 from start to end, every step asserted; then nothing of the lab remains and
    the root namespace is exactly as before."""
    before = root_network_snapshot()
    name = lab_name()
    lines: list[str] = []
    record = demo.run("dhcp-ha", Lab(name, base, out=lines.append), out=lines.append)
    text = "\n".join(lines)
    assert record.checks and all(ok for _, ok in record.checks), text
    port_ip = record.facts["port_ip"]
    both, first_down = record.leases["both"], record.leases["first-stopped"]
    assert both.ip_address == port_ip and both.server_host in ("HostA", "HostB")
    assert (first_down.ip_address, first_down.server_host) == (port_ip, "HostB")
    assert record.leases["both-stopped"].ip_address is None
    restarted = record.leases["restarted"]
    assert (restarted.ip_address, restarted.server_host) == (port_ip, "HostB")
    for vm in ("myserver1", "myserver2", "myserver3"):
        assert record.leases[vm].ip_address is not None
    assert "$ openstack network agent list --network net2" in text
    assert ":-)" in text and "XXX" in text  # the seed's alive column, both ways

    assert leftovers(name) == []
    assert not (base / name).exists()
    assert root_network_snapshot() == before


@pytest.mark.slow
def test_failover_with_packets(base: Path) -> None:
    """One DHCP agent per network: kill -9 the hosting agent and its dnsmasq; the VM gets its
    same IP again, from the other host's DHCP port, across the VXLAN underlay."""
    lab = Lab(lab_name(), base, out=lambda _line: None)
    lab.up(parse({"name": "failover", "hosts": [{"name": "HostA"}, {"name": "HostB"}],
                  "server_options": {"DEFAULT": {"dhcp_agents_per_network": 1}}}))
    try:
        net_id = lab.network_create("net2", "9.0.1.0/24")
        hosting = wait_for(lambda: lab.dhcp_hosts(net_id), timeout=30)
        assert len(hosting) == 1
        dead = hosting.pop()
        other = "HostB" if dead == "HostA" else "HostA"
        vm = lab.vm_boot("vm1", net_id, host=dead)  # packets must cross to the other host
        wait_for(lambda: net_id in lab.dnsmasq_pids(dead), timeout=30)
        lease = wait_for(lambda: leased(lab, "vm1"), timeout=30)
        assert (lease.ip_address, lease.server_host) == (vm["ip_address"], dead)

        killed = time.monotonic()
        lab.agent_stop(dead, "dhcp", with_dnsmasq=True, sig=signal.SIGKILL)
        assert lab.vm_dhcp("vm1", attempts=2).ip_address is None  # nobody serves it now
        lease = wait_for(lambda: leased(lab, "vm1", attempts=2), timeout=90, interval=0.2)
        elapsed = time.monotonic() - killed
        assert (lease.ip_address, lease.server_host) == (vm["ip_address"], other)
        # The other host's dnsmasq acknowledged it: the lease is in its lease file.
        leases = (lab.dir / "hosts" / other / "dhcp" / net_id / "leases").read_text()
        assert f" {vm['mac_address']} {vm['ip_address']} " in leases
        # One DHCP port for the network, the same one, now bound to the other host.
        ports = lab.api_get("/v2.0/ports", network_id=net_id,
                            device_owner="network:dhcp")["ports"]
        assert [p["binding:host_id"] for p in ports] == [other]
        print(f"\nDHCP failover with packets: the VM had its lease again {elapsed:.1f} s "
              "after kill -9 of the hosting agent and its dnsmasq")
    finally:
        lab.down()
    assert leftovers(lab.name) == []


def neutrino(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The `neutrino` command."""
    result = subprocess.run([str(VENV_BIN / "neutrino"), *args], capture_output=True,
                            text=True, timeout=180)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_lab_command_line(base: Path, tmp_path: Path) -> None:
    """`neutrino lab` up/status/vm/agent/openstack/down on a one-host topology, clear errors
    for what cannot be done, and nothing left behind."""
    name = lab_name()
    common = ["lab", "--lab", name, "--dir", str(base)]
    topology = tmp_path / "one.json"
    # No auto-scheduling: a network taken from the only agent stays unhosted.
    topology.write_text(json.dumps({"name": "one", "hosts": [{"name": "Solo"}], "server_options": {
        "DEFAULT": {"network_auto_schedule": False}}}))
    before = root_network_snapshot()
    try:
        neutrino(*common, "up", "--topology", str(topology))
        again = neutrino(*common, "up", check=False)
        assert again.returncode == 1 and "already up" in again.stderr
        neutrino(*common, "openstack", "network", "create", "lan")
        neutrino(*common, "openstack", "subnet", "create", "--network", "lan",
                 "--subnet-range", "10.9.0.0/24", "lan-v4")
        boot = neutrino(*common, "vm", "boot", "web", "--network", "lan")
        assert "Booted web on Solo" in boot.stdout
        state: dict[str, Any] = json.loads(neutrino(*common, "status", "--json").stdout)
        fixed_ip = state["vms"]["web"]["ip_address"]
        assert state["hosts"]["Solo"]["agents"] == {"l2": True, "dhcp": True}
        def lease_line() -> str | None:
            got = neutrino(*common, "vm", "dhcp", "web", check=False)
            return got.stdout if got.returncode == 0 else None

        lease = wait_for(lease_line, timeout=30)
        assert f"lease of {fixed_ip} from" in lease and "on Solo" in lease
        # Plugged by the L2 agent and served by dnsmasq: the port is ACTIVE in the API.
        wait_for(lambda: neutrino(*common, "openstack", "port", "show", "web", "-f", "value",
                                  "-c", "status").stdout.strip() == "ACTIVE", timeout=30)
        shown = neutrino(*common, "vm", "exec", "web", "--", "ip", "-4", "addr", "show", "ens3")
        assert f"inet {fixed_ip}/24" in shown.stdout  # the lease configured the VM
        neutrino(*common, "agent", "stop", "Solo", "dhcp")
        state = json.loads(neutrino(*common, "status", "--json").stdout)
        assert state["hosts"]["Solo"]["agents"]["dhcp"] is False
        assert len(state["hosts"]["Solo"]["dnsmasq"]) == 1  # dnsmasq outlives its agent
        assert neutrino(*common, "vm", "dhcp", "web").returncode == 0
        neutrino(*common, "agent", "start", "Solo", "dhcp")
        after = json.loads(neutrino(*common, "status", "--json").stdout)
        assert after["hosts"]["Solo"]["dnsmasq"] == state["hosts"]["Solo"]["dnsmasq"]

        # While the agent is down, the network is taken from it: started again, it stops
        # that network's dnsmasq and removes its namespace.
        agent_id = neutrino(*common, "openstack", "network", "agent", "list", "--host", "Solo",
                            "--agent-type", "dhcp", "-f", "value", "-c", "ID").stdout.strip()
        neutrino(*common, "agent", "stop", "Solo", "dhcp")
        neutrino(*common, "openstack", "network", "agent", "remove", "network", "--dhcp",
                 agent_id, "lan")
        neutrino(*common, "agent", "start", "Solo", "dhcp")
        wait_for(lambda: not json.loads(neutrino(*common, "status", "--json").stdout)[
            "hosts"]["Solo"]["dnsmasq"], timeout=30)
        wait_for(lambda: not [ns for ns in namespaces() if ns.startswith(f"{name}-Solo-qdhcp-")],
                 timeout=30)
        assert neutrino(*common, "vm", "dhcp", "web", "--attempts", "2",
                        check=False).returncode == 1  # nobody serves lan now

        missing = neutrino(*common, "vm", "dhcp", "nosuch", check=False)
        assert missing.returncode == 1 and "no VM 'nosuch'" in missing.stderr
        wrong = neutrino(*common, "agent", "stop", "Nowhere", "dhcp", check=False)
        assert wrong.returncode == 1 and "no host 'Nowhere'" in wrong.stderr
        neutrino(*common, "vm", "delete", "web")
    finally:
        neutrino(*common, "down", check=False)
    down = neutrino(*common, "down")
    assert "not up" in down.stdout
    assert leftovers(name) == []
    assert root_network_snapshot() == before


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("keystone-manage", path=str(VENV_BIN)) is None,
                    reason="needs the keystone package (tools/install installs it)")
def test_lab_with_keystone(base: Path, tmp_path: Path) -> None:
    """`neutrino lab up --keystone`: the lab's own Keystone; `lab openstack` logs in with a
    password through its catalog (seed 004's `openstack project show demo`), the demo user's
    network belongs to Keystone's demo project, a VM gets its lease, and `lab down` leaves
    nothing, Keystone included."""
    name = lab_name()
    common = ["lab", "--lab", name, "--dir", str(base)]
    topology = tmp_path / "one.json"
    topology.write_text(json.dumps({"name": "one", "hosts": [{"name": "Solo"}]}))
    try:
        neutrino(*common, "up", "--topology", str(topology), "--keystone")
        state = json.loads((base / name / "lab.json").read_text())
        demo_id = state["keystone"]["projects"]["demo"]
        shown = json.loads(neutrino(*common, "openstack", "project", "show", "demo", "-f",
                                    "json").stdout)
        assert shown["id"] == demo_id
        clouds = (base / name / "clouds.yaml").read_text()
        assert "auth_type: password" in clouds and "http_basic" not in clouds
        # The demo user, as a user of the lab's clouds.yaml would be.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(base / name / "clouds.yaml"),
                   OS_CLOUD=f"{name}-demo")
        openstack_cli(env, "network", "create", "lan")
        made = openstack_cli(env, "subnet", "create", "--network", "lan", "--subnet-range",
                             "10.19.0.0/24", "lan-v4", "-f", "json")
        assert made["project_id"] == demo_id
        neutrino(*common, "vm", "boot", "web", "--network", "lan")
        lease = wait_for(lambda: (lambda r: r.stdout if r.returncode == 0 else None)(
            neutrino(*common, "vm", "dhcp", "web", check=False)), timeout=30)
        assert "lease of 10.19.0." in lease
    finally:
        neutrino(*common, "down", check=False)
    assert leftovers(name) == []
    assert not [p for p in our_processes() if "keystone.wsgi" in p and f"/{name}/" in p]
