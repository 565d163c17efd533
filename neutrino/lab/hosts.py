"""The lab's processes: the server on the controller, agents on the hosts, their daemons.

Processes are started detached, so that they outlive the command that started them, and are
found again and stopped by pid (`agent.linux.process`). Agents act in their host's namespace
(`[AGENT] host_namespace`) and reach the server over loopback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from neutrino import registry
from neutrino.agent.linux import netns, process
from neutrino.agent.linux.kernel import Kernel
from neutrino.api.auth import UserFile
from neutrino.lab.base import BIN, LabError, free_port, ini
from neutrino.lab.keystone import MARKER, REGION
from neutrino.lab.topology import Topology
from neutrino.lab.wiring import Wiring


def spawn(argv: Sequence[str], log: Path) -> int:
    """Start a process that outlives the command that started it; its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    return child.pid


class Hosts(Wiring):
    """The server, the agents and their daemons."""

    # -- Keystone -------------------------------------------------------------------------

    def start_keystone(self) -> None:
        """Start a Keystone in the lab's directory and give it the seeds' projects, users
        and roles and a `network` service at the lab's server."""
        self.state["keystone"] = {"port": free_port(), "pid": None}
        keystone = self.keystone()
        keystone.setup()
        keystone.start()
        assert keystone.proc is not None
        self.state["keystone"].update(pid=keystone.proc.pid, marker=MARKER,
                                      projects=keystone.seed(self.url))
        self.save()
        self.out(f"Keystone: {keystone.url} (pid {keystone.proc.pid})")

    def stop_keystone(self) -> bool:
        """Stop the lab's Keystone, if it has one; True if it was running."""
        found = self.state.get("keystone") or {}
        return process.stop(found.get("pid"), MARKER) if found else False

    # -- the server -----------------------------------------------------------------------

    def start_server(self, topology: Topology) -> None:
        """Write the server's configuration and users, start it, wait until it answers."""
        server = self.dir / "server"
        users = UserFile(str(server / "users.json"))
        users.add("admin", self.state["admin_password"], "admin", ["admin", "member"])
        users.add("neutrino-agent", self.state["agent_password"], "service", ["service"])
        users.add("demo", self.state["demo_password"], self.demo_project, ["member"])
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {"host": topology.controller, "bind_host": "127.0.0.1",
                        "bind_port": self.state["server"]["port"],
                        "auth_strategy": "http_basic", "state_path": server,
                        "http_basic_auth_user_file": server / "users.json",
                        "allow_overlapping_ips": True},
            "database": {"connection": f"sqlite:///{server / 'neutrino.sqlite'}"},
        }
        if self.state.get("keystone"):
            sections["DEFAULT"]["auth_strategy"] = "keystone"
            sections["keystone_authtoken"] = self.keystone().authtoken_options()
        for section, values in topology.server_options.items():
            sections.setdefault(section, {}).update(values)
        conf = server / "neutrino.conf"
        conf.write_text(ini(sections))
        clouds = self.dir / "clouds.yaml"
        clouds.write_text("clouds:\n" + "".join(
            self.cloud_entry(cloud, user)
            for cloud, user in ((self.name, "admin"), (f"{self.name}-demo", "demo"))))
        clouds.chmod(0o600)
        pid = spawn([str(BIN / "neutrino-server"), "--config-file", str(conf)],
                    server / "server.log")
        self.state["server"].update(pid=pid, marker=str(conf))
        self.save()
        self.wait_server(60)
        self.out(f"Server on {topology.controller}: {self.url} (pid {pid})")

    def cloud_entry(self, cloud: str, user: str) -> str:
        """A clouds.yaml entry: password authentication through the lab's Keystone's
        catalog, or HTTP Basic straight to the server."""
        password = self.state[f"{user}_password"]
        if self.state.get("keystone"):
            return (f"  {cloud}:\n    auth_type: password\n    region_name: {REGION}\n"
                    f"    interface: public\n    identity_api_version: 3\n    auth:\n"
                    f"      auth_url: {self.keystone().url}\n      username: {user}\n"
                    f"      password: {password}\n      project_name: {user}\n"
                    f"      user_domain_name: Default\n      project_domain_name: Default\n")
        return (f"  {cloud}:\n    auth_type: http_basic\n    auth:\n"
                f"      username: {user}\n      password: {password}\n"
                f"      endpoint: {self.url}\n")

    def wait_server(self, timeout: float) -> None:
        """Wait until the server answers (LabError if it exited or stays silent)."""
        server = self.state["server"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.running(server["pid"], server["marker"]):
                raise LabError(f"neutrino-server exited; see {self.dir}/server/server.log")
            try:
                if httpx.get(self.url + "/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise LabError(f"neutrino-server did not answer within {timeout:.0f} s; see "
                       f"{self.dir}/server/server.log")

    def stop_server(self, sig: int = signal.SIGTERM) -> bool:
        """Stop (or kill) the server; True if it was running."""
        server = self.state["server"]
        return process.stop(server.get("pid"), server.get("marker", "neutrino-server"),
                            sig=sig)

    def restart_server(self) -> None:
        """Start the server again with its configuration (after a stop or a kill)."""
        conf = Path(self.state["server"]["marker"])
        pid = spawn([str(BIN / "neutrino-server"), "--config-file", str(conf)],
                    conf.parent / "server.log")
        self.state["server"]["pid"] = pid
        self.save()
        self.wait_server(60)
        self.out(f"Started neutrino-server again (pid {pid})")

    # -- agents ---------------------------------------------------------------------------

    def agent_conf(self, host: str, kind: str) -> Path:
        """Write an agent's configuration; its path."""
        base = self.dir / "hosts" / host
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        conf = base / f"{kind}.conf"
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {"host": host, "state_path": base, "dhcp_lease_duration": 86400,
                        "debug": bool(os.environ.get("NEUTRINO_LAB_DEBUG"))},
            "AGENT": {"dataplane": "linux", "host_namespace": self.host_namespace(host),
                      "server_url": self.url, "server_username": "neutrino-agent",
                      "server_password": self.state["agent_password"],
                      "report_interval": 1, "polling_interval": 0.5,
                      "watch_timeout": 10, "resync_interval": 30},
            "VXLAN": {"local_ip": self.tunnel_address(host).split("/")[0]},
            "LINUX_BRIDGE": {"physical_interface_mappings":
                             f"{self.topology.physical_network}:ext0"},
        }
        if self.state.get("keystone"):  # the agents log in to Keystone, not the users file
            sections["service_auth"] = self.keystone().service_auth_options()
        if kind == "l2":  # linuxbridge_agent.ini's [securitygroup] as the seeds write it
            sections["securitygroup"] = {
                "enable_security_group": True,
                "firewall_driver": "neutron.agent.linux.iptables_firewall."
                                   "IptablesFirewallDriver"}
        if kind == "l3":  # l3_agent.ini as seed 004 writes it (the interface driver is ours)
            # and the host's links every HA router needs, as an operator would list them.
            sections["DEFAULT"].update(agent_mode="legacy", interface_driver="linuxbridge",
                                       external_network_bridge="",
                                       ha_vrrp_track_interfaces="ul0,ext0")
        conf.write_text(ini(sections))
        return conf

    def _agent_key(self, host: str, kind: str) -> str:
        if kind not in registry.KINDS:
            raise LabError(f"unknown agent {kind!r}: one of {', '.join(registry.KINDS)}")
        if kind not in self.topology.host(host).agents:
            raise LabError(f"host {host} runs no {kind} agent in this lab")
        return f"{host}/{kind}"

    def agent_running(self, host: str, kind: str) -> bool:
        """Whether the agent process is running."""
        entry = self.state["agents"].get(self._agent_key(host, kind))
        return bool(entry) and process.running(entry["pid"], entry["marker"])

    def agent_start(self, host: str, kind: str, wait: bool = True) -> None:
        """Start an agent on a host (nothing if it runs)."""
        self.require_up()
        key = self._agent_key(host, kind)
        binary = registry.kind(kind).binary
        if self.agent_running(host, kind):
            self.out(f"{binary} on {host} is already running")
            return
        conf = self.agent_conf(host, kind)
        pid = spawn([str(BIN / binary), "--config-file", str(conf)], conf.with_suffix(".log"))
        self.state["agents"][key] = {"pid": pid, "marker": str(conf)}
        self.save()
        self.out(f"Started {binary} on {host} (pid {pid})")
        if wait:
            self.wait_agents_alive([(host, kind)])

    def agent_stop(self, host: str, kind: str, with_dnsmasq: bool = False,
                   sig: int = signal.SIGTERM, with_keepalived: bool = False) -> None:
        """Stop (or kill, with SIGKILL) an agent; its dnsmasq or keepalived processes too if
        asked."""
        self.require_up()
        key = self._agent_key(host, kind)
        entry = self.state["agents"].get(key)
        verb = "Killed" if sig == signal.SIGKILL else "Stopped"
        if entry and process.stop(entry["pid"], entry["marker"], sig=sig):
            self.out(f"{verb} {registry.kind(kind).binary} on {host} (pid {entry['pid']})")
        self.state["agents"].pop(key, None)
        self.save()
        if with_dnsmasq:
            self.stop_dnsmasq(host, sig)
        if with_keepalived:
            self.stop_keepalived(host, sig)

    def wait_agents_alive(self, which: Sequence[tuple[str, str]] | None = None,
                          timeout: float = 60) -> None:
        """Wait until these agents (default: every running one) are registered and alive."""
        wanted = which or [tuple(k.split("/")) for k in self.state["agents"]]
        pending: list[tuple[str, str]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            agents = self.api_get("/v2.0/agents")["agents"]
            alive = {(a["host"], a["agent_type"]) for a in agents if a["alive"]}
            pending = [(h, k) for h, k in wanted
                       if (h, registry.kind(k).agent_type) not in alive]
            if not pending:
                return
            time.sleep(0.25)
        raise LabError(f"agents not alive after {timeout:.0f} s: "
                       f"{', '.join(f'{k} on {h}' for h, k in pending)}")

    # -- looking into hosts and the outside ------------------------------------------------

    def host_netns(self, host: str) -> list[str]:
        """What `ip netns` shows on a host: the namespaces its agents made there."""
        self.topology.host(host)
        prefix = f"{self.host_namespace(host)}-"
        return sorted(n[len(prefix):] for n in netns.names() if n.startswith(prefix))

    def host_exec(self, host: str, argv: Sequence[str]) -> int:
        """Run a command on a host (in its namespace)."""
        self.topology.host(host)
        return self.run_in(self.host_namespace(host), argv)

    def outside_exec(self, argv: Sequence[str]) -> int:
        """Run a command in the outside world (on the external network)."""
        self.require_up()
        return self.run_in(self.outside, argv)

    # -- daemons the agents run -----------------------------------------------------------

    def dnsmasq_pids(self, host: str) -> dict[str, int]:
        """Running dnsmasq processes of a host's DHCP agent, by network id."""
        out = {}
        for pid_file in (self.dir / "hosts" / host / "dhcp").glob("*/pid"):
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            if process.running(pid, pid_file.parent.name):
                out[pid_file.parent.name] = pid
        return out

    def dhcp_namespaces(self, host: str) -> set[str]:
        """Networks with a DHCP namespace on a host."""
        prefix = registry.dhcp_namespace("", self.host_namespace(host))
        return {ns[len(prefix):] for ns in netns.names() if ns.startswith(prefix)}

    def stop_dnsmasq(self, host: str, sig: int = signal.SIGTERM) -> None:
        """Stop the dnsmasq processes of a host, by their pid files."""
        for network_id, pid in sorted(self.dnsmasq_pids(host).items()):
            process.stop(pid, network_id, sig=sig)
            self.out(f"{'Killed' if sig == signal.SIGKILL else 'Stopped'} dnsmasq of network "
                     f"{network_id} on {host} (pid {pid})")

    def keepalived_pids(self, host: str) -> dict[str, list[int]]:
        """Running keepalived processes of a host's L3 agent (the parent and its VRRP
        process), by router id."""
        return self._router_daemons(host, "keepalived.conf",
                                    ("keepalived.pid", "keepalived-vrrp.pid"))

    def conntrackd_pids(self, host: str) -> dict[str, list[int]]:
        """Running conntrackd processes of a host's L3 agent, by router id."""
        return self._router_daemons(host, "conntrackd.conf", ("conntrackd.pid",))

    def _router_daemons(self, host: str, conf_name: str,
                        pid_names: tuple[str, ...]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for conf in (self.dir / "hosts" / host / "ha_confs").glob(f"*/{conf_name}"):
            for name in pid_names:
                try:
                    pid = int((conf.parent / name).read_text().strip())
                except (OSError, ValueError):
                    continue
                if process.running(pid, str(conf)):
                    out.setdefault(conf.parent.name, []).append(pid)
        return out

    def stop_keepalived(self, host: str, sig: int = signal.SIGTERM) -> None:
        """Stop (or kill) the keepalived processes of a host, by their pid files."""
        self._stop_router_daemons(host, "keepalived", self.keepalived_pids(host), sig)

    def stop_conntrackd(self, host: str, sig: int = signal.SIGTERM) -> None:
        """Stop (or kill) the conntrackd processes of a host, by their pid files."""
        self._stop_router_daemons(host, "conntrackd", self.conntrackd_pids(host), sig)

    def _stop_router_daemons(self, host: str, what: str, pids_by_router: dict[str, list[int]],
                             sig: int) -> None:
        found = sorted(pids_by_router.items())
        for _router_id, pids in found:  # all signalled first: hundreds stop together
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        for router_id, pids in found:
            for pid in pids:
                process.stop(pid, router_id, sig=sig)
            self.out(f"{'Killed' if sig == signal.SIGKILL else 'Stopped'} {what} of "
                     f"router {router_id} on {host} (pids {pids})")

    # -- failures of a whole host ----------------------------------------------------------

    def host_link(self, host: str, up: bool) -> None:
        """Cut (or heal) a host's underlay and external links: its tunnels and its flat
        uplink go dark, as a pulled cable would; its processes run on."""
        self.require_up()
        self.topology.host(host)
        k = Kernel(self.host_namespace(host), owned=True)
        for link in ("ul0", "ext0"):
            k.ensure_link(link, up=up)
        self.out(f"{host}: underlay and external links {'up' if up else 'down'}")

    def host_processes(self, host: str) -> list[int]:
        """Every process of a host: its agents, and whatever runs in its namespaces."""
        self.require_up()
        self.topology.host(host)
        pids = {entry["pid"] for key, entry in self.state["agents"].items()
                if key.startswith(f"{host}/") and process.running(entry["pid"],
                                                                  entry["marker"])}
        prefix = self.host_namespace(host)
        inodes = set()
        for name in netns.names():
            if name == prefix or name.startswith(prefix + "-"):
                try:
                    inodes.add(os.stat(netns.path(name)).st_ino)
                except OSError:
                    continue
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                if os.stat(entry / "ns" / "net").st_ino in inodes:
                    pids.add(int(entry.name))
            except (OSError, ValueError):
                continue
        return sorted(pids)

    def host_freeze(self, host: str, frozen: bool) -> list[int]:
        """SIGSTOP (or SIGCONT) every process of a host; their pids."""
        pids = self.host_processes(host)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)
        self.out(f"{host}: {'froze' if frozen else 'thawed'} {len(pids)} processes "
                 f"({', '.join(map(str, pids))})")
        return pids
