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
from neutrino.agent.linux import proc
from neutrino.agent.linux.ip import KernelError, create_namespace, iproute

LOG = logging.getLogger(__name__)
PREFIX = "qdhcp-"
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
        self._pids: dict[str, int | None] = {}  # validated when applied
        self._dead: set[str] = set()  # found without their dnsmasq by the last look
        # New dnsmasq processes watch their host files until inotify instances run out.
        self.watch_host_files = True
        proc.become_subreaper()

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
        running = self._running(network_id, paths)
        # A running dnsmasq keeps the way it reads host entries; a new one watches them
        # unless inotify instances ran out (one each; the kernel allows 128 per user).
        watched = (b"--dhcp-hostsdir=" in b" ".join(running[1]) if running
                   else self.watch_host_files)
        sighup = self._write_files(paths, state, watched)
        try:
            pid = self._run(network_id, paths, self._args(state, interface, paths, watched),
                            sighup, running)
        except InotifyExhausted:
            self.watch_host_files = False
            LOG.warning("dnsmasq could not watch its host files for network %s: inotify "
                        "instances are exhausted (fs.inotify.max_user_instances = %s). This "
                        "and further networks read them on SIGHUP instead; raise the sysctl "
                        "to avoid the reloads", network_id, _inotify_limit())
            pid = self._run(network_id, paths, self._args(state, interface, paths, False),
                            True, None)
        with self._lock:
            self._applied[network_id] = state
            # Every entry is written and dnsmasq runs (it reads a new file as it appears).
            self._served[network_id] = reports.served_ports([state])
            self._pids[network_id] = pid
            self._dead.discard(network_id)

    def status(self) -> tuple[dict[str, str], set[str]]:
        """Ports with a host entry under a running dnsmasq are ready (liveness as the last
        look for drift found it)."""
        with self._lock:
            return {}, {port for network_id, ports in self._served.items()
                        if network_id not in self._dead for port in ports}

    def drifted(self) -> set[str]:
        """Networks whose dnsmasq is gone (killed, crashed) since they were applied.

        One cheap check per network against the pid validated when it was applied (the
        full pass validates again, by pid file and command line); exited children are
        collected first, so that a dead dnsmasq of ours is not taken for a live zombie."""
        proc.reap_children()
        with self._lock:
            pids = dict(self._pids)
        dead = {network_id for network_id, pid in pids.items() if not proc.running(pid)}
        with self._lock:
            self._dead = dead & set(self._applied)
            return set(self._dead)

    # -- pieces ---------------------------------------------------------------------------

    def _args(self, state: dict[str, Any], interface: str, paths: render.Paths,
              watched: bool) -> list[str]:
        args = [self.dnsmasq, *render.command(state, interface, paths,
                                              self.conf.dhcp_lease_duration,
                                              watched=watched)[1:]]
        args.remove("--keep-in-foreground")  # daemonised: it outlives the agent
        return args

    def _plug(self, network_id: str, port: dict[str, Any], state: dict[str, Any]) -> str:
        """The DHCP port's veth pair, its MAC and addresses; returns the inner name.

        One netlink session in the DHCP namespace, which only reads when all is in place
        (the periodic full pass comes through here for every network)."""
        ns = namespace(network_id, self.host_netns)
        outer, inner = f"tap{port['id'][:11]}", f"ns-{port['id'][:11]}"
        create_namespace(ns)
        wanted = set()
        for ip in port["fixed_ips"]:
            subnet = next((s for s in state["subnets"] if s["id"] == ip["subnet_id"]), None)
            if subnet is not None:
                wanted.add((ip["ip_address"], netaddr.IPNetwork(subnet["cidr"]).prefixlen))
        with iproute(ns) as ipr:
            if not ipr.link_lookup(ifname=inner):
                self._make_veth(outer, inner, ns)
                LOG.info("Plugged DHCP port %s of network %s (%s / %s)", port["id"],
                         network_id, outer, inner)
            links = {link.get_attr("IFLA_IFNAME"): link for link in ipr.get_links()}
            for name, address in (("lo", None), (inner, port["mac_address"])):
                link = links[name]
                if not link["flags"] & 1 or (address and
                                             link.get_attr("IFLA_ADDRESS") != address):
                    changes = {"address": address} if address else {}
                    ipr.link("set", index=link["index"], state="up", **changes)
            index = links[inner]["index"]
            current = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                       for a in ipr.get_addr(index=index) if a["scope"] == 0}
            for address, prefix in sorted(wanted - current):
                ipr.addr("add", index=index, address=address, prefixlen=prefix)
            for address, prefix in sorted(current - wanted):
                ipr.addr("del", index=index, address=address, prefixlen=prefix)
        return inner

    def _make_veth(self, outer: str, inner: str, ns: str) -> None:
        """The veth pair, made from the host's side straight into the DHCP namespace."""
        with iproute(self.host_netns) as ipr:
            stale = ipr.link_lookup(ifname=outer)
            if stale:
                ipr.link("del", index=stale[0])
            ipr.link("add", ifname=outer, kind="veth", peer={"ifname": inner, "net_ns_fd": ns})
            ipr.link("set", index=ipr.link_lookup(ifname=outer)[0], state="up")

    def _write_files(self, paths: render.Paths, state: dict[str, Any], watched: bool) -> bool:
        """Write host entries and options; True if dnsmasq must re-read them (SIGHUP)."""
        # dnsmasq drops its privileges: its files must be readable by others.
        Path(paths.base).mkdir(mode=0o755, parents=True, exist_ok=True)
        wanted = render.host_files(state)
        sighup = (self._write_hostsdir(paths, wanted) if watched
                  else self._write_hostsfile(paths, wanted))
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

    @staticmethod
    def _write_hostsdir(paths: render.Paths, wanted: dict[str, str]) -> bool:
        """One file per port, for a dnsmasq that watches the directory: a new file needs no
        signal (dnsmasq reads it once closed); a removed or changed one needs a SIGHUP."""
        Path(paths.hostsfile).unlink(missing_ok=True)
        hostsdir = Path(paths.hostsdir)
        hostsdir.mkdir(mode=0o755, exist_ok=True)
        present = set(os.listdir(hostsdir))
        sighup = False
        for name in render.stale_files(present, wanted):
            (hostsdir / name).unlink()
            sighup = True
        added = 0
        for name, text in wanted.items():
            target = hostsdir / name
            if name not in present:
                target.write_text(text)
                added += 1
            elif target.read_text() != text:
                _write_atomically(target, text)
                sighup = True
        if added or sighup:
            LOG.info("Host entries in %s: %d ports, %d new%s", hostsdir, len(wanted), added,
                     ", others changed or removed" if sighup else "")
        return sighup

    @staticmethod
    def _write_hostsfile(paths: render.Paths, wanted: dict[str, str]) -> bool:
        """Every port's entries in one file, for a dnsmasq that re-reads it on SIGHUP."""
        shutil.rmtree(paths.hostsdir, ignore_errors=True)
        joined = "".join(text for _, text in sorted(wanted.items()))
        hostsfile = Path(paths.hostsfile)
        if hostsfile.exists() and hostsfile.read_text() == joined:
            return False
        _write_atomically(hostsfile, joined)
        LOG.info("Host entries in %s: %d ports", hostsfile, len(wanted))
        return True

    def _pid(self, network_id: str, paths: render.Paths) -> int | None:
        """The network's dnsmasq from its pid file, if it runs (not a recycled pid)."""
        try:
            pid = int(Path(paths.pid).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if proc.running(pid, network_id) else None

    def _running(self, network_id: str,
                 paths: render.Paths) -> tuple[int, list[bytes]] | None:
        """The running dnsmasq's pid and arguments, read once per apply."""
        pid = self._pid(network_id, paths)
        if pid is None:
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:]
        except OSError:
            return None
        return pid, [a for a in argv if a]

    def _run(self, network_id: str, paths: render.Paths, args: list[str], sighup: bool,
             running: tuple[int, list[bytes]] | None) -> int | None:
        """Start dnsmasq, restart it if its command changed, or SIGHUP it if asked to; its
        pid."""
        if running is not None:
            pid, argv = running
            if [a.encode() for a in args[1:]] == argv:
                if sighup:
                    os.kill(pid, signal.SIGHUP)
                return pid
            LOG.info("Restarting dnsmasq %d of network %s: its ranges changed", pid,
                     network_id)
            proc.stop(pid, timeout=2.5)
        # nsenter switches the network namespace only; `ip netns exec` would also give every
        # dnsmasq a mount namespace of its own, and each namespace added later would then be
        # propagated into all of them: quadratic on a host with a thousand networks.
        ns = namespace(network_id, self.host_netns)
        result = subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "--", *args],
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0 and "inotify" in result.stderr:
            raise InotifyExhausted(result.stderr.strip())
        if result.returncode != 0:
            raise KernelError(f"dnsmasq for network {network_id} failed: {result.stderr}")
        started = self._pid(network_id, paths)
        LOG.info("Started dnsmasq for network %s (pid %s)", network_id, started)
        return started

    def _remove(self, network_id: str) -> None:
        """Stop dnsmasq and remove the namespace and files of a network, if there."""
        paths = render.Paths(str(self.root / network_id))
        pid = self._pid(network_id, paths)
        if pid is not None:
            proc.stop(pid, timeout=2.5)
        ns = namespace(network_id, self.host_netns)
        if ns in netns.listnetns():
            netns.remove(ns)  # its ns- end goes with it, and with it the tap
            LOG.info("Removed DHCP namespace %s", ns)
        shutil.rmtree(self.root / network_id, ignore_errors=True)
        with self._lock:
            self._applied.pop(network_id, None)
            self._served.pop(network_id, None)
            self._pids.pop(network_id, None)
            self._dead.discard(network_id)
        self.watch_host_files = True  # a watching dnsmasq may have gone: try again
