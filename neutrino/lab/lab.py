"""`Lab`: build, drive and remove a lab; all of its state lives in one directory.

The concerns live apart: `base` (state, names, the API), `wiring` (namespaces and wires),
`hosts` (the server, agents and their daemons), `vms`; this module puts them together and
says how a lab goes up, comes down and reports its status.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import threading
from typing import Any

from neutrino.agent.linux import process
from neutrino.lab.base import LabError, free_port
from neutrino.lab.hosts import Hosts
from neutrino.lab.topology import Topology, TopologyError
from neutrino.lab.vms import Lease, Vms


class Lab(Hosts, Vms):
    """One lab, found by its name under a base directory."""

    def up(self, topology: Topology, keystone: bool = False) -> None:
        """Build the lab: server (with a Keystone of its own if asked), namespaces and
        wires, agents; wait until all are alive."""
        if self.state:
            raise LabError(f"lab {self.name} is already up ({self.dir}); "
                           "`neutrino lab down` first")
        taken = self.lab_namespaces()
        if taken:
            raise LabError(f"namespaces named like lab {self.name} exist already: "
                           f"{', '.join(taken)}")
        # dnsmasq drops its privileges: its files must be reachable by others.
        closed = process.closed_to_others(self.dir)
        if closed is not None:
            raise LabError(f"{closed} is closed to other users: the hosts' dnsmasq (user "
                           f"nobody) could not read its files under {self.dir}; "
                           f"chmod o+x {closed}, or another --dir")
        for path in (self.dir, self.dir / "server", self.dir / "hosts"):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
        raw = {"name": topology.name, "controller": topology.controller,
               "hosts": [{"name": h.name, "agents": list(h.agents)} for h in topology.hosts],
               "server_options": topology.server_options,
               "physical_network": topology.physical_network,
               "outside_gateway": topology.outside_gateway, "internet": topology.internet}
        self.state = {"name": self.name, "topology": raw, "namespaces": [], "agents": {},
                      "vms": {}, "server": {"port": free_port(), "pid": None},
                      "admin_password": secrets.token_urlsafe(12),
                      "agent_password": secrets.token_urlsafe(12),
                      "demo_password": secrets.token_urlsafe(12)}
        self.save()
        self.out(f"Lab {self.name}: topology {topology.name}, state in {self.dir}")
        try:
            self.write_vm_files()
            if keystone:
                self.start_keystone()
            self.start_server(topology)
            self.wire_up(topology)
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

    def down(self) -> None:
        """Remove everything the lab made: processes by pid, every namespace whose name
        starts with the lab's, its files.

        A second Ctrl-C (or SIGTERM) while this runs would leave half a lab behind: both are
        held off until it is done."""
        held = _hold_signals()
        try:
            self._down()
        finally:
            for signum, handler in held.items():
                signal.signal(signum, handler)

    def _down(self) -> None:
        self.reload()  # another command (the CLI) may have started or stopped processes
        if not self.state:
            removed = self.remove_namespaces()
            if self.dir.exists():
                shutil.rmtree(self.dir)
            self.out(f"Lab {self.name} is not up; {len(removed)} leftover namespaces removed"
                     if removed else f"Lab {self.name} is not up; nothing to remove")
            return
        for host in self.topology.hosts:  # a frozen host's processes could not stop
            for pid in self.host_processes(host.name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        for key in list(self.state["agents"]):
            host, kind = key.split("/")
            self.agent_stop(host, kind)
        for host in self.topology.hosts:
            self.stop_dnsmasq(host.name)
            self.stop_keepalived(host.name)
            self.stop_conntrackd(host.name)
        self.stop_server()
        self.stop_keystone()
        removed = self.remove_namespaces()
        shutil.rmtree(self.dir)
        self.out(f"Lab {self.name} removed: {len(removed)} namespaces, its processes and "
                 f"{self.dir}")

    def status(self) -> dict[str, Any]:
        """What runs, per host; the VMs."""
        self.require_up()
        server = self.state["server"]
        out: dict[str, Any] = {
            "lab": self.name, "directory": str(self.dir), "url": self.url,
            "server": {"pid": server["pid"],
                       "running": process.running(server["pid"], server["marker"])},
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
    """The lab makes namespaces: it needs root and nsenter."""
    if os.geteuid() != 0:
        raise LabError("the lab makes network namespaces: run it as root")
    if shutil.which("nsenter") is None:
        raise LabError("the lab needs util-linux (`nsenter`)")


__all__ = ["Lab", "LabError", "Lease", "TopologyError", "free_port", "require_root"]
