"""`Lab`: build, drive and remove a lab; all of its state lives in one directory.

Layout of the directory: `lab.json` (what was made: namespaces, pids, VMs), `server/`
(configuration, users, the SQLite database, the log), `hosts/<host>/` (each agent's
configuration and log, and the DHCP agent's state: dnsmasq files and pid files), and
`clouds.yaml` for the `openstack` client.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from neutrino.agent.dhcp.driver import namespace as dhcp_namespace
from neutrino.agent.linux import proc
from neutrino.agent.linux.l2 import tap_name
from neutrino.api.auth import UserFile
from neutrino.lab import netns, processes
from neutrino.lab.topology import Topology, TopologyError, check_lab_name, parse

BIN = Path(sys.executable).parent
BINARIES = {"dhcp": "neutrino-dhcp-agent", "l2": "neutrino-linuxbridge-agent"}
AGENT_TYPES = {"dhcp": "DHCP agent", "l2": "Linux bridge agent"}
UNDERLAY = "172.30.0.{}/24"
VM_IFNAME = "ens3"
DEFAULT_DIR = Path(os.environ.get("NEUTRINO_LAB_DIR", "/var/tmp/neutrino-lab"))
_VM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
# Run by udhcpc inside the VM: configure the lease as a VM's init would.
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface" ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$subnet" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"""


class LabError(RuntimeError):
    """Something the lab cannot do, said plainly."""


@dataclass(frozen=True)
class Lease:
    """What a VM's DHCP client got."""

    vm: str
    ip_address: str | None
    server: str | None
    server_host: str | None
    lease_time: int | None
    output: str

    def __str__(self) -> str:
        if self.ip_address is None:
            return f"{self.vm}: no lease (no DHCP server answered)"
        return (f"{self.vm}: lease of {self.ip_address} from {self.server} "
                f"(DHCP port on {self.server_host or 'an unknown host'}), "
                f"lease time {self.lease_time} s")


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ini(sections: dict[str, dict[str, Any]]) -> str:
    return "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
                   for name, values in sections.items())


class Lab:
    """One lab, found by its name under a base directory."""

    def __init__(self, name: str = "nl", base: Path | None = None,
                 out: Callable[[str], None] = print) -> None:
        self.name = check_lab_name(name)
        self.dir = (base or DEFAULT_DIR) / name
        self.out = out
        # Daemons orphaned while this process runs (a stopped agent's dnsmasq) come back to
        # it, so that stopping them here also reaps them.
        proc.become_subreaper()
        self.state: dict[str, Any] = {}
        if self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())

    # -- state ----------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        """Where the lab records what it made."""
        return self.dir / "lab.json"

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2, sort_keys=True))
        tmp.replace(self.state_file)

    def require_up(self) -> None:
        if not self.state:
            raise LabError(f"lab {self.name} is not up (no {self.state_file}); "
                           "run `neutrino lab up` first")

    @property
    def topology(self) -> Topology:
        """The topology the lab was built from."""
        self.require_up()
        return parse(self.state["topology"])

    @property
    def url(self) -> str:
        """The lab server's endpoint."""
        return f"http://127.0.0.1:{self.state['server']['port']}"

    def host_namespace(self, host: str) -> str:
        """The namespace standing for a host."""
        return f"{self.name}-{host}"

    def vm_namespace(self, vm: str) -> str:
        """The namespace standing for a VM."""
        return f"{self.name}-vm-{vm}"

    # -- up and down ----------------------------------------------------------------------

    def up(self, topology: Topology) -> None:
        """Build the lab: server, namespaces and wires, agents; wait until all are alive."""
        if self.state:
            raise LabError(f"lab {self.name} is already up ({self.dir}); "
                           "`neutrino lab down` first")
        taken = {ns for ns in netns.namespaces() if ns.startswith(f"{self.name}-")}
        if taken:
            raise LabError(f"namespaces named like lab {self.name} exist already: "
                           f"{', '.join(sorted(taken))}")
        # dnsmasq drops its privileges: its files must be reachable by others.
        for path in (self.dir, self.dir / "server", self.dir / "hosts"):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
        raw = {"name": topology.name, "controller": topology.controller,
               "hosts": [{"name": h.name, "agents": list(h.agents)} for h in topology.hosts],
               "server_options": topology.server_options}
        self.state = {"name": self.name, "topology": raw, "namespaces": [], "agents": {},
                      "vms": {}, "server": {"port": free_port(), "pid": None},
                      "admin_password": secrets.token_urlsafe(12),
                      "agent_password": secrets.token_urlsafe(12)}
        self._save()
        self.out(f"Lab {self.name}: topology {topology.name}, state in {self.dir}")
        try:
            self._start_server(topology)
            self._wire(topology)
            for host in topology.hosts:
                for kind in host.agents:
                    self.agent_start(host.name, kind, wait=False)
            self.wait_agents_alive()
        except BaseException:
            self.out(f"Lab {self.name} could not be built; removing what was made")
            self.down()
            raise
        self.out(f"Lab {self.name} is up: server {self.url}, hosts "
                 f"{', '.join(h.name for h in topology.hosts)}")

    def _start_server(self, topology: Topology) -> None:
        server = self.dir / "server"
        users = UserFile(str(server / "users.json"))
        users.add("admin", self.state["admin_password"], "admin", ["admin", "member"])
        users.add("neutrino-agent", self.state["agent_password"], "service", ["service"])
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {"host": topology.controller, "bind_host": "127.0.0.1",
                        "bind_port": self.state["server"]["port"],
                        "auth_strategy": "http_basic", "state_path": server,
                        "http_basic_auth_user_file": server / "users.json",
                        "allow_overlapping_ips": True},
            "database": {"connection": f"sqlite:///{server / 'neutrino.sqlite'}"},
        }
        for section, values in topology.server_options.items():
            sections.setdefault(section, {}).update(values)
        conf = server / "neutrino.conf"
        conf.write_text(_ini(sections))
        (self.dir / "clouds.yaml").write_text(
            f"clouds:\n  {self.name}:\n    auth_type: http_basic\n    auth:\n"
            f"      username: admin\n      password: {self.state['admin_password']}\n"
            f"      endpoint: {self.url}\n")
        (self.dir / "clouds.yaml").chmod(0o600)
        script = self.dir / "udhcpc.script"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        pid = processes.spawn([str(BIN / "neutrino-server"), "--config-file", str(conf)],
                              server / "server.log")
        self.state["server"].update(pid=pid, marker=str(conf))
        self._save()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not proc.running(pid, str(conf)):
                raise LabError(f"neutrino-server exited; see {server / 'server.log'}")
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    self.out(f"Server on {topology.controller}: {self.url} (pid {pid})")
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise LabError(f"neutrino-server did not answer within 60 s; see {server}/server.log")

    def remember_namespace(self, name: str) -> None:
        """Make a namespace that `down` removes with the lab."""
        netns.add_namespace(name)
        if name not in self.state["namespaces"]:
            self.state["namespaces"].append(name)
            self._save()

    def _wire(self, topology: Topology) -> None:
        """Underlay and outside namespaces, and each host's namespace wired to both."""
        underlay, outside = f"{self.name}-underlay", f"{self.name}-outside"
        self.remember_namespace(underlay)
        self.remember_namespace(outside)
        netns.bridge(underlay, "ul-br")
        netns.bridge(outside, "ext-br")
        for index, host in enumerate(topology.hosts, start=1):
            ns = self.host_namespace(host.name)
            self.remember_namespace(ns)
            netns.veth(ns, "ul0", underlay, f"ul-{index}")
            netns.bridge(underlay, "ul-br", [f"ul-{index}"])
            netns.address(ns, "ul0", UNDERLAY.format(10 + index))
            netns.veth(ns, "ext0", outside, f"ext-{index}")
            netns.bridge(outside, "ext-br", [f"ext-{index}"])
            self.out(f"Host {host.name}: namespace {ns}, tunnel address "
                     f"{UNDERLAY.format(10 + index)}, agents {', '.join(host.agents)}")

    def down(self) -> None:
        """Remove everything the lab made: processes by pid, namespaces by name, its files.

        A second Ctrl-C (or SIGTERM) while this runs would leave half a lab behind: both are
        held off until it is done."""
        held = _hold_signals()
        try:
            self._down()
        finally:
            for signum, handler in held.items():
                signal.signal(signum, handler)

    def _down(self) -> None:
        if not self.state:
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.out(f"Lab {self.name} is not up; nothing to remove")
            return
        topology = self.topology
        for key in list(self.state["agents"]):
            host, kind = key.split("/")
            self.agent_stop(host, kind)
        for host in topology.hosts:
            self.stop_dnsmasq(host.name)
        server = self.state["server"]
        proc.stop(server.get("pid"), server.get("marker", "neutrino-server"))
        made = list(self.state["namespaces"])
        made += [self.vm_namespace(vm) for vm in self.state["vms"]]
        for host in topology.hosts:
            made += [dhcp_namespace(n, self.host_namespace(host.name))
                     for n in self.dhcp_namespaces(host.name)]
        removed = [ns for ns in reversed(made) if netns.delete_namespace(ns)]
        shutil.rmtree(self.dir)
        self.out(f"Lab {self.name} removed: {len(removed)} namespaces, its processes and "
                 f"{self.dir}")

    # -- processes ------------------------------------------------------------------------

    def _agent_conf(self, host: str, kind: str) -> Path:
        index = [h.name for h in self.topology.hosts].index(host) + 1
        base = self.dir / "hosts" / host
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        conf = base / f"{kind}.conf"
        conf.write_text(_ini({
            "DEFAULT": {"host": host, "state_path": base, "dhcp_lease_duration": 86400,
                        "debug": bool(os.environ.get("NEUTRINO_LAB_DEBUG"))},
            "AGENT": {"dataplane": "linux", "host_namespace": self.host_namespace(host),
                      "server_url": self.url, "server_username": "neutrino-agent",
                      "server_password": self.state["agent_password"],
                      "report_interval": 2, "polling_interval": 0.5,
                      "watch_timeout": 10, "resync_interval": 30},
            "VXLAN": {"local_ip": UNDERLAY.format(10 + index).split("/")[0]},
            "LINUX_BRIDGE": {"physical_interface_mappings": "physnet1:ext0"},
        }))
        return conf

    def _agent_key(self, host: str, kind: str) -> str:
        if kind not in BINARIES:
            raise LabError(f"unknown agent {kind!r}: one of {', '.join(BINARIES)}")
        if kind not in self.topology.host(host).agents:
            raise LabError(f"host {host} runs no {kind} agent in this lab")
        return f"{host}/{kind}"

    def agent_running(self, host: str, kind: str) -> bool:
        """Whether the agent process is running."""
        entry = self.state["agents"].get(self._agent_key(host, kind))
        return bool(entry) and proc.running(entry["pid"], entry["marker"])

    def agent_start(self, host: str, kind: str, wait: bool = True) -> None:
        """Start an agent on a host (nothing if it runs)."""
        self.require_up()
        key = self._agent_key(host, kind)
        if self.agent_running(host, kind):
            self.out(f"{BINARIES[kind]} on {host} is already running")
            return
        conf = self._agent_conf(host, kind)
        pid = processes.spawn([str(BIN / BINARIES[kind]), "--config-file", str(conf)],
                              conf.with_suffix(".log"))
        self.state["agents"][key] = {"pid": pid, "marker": str(conf)}
        self._save()
        self.out(f"Started {BINARIES[kind]} on {host} (pid {pid})")
        if wait:
            self.wait_agents_alive([(host, kind)])

    def agent_stop(self, host: str, kind: str, with_dnsmasq: bool = False,
                   sig: int = signal.SIGTERM) -> None:
        """Stop (or kill, with SIGKILL) an agent; its dnsmasq processes too if asked."""
        self.require_up()
        key = self._agent_key(host, kind)
        entry = self.state["agents"].get(key)
        verb = "Killed" if sig == signal.SIGKILL else "Stopped"
        if entry and proc.stop(entry["pid"], entry["marker"], sig=sig):
            self.out(f"{verb} {BINARIES[kind]} on {host} (pid {entry['pid']})")
        self.state["agents"].pop(key, None)
        self._save()
        if with_dnsmasq:
            self.stop_dnsmasq(host, sig)

    def dnsmasq_pids(self, host: str) -> dict[str, int]:
        """Running dnsmasq processes of a host's DHCP agent, by network id."""
        out = {}
        for pid_file in (self.dir / "hosts" / host / "dhcp").glob("*/pid"):
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            if proc.running(pid, pid_file.parent.name):
                out[pid_file.parent.name] = pid
        return out

    def dhcp_namespaces(self, host: str) -> set[str]:
        """Networks with a DHCP namespace on a host."""
        prefix = dhcp_namespace("", self.host_namespace(host))
        return {ns[len(prefix):] for ns in netns.namespaces() if ns.startswith(prefix)}

    def stop_dnsmasq(self, host: str, sig: int = signal.SIGTERM) -> None:
        """Stop the dnsmasq processes of a host, by their pid files."""
        for network_id, pid in sorted(self.dnsmasq_pids(host).items()):
            proc.stop(pid, network_id, sig=sig)
            self.out(f"{'Killed' if sig == signal.SIGKILL else 'Stopped'} dnsmasq of network "
                     f"{network_id} on {host} (pid {pid})")

    def wait_agents_alive(self, which: Sequence[tuple[str, str]] | None = None,
                          timeout: float = 60) -> None:
        """Wait until these agents (default: every running one) are registered and alive."""
        wanted = which or [tuple(k.split("/")) for k in self.state["agents"]]
        pending: list[tuple[str, str]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            agents = self.api_get("/v2.0/agents")["agents"]
            alive = {(a["host"], a["agent_type"]) for a in agents if a["alive"]}
            pending = [(h, k) for h, k in wanted if (h, AGENT_TYPES[k]) not in alive]
            if not pending:
                return
            time.sleep(0.25)
        raise LabError(f"agents not alive after {timeout:.0f} s: "
                       f"{', '.join(f'{k} on {h}' for h, k in pending)}")

    # -- the API and the client -----------------------------------------------------------

    def api(self) -> httpx.Client:
        """An HTTP client logged in as the lab's admin."""
        self.require_up()
        return httpx.Client(base_url=self.url, auth=("admin", self.state["admin_password"]),
                            timeout=30)

    def api_get(self, path: str, **params: Any) -> Any:
        """GET a path of the lab's API as admin."""
        with self.api() as client:
            reply = client.get(path, params=params)
        if reply.status_code != 200:
            raise LabError(f"GET {path}: {reply.status_code} {reply.text}")
        return reply.json()

    def openstack_env(self) -> dict[str, str]:
        """Environment for the real `openstack` client against the lab's server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(self.dir / "clouds.yaml"), OS_CLOUD=self.name)
        return env

    def openstack_argv(self, args: Sequence[str]) -> list[str]:
        """The `openstack` command line (from this environment's bin, else the PATH)."""
        binary = BIN / "openstack"
        return [str(binary) if binary.exists() else "openstack", *args]

    def network_create(self, name: str, cidr: str) -> str:
        """A network with one IPv4 subnet (DHCP on); its id."""
        with self.api() as client:
            net = client.post("/v2.0/networks", json={"network": {"name": name}})
            if net.status_code != 201:
                raise LabError(f"creating network {name}: {net.status_code} {net.text}")
            network_id = str(net.json()["network"]["id"])
            subnet = client.post("/v2.0/subnets", json={"subnet": {
                "network_id": network_id, "cidr": cidr, "ip_version": 4}})
            if subnet.status_code != 201:
                raise LabError(f"creating subnet {cidr} of {name}: {subnet.status_code} "
                               f"{subnet.text}")
        return network_id

    def dhcp_hosts(self, network_id: str) -> set[str]:
        """Hosts whose DHCP agents host a network."""
        path = f"/v2.0/networks/{network_id}/dhcp-agents"
        return {a["host"] for a in self.api_get(path)["agents"]}

    # -- VMs ------------------------------------------------------------------------------

    def _network(self, name_or_id: str) -> dict[str, Any]:
        nets = self.api_get("/v2.0/networks", id=name_or_id)["networks"] or \
            self.api_get("/v2.0/networks", name=name_or_id)["networks"]
        if len(nets) != 1:
            raise LabError(f"network {name_or_id!r}: {len(nets)} found")
        return dict(nets[0])

    def vm(self, name: str) -> dict[str, Any]:
        """A VM's record."""
        self.require_up()
        if name not in self.state["vms"]:
            raise LabError(f"no VM {name!r} in lab {self.name}")
        return dict(self.state["vms"][name])

    def vm_boot(self, name: str, network: str, host: str | None = None) -> dict[str, Any]:
        """A port bound to the host, and a VM namespace plugged to it like a VM's tap."""
        self.require_up()
        if not _VM_NAME.match(name):
            raise LabError(f"VM name {name!r}: letters, digits, - and _, up to 32")
        if name in self.state["vms"]:
            raise LabError(f"VM {name} exists already")
        hosts = [h.name for h in self.topology.hosts if "l2" in h.agents]
        host = host or hosts[0]
        if host not in hosts:
            raise LabError(f"host {host!r} runs no Linux bridge agent (hosts: {hosts})")
        net = self._network(network)
        with self.api() as client:
            reply = client.post("/v2.0/ports", json={"port": {
                "network_id": net["id"], "name": name, "device_owner": "compute:nova",
                "device_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.name}.{name}")),
                "binding:host_id": host}})
        if reply.status_code != 201:
            raise LabError(f"creating the port of {name}: {reply.status_code} {reply.text}")
        port = reply.json()["port"]
        vm_ns = self.vm_namespace(name)
        record = {"name": name, "port_id": port["id"], "host": host,
                  "network_id": net["id"], "network": net["name"],
                  "mac_address": port["mac_address"],
                  "ip_address": port["fixed_ips"][0]["ip_address"] if port["fixed_ips"] else None}
        self.state["vms"][name] = record
        self._save()
        netns.add_namespace(vm_ns)
        netns.veth(self.host_namespace(host), tap_name(port["id"]), vm_ns, VM_IFNAME)
        netns.ip("-n", vm_ns, "link", "set", VM_IFNAME, "address", port["mac_address"], "up")
        self.out(f"Booted {name} on {host}: port {port['id']} on {net['name']}, "
                 f"MAC {port['mac_address']}, fixed IP {record['ip_address']}")
        return record

    def vm_dhcp(self, name: str, attempts: int = 4) -> Lease:
        """Run the VM's DHCP client once; the lease and which host's DHCP port gave it."""
        vm = self.vm(name)
        result = netns.run_in(self.vm_namespace(name), [
            "busybox", "udhcpc", "-i", VM_IFNAME, "-n", "-q", "-f", "-t", str(attempts),
            "-T", "1", "-A", "1", "-s", str(self.dir / "udhcpc.script")], timeout=60)
        text = result.stdout + result.stderr
        match = re.search(r"lease of (\S+) obtained from (\S+?), lease time (\d+)", text)
        if result.returncode != 0 or match is None:
            return Lease(name, None, None, None, None, text)
        server = match.group(2)
        ports = self.api_get("/v2.0/ports", network_id=vm["network_id"],
                             device_owner="network:dhcp",
                             fixed_ips=f"ip_address={server}")["ports"]
        host = ports[0]["binding:host_id"] if ports else None
        return Lease(name, match.group(1), server, host, int(match.group(3)), text)

    def vm_exec(self, name: str, argv: Sequence[str]) -> int:
        """Run a command inside the VM; its exit status (output passed through)."""
        self.vm(name)
        result = netns.run_in(self.vm_namespace(name), list(argv), timeout=300)
        if result.stdout:
            self.out(result.stdout.rstrip("\n"))
        if result.stderr:
            self.out(result.stderr.rstrip("\n"))
        return result.returncode

    def vm_delete(self, name: str) -> None:
        """Remove the VM's namespace (its tap goes with it) and its port."""
        vm = self.vm(name)
        netns.delete_namespace(self.vm_namespace(name))
        with self.api() as client:
            reply = client.delete(f"/v2.0/ports/{vm['port_id']}")
        if reply.status_code not in (204, 404):
            raise LabError(f"deleting the port of {name}: {reply.status_code} {reply.text}")
        del self.state["vms"][name]
        self._save()
        self.out(f"Deleted {name} (port {vm['port_id']})")

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What runs, per host; the VMs."""
        self.require_up()
        server = self.state["server"]
        out: dict[str, Any] = {
            "lab": self.name, "directory": str(self.dir), "url": self.url,
            "server": {"pid": server["pid"],
                       "running": proc.running(server["pid"], server["marker"])},
            "hosts": {}, "vms": self.state["vms"]}
        for host in self.topology.hosts:
            out["hosts"][host.name] = {
                "namespace": self.host_namespace(host.name),
                "agents": {kind: self.agent_running(host.name, kind) for kind in host.agents},
                "dnsmasq": self.dnsmasq_pids(host.name)}
        return out


def _hold_signals() -> dict[int, Any]:
    """Ignore SIGINT and SIGTERM (main thread only); the handlers to put back."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, signal.SIG_IGN)
            for signum in (signal.SIGINT, signal.SIGTERM)}


def require_root() -> None:
    """The lab makes namespaces: it needs root and iproute2."""
    if os.geteuid() != 0:
        raise LabError("the lab makes network namespaces: run it as root")
    if shutil.which("ip") is None:
        raise LabError("the lab needs iproute2 (`ip`)")


__all__ = ["Lab", "LabError", "Lease", "TopologyError", "require_root"]
