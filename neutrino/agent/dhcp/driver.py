"""The DHCP agent's data plane: one dnsmasq per hosted network, in `qdhcp-<network_id>`.

For each network: the namespace, the DHCP port as a veth pair (`tap...` in the host's
namespace, for the L2 agent to plug into the network's bridge; `ns-...` in the DHCP
namespace with the port's MAC and addresses), the rendered files, and dnsmasq itself,
daemonised so that it keeps serving when the agent stops. A port added is one more file in
the hosts directory, which dnsmasq reads without a reload; removed or changed files and new
options take one SIGHUP; only a change of ranges restarts dnsmasq. Watching the directory
takes an inotify instance, of which the kernel allows 128 per user by default: past that,
dnsmasq reads the same directory as a hosts file and every change takes a SIGHUP.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import netaddr
from oslo_config import cfg
from pyroute2 import netns

from neutrino.agent import reports
from neutrino.agent.dhcp import render
from neutrino.agent.linux.ip import KernelError, create_namespace, iproute

LOG = logging.getLogger(__name__)
PREFIX = "qdhcp-"
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Adopt the daemons this process starts once they detach, so that stopping one can
    reap it here; otherwise they would wait on PID 1, which may not reap (containers)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        LOG.debug("prctl(PR_SET_CHILD_SUBREAPER) is not available here")


def _reap(pid: int) -> None:
    """Collect a stopped child's exit status, if it is ours to collect."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def reap_dnsmasq_zombies() -> None:
    """Collect our exited dnsmasq children: daemonising forks twice, and the middle process
    exits to us (the subreaper). Only dnsmasq zombies whose parent we are are touched."""
    for children in Path("/proc/self/task").glob("*/children"):
        try:
            pids = children.read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                text = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            comm = text[text.find("(") + 1:text.rfind(")")]
            if comm == "dnsmasq" and text[text.rfind(")") + 2] == "Z":
                _reap(int(pid))


class InotifyExhausted(KernelError):
    """dnsmasq could not get an inotify instance to watch its host files."""


def _inotify_limit() -> str:
    try:
        return Path("/proc/sys/fs/inotify/max_user_instances").read_text().strip()
    except OSError:
        return "unknown"


def _write_atomically(target: Path, text: str) -> None:
    """Replace a file whole, so that dnsmasq never reads half of one."""
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text)
    tmp.replace(target)


def namespace(network_id: str, host_namespace: str | None = None) -> str:
    """Neutron's DHCP namespace name, after the host's namespace when there is one."""
    return f"{host_namespace}-{PREFIX}{network_id}" if host_namespace else f"{PREFIX}{network_id}"


def _alive(pid: int, network_id: str) -> bool:
    """Whether `pid` is a dnsmasq serving this network (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "dnsmasq" in cmdline and network_id in cmdline


class DnsmasqDriver:
    """dnsmasq processes and their namespaces."""

    agent_type = "DHCP agent"
    binary = "neutrino-dhcp-agent"
    topic = "dhcp_agent"

    def __init__(self, conf: cfg.ConfigOpts, host_netns: str | None = None,
                 dnsmasq: str | None = None) -> None:
        self.conf = conf
        self.host_netns = host_netns or conf.AGENT.host_namespace
        self.prefix = namespace("", self.host_netns)
        self.root = Path(conf.state_path) / "dhcp"
        self.dnsmasq = dnsmasq or shutil.which(
            "dnsmasq", path=f"{os.environ.get('PATH', '')}:/usr/sbin") or "dnsmasq"
        self._lock = threading.Lock()
        self._applied: dict[str, dict[str, Any]] = {}
        self._served: dict[str, set[str]] = {}  # ports with a file under a running dnsmasq
        # New dnsmasq processes watch their host files until inotify instances run out.
        self.watch_host_files = True
        become_subreaper()

    # -- the Driver contract --------------------------------------------------------------

    def configurations(self) -> dict[str, Any]:
        """Neutron's DHCP agent configurations, counted from what is served."""
        with self._lock:
            networks = list(self._applied.values())
        return reports.dhcp_configurations(self.conf, networks)

    def present(self) -> set[str]:
        """Networks with a DHCP namespace on this host."""
        return {name[len(self.prefix):] for name in netns.listnetns()
                if name.startswith(self.prefix)}

    def apply(self, network_id: str, state: dict[str, Any] | None) -> None:
        """Serve a network as its state says, or stop serving it (None)."""
        if state is None or state.get("dhcp_port_id") is None or not render.dhcp_subnets(
                state):
            self._remove(network_id)
            return
        paths = render.Paths(str(self.root / network_id))
        port = next(p for p in state["ports"] if p["id"] == state["dhcp_port_id"])
        interface = self._plug(network_id, port, state)
        watched = self._watched(network_id, paths)
        sighup = self._write_files(paths, state, watched)
        try:
            self._run(network_id, paths, self._args(state, interface, paths, watched), sighup)
        except InotifyExhausted:
            self.watch_host_files = False
            LOG.warning("dnsmasq could not watch its host files for network %s: inotify "
                        "instances are exhausted (fs.inotify.max_user_instances = %s). This "
                        "and further networks read them on SIGHUP instead; raise the sysctl "
                        "to avoid the reloads", network_id, _inotify_limit())
            self._run(network_id, paths, self._args(state, interface, paths, False), True)
        with self._lock:
            self._applied[network_id] = state
            # Every file is written and dnsmasq runs (a new file is read as it appears).
            self._served[network_id] = reports.served_ports([state])

    def status(self) -> tuple[dict[str, str], set[str]]:
        """Ports with a host file under a running dnsmasq are ready."""
        with self._lock:
            served = dict(self._served)
        ready: set[str] = set()
        for network_id, ports in served.items():
            if self._pid(network_id, render.Paths(str(self.root / network_id))) is not None:
                ready |= ports
        return {}, ready

    def drifted(self) -> set[str]:
        """Networks whose dnsmasq is gone (killed, crashed) since they were applied."""
        with self._lock:
            networks = list(self._applied)
        return {n for n in networks
                if self._pid(n, render.Paths(str(self.root / n))) is None}

    # -- pieces ---------------------------------------------------------------------------

    def _args(self, state: dict[str, Any], interface: str, paths: render.Paths,
              watched: bool) -> list[str]:
        args = [self.dnsmasq, *render.command(state, interface, paths,
                                              self.conf.dhcp_lease_duration,
                                              watched=watched)[1:]]
        args.remove("--keep-in-foreground")  # daemonised: it outlives the agent
        return args

    def _watched(self, network_id: str, paths: render.Paths) -> bool:
        """Whether the network's dnsmasq watches its host files: as the running one does,
        else unless inotify instances ran out (each dnsmasq needs one, and the kernel's
        default allows 128 per user)."""
        pid = self._pid(network_id, paths)
        if pid is not None:
            return b"--dhcp-hostsdir=" in Path(f"/proc/{pid}/cmdline").read_bytes()
        return self.watch_host_files

    def _plug(self, network_id: str, port: dict[str, Any], state: dict[str, Any]) -> str:
        """The DHCP port's veth pair, its MAC and addresses; returns the inner name."""
        ns = namespace(network_id, self.host_netns)
        outer, inner = f"tap{port['id'][:11]}", f"ns-{port['id'][:11]}"
        create_namespace(ns)
        with iproute(ns) as ipr:
            exists = bool(ipr.link_lookup(ifname=inner))
            lo = ipr.link_lookup(ifname="lo")
            if lo:
                ipr.link("set", index=lo[0], state="up")
        if not exists:
            with iproute(self.host_netns) as ipr:
                stale = ipr.link_lookup(ifname=outer)
                if stale:
                    ipr.link("del", index=stale[0])
                ipr.link("add", ifname=outer, kind="veth",
                         peer={"ifname": inner, "net_ns_fd": ns})
                ipr.link("set", index=ipr.link_lookup(ifname=outer)[0], state="up")
            LOG.info("Plugged DHCP port %s of network %s (%s / %s)", port["id"], network_id,
                     outer, inner)
        wanted = set()
        for ip in port["fixed_ips"]:
            subnet = next((s for s in state["subnets"] if s["id"] == ip["subnet_id"]), None)
            if subnet is not None:
                wanted.add((ip["ip_address"], netaddr.IPNetwork(subnet["cidr"]).prefixlen))
        with iproute(ns) as ipr:
            index = ipr.link_lookup(ifname=inner)[0]
            ipr.link("set", index=index, address=port["mac_address"], state="up")
            current = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                       for a in ipr.get_addr(index=index) if a["scope"] == 0}
            for address, prefix in sorted(wanted - current):
                ipr.addr("add", index=index, address=address, prefixlen=prefix)
            for address, prefix in sorted(current - wanted):
                ipr.addr("del", index=index, address=address, prefixlen=prefix)
        return inner

    def _write_files(self, paths: render.Paths, state: dict[str, Any], watched: bool) -> bool:
        """Write host files and options; True if dnsmasq must re-read them (SIGHUP): for
        removed or changed files, new options, and any change it does not watch for."""
        hostsdir = Path(paths.hostsdir)
        # dnsmasq drops its privileges: its files must be readable by others.
        hostsdir.mkdir(mode=0o755, parents=True, exist_ok=True)
        wanted = render.host_files(state)
        sighup = False
        for name in render.stale_files(os.listdir(hostsdir), wanted):
            (hostsdir / name).unlink()
            sighup = True
        for name, text in wanted.items():
            target = hostsdir / name
            if target.exists() and target.read_text() == text:
                continue
            sighup |= target.exists()  # a changed file needs a reload; a new one does not
            _write_atomically(target, text)
        if not watched:  # dnsmasq reads one file, on SIGHUP
            joined = "".join(text for _, text in sorted(wanted.items()))
            hostsfile = Path(paths.hostsfile)
            if not hostsfile.exists() or hostsfile.read_text() != joined:
                _write_atomically(hostsfile, joined)
                sighup = True
        opts = Path(paths.opts)
        text = render.opts_text(state)
        if not opts.exists() or opts.read_text() != text:
            sighup |= opts.exists()
            opts.write_text(text)
        leases = Path(paths.leases)
        if not leases.exists():
            leases.write_text(render.leases_text(state, self.conf.dhcp_lease_duration,
                                                 int(time.time())))
        return sighup

    def _pid(self, network_id: str, paths: render.Paths) -> int | None:
        try:
            pid = int(Path(paths.pid).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid, network_id) else None

    def _run(self, network_id: str, paths: render.Paths, args: list[str],
             sighup: bool) -> None:
        """Start dnsmasq, restart it if its command changed, or SIGHUP it if asked to."""
        pid = self._pid(network_id, paths)
        if pid is not None:
            running = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:]
            if [a.encode() for a in args[1:]] == [a for a in running if a]:
                if sighup:
                    os.kill(pid, signal.SIGHUP)
                return
            LOG.info("Restarting dnsmasq %d of network %s: its ranges changed", pid,
                     network_id)
            self._stop(pid)
        result = subprocess.run(["ip", "netns", "exec", namespace(network_id, self.host_netns),
                                 *args],
                                capture_output=True, text=True, timeout=30)
        reap_dnsmasq_zombies()
        if result.returncode != 0 and "inotify" in result.stderr:
            raise InotifyExhausted(result.stderr.strip())
        if result.returncode != 0:
            raise KernelError(f"dnsmasq for network {network_id} failed: {result.stderr}")
        LOG.info("Started dnsmasq for network %s (pid %s)", network_id,
                 self._pid(network_id, paths))

    @staticmethod
    def _stop(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(50):
            _reap(pid)
            if not Path(f"/proc/{pid}").exists():
                return
            threading.Event().wait(0.05)
        os.kill(pid, signal.SIGKILL)
        threading.Event().wait(0.05)
        _reap(pid)

    def _remove(self, network_id: str) -> None:
        """Stop dnsmasq and remove the namespace and files of a network, if there."""
        paths = render.Paths(str(self.root / network_id))
        pid = self._pid(network_id, paths)
        if pid is not None:
            self._stop(pid)
        ns = namespace(network_id, self.host_netns)
        if ns in netns.listnetns():
            netns.remove(ns)  # its ns- end goes with it, and with it the tap
            LOG.info("Removed DHCP namespace %s", ns)
        shutil.rmtree(self.root / network_id, ignore_errors=True)
        with self._lock:
            self._applied.pop(network_id, None)
            self._served.pop(network_id, None)
        self.watch_host_files = True  # a watching dnsmasq may have gone: try again
