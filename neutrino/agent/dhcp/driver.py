"""The DHCP agent's data plane: one dnsmasq per hosted network, in `qdhcp-<network_id>`.

For each network the driver makes what its plan (`plan.plan`, pure) says: the namespace, the
DHCP port as a veth pair (`tap...` in the host's namespace, for the L2 agent to plug into the
network's bridge; `ns-...` in the DHCP namespace with the port's MAC and addresses), the
files, and dnsmasq itself, daemonised so that it keeps serving when the agent stops and
supervised by pid file (`process.Daemons`). A port added is one more file in the hosts
directory, which dnsmasq reads without a reload; removed or changed files and new options
take one SIGHUP; only a change of ranges restarts dnsmasq. Watching the directory takes an
inotify instance, of which the kernel allows 128 per user by default: past that, dnsmasq
reads the same directory as a hosts file and every change takes a SIGHUP.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from oslo_config import cfg

from neutrino import registry
from neutrino.agent import reports
from neutrino.agent.contract import Key, Status
from neutrino.agent.dhcp import render
from neutrino.agent.dhcp.plan import DhcpPlan, Settings, daemon_name, paths, plan
from neutrino.agent.linux import netns, process
from neutrino.agent.linux.kernel import Kernel
from neutrino.agent.linux.process import Daemon, DaemonError, Daemons
from neutrino.agent.readback import ReadBacks

LOG = logging.getLogger(__name__)
NETWORK = "network"


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


def _plugged_alike(a: DhcpPlan, b: DhcpPlan) -> bool:
    """Whether two plans want the same DHCP port in the same namespace."""
    return (a.namespace, a.port_id, a.mac, a.outer, a.inner, a.addresses) == \
        (b.namespace, b.port_id, b.mac, b.outer, b.inner, b.addresses)


def settings_of(conf: cfg.ConfigOpts, dnsmasq: str | None = None) -> Settings:
    """The DHCP plan's settings from the agent's configuration."""
    binary = dnsmasq or shutil.which("dnsmasq", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    return Settings(str(Path(conf.state_path) / "dhcp"), binary or "dnsmasq",
                    conf.dhcp_lease_duration, conf.AGENT.host_namespace)


class DnsmasqDriver:
    """dnsmasq processes and their namespaces."""

    kind = registry.DHCP
    key_kinds = frozenset({NETWORK})

    def __init__(self, conf: cfg.ConfigOpts, host_netns: str | None = None,
                 dnsmasq: str | None = None, verify_interval: float | None = None) -> None:
        self.conf = conf
        # A port added to a network changes its host entries only: between two reads of the
        # DHCP port's link and addresses (drift repaired at the latest then), a plan whose
        # port is as applied asks the kernel nothing (each netlink request costs ~1 ms).
        self.verify_interval = conf.AGENT.resync_interval if verify_interval is None \
            else verify_interval
        self._verified = ReadBacks()
        base = settings_of(conf, dnsmasq)
        self.settings = Settings(base.root, base.dnsmasq, base.lease_seconds,
                                 host_netns or base.host_namespace)
        self.host = Kernel(self.settings.host_namespace)
        self.prefix = registry.dhcp_namespace("", self.settings.host_namespace)
        self.root = Path(self.settings.root)
        closed = process.closed_to_others(self.root)
        if closed is not None:
            raise DaemonError(f"dnsmasq drops its privileges to nobody, then reads its host "
                              f"entries under {self.root}: {closed} is closed to other users "
                              f"(chmod o+x {closed}, or another state_path)")
        self.daemons = Daemons()
        self._lock = threading.Lock()
        self._applied: dict[str, DhcpPlan] = {}
        self._dead: set[str] = set()  # found without their dnsmasq by the last look
        # New dnsmasq processes watch their host files until inotify instances run out.
        self.watch_host_files = True
        process.become_subreaper()

    # -- the Driver contract --------------------------------------------------------------

    def configurations(self) -> dict[str, Any]:
        """Neutron's DHCP agent configurations, counted from what is served."""
        with self._lock:
            plans = list(self._applied.values())
        return reports.dhcp_configurations(self.conf, plans)

    def present(self) -> set[Key]:
        """Networks with a DHCP namespace on this host."""
        return {(NETWORK, name[len(self.prefix):]) for name in netns.names()
                if name.startswith(self.prefix)}

    def apply(self, key: Key, state: dict[str, Any] | None) -> bool:
        """Serve a network as its state says, or stop serving it (None)."""
        network_id = key[1]
        wanted = plan(state, self.settings, self._watched(network_id)) if state else None
        if wanted is None:
            return self._remove(network_id)
        changed = self._plug_if_needed(wanted)
        reload = self._write_files(wanted)
        try:
            outcome = self.daemons.ensure(wanted.daemon, signal.SIGHUP if reload else None)
        except DaemonError as err:
            if "inotify" not in str(err):
                raise
            self.watch_host_files = False
            LOG.warning("dnsmasq could not watch its host files for network %s: inotify "
                        "instances are exhausted (fs.inotify.max_user_instances = %s). This "
                        "and further networks read them on SIGHUP instead; raise the sysctl "
                        "to avoid the reloads", network_id, _inotify_limit())
            wanted = plan(state, self.settings, False)  # type: ignore[arg-type]
            assert wanted is not None
            self._write_files(wanted)
            outcome = self.daemons.ensure(wanted.daemon)
        with self._lock:
            self._applied[network_id] = wanted
            self._dead.discard(network_id)
        return changed or reload or outcome.changed

    def status(self) -> Status:
        """Ports with a host entry under a running dnsmasq are ready (liveness as the last
        look for drift found it)."""
        with self._lock:
            return Status(dhcp_ready=frozenset(
                port for network_id, p in self._applied.items()
                if network_id not in self._dead for port in p.served))

    def drifted(self) -> set[Key]:
        """Networks whose dnsmasq is gone (killed, crashed) since they were applied."""
        dead_files = self.daemons.dead()
        with self._lock:
            self._dead = {n for n, p in self._applied.items() if p.paths.pid in dead_files}
            return {(NETWORK, n) for n in self._dead}

    # -- pieces ---------------------------------------------------------------------------

    def _watched(self, network_id: str) -> bool:
        """How a network's dnsmasq reads host entries: a running one keeps its way; a new one
        watches them unless inotify instances ran out."""
        where = paths(self.settings, network_id)
        daemon = Daemon(daemon_name(network_id), (), where.pid, network_id)
        pid = self.daemons.pid(daemon)
        argv = process.cmdline(pid) if pid else None
        if argv is None:
            return self.watch_host_files
        return any(a.startswith("--dhcp-hostsdir=") for a in argv)

    def _plug_if_needed(self, wanted: DhcpPlan) -> bool:
        """Plug the DHCP port unless it is as applied and was read back recently."""
        now = time.monotonic()
        with self._lock:
            before = self._applied.get(wanted.network_id)
        if before is not None and _plugged_alike(before, wanted) and \
                self._verified.recent(wanted.network_id, self.verify_interval, now) and \
                netns.exists(wanted.namespace):
            return False
        changed = self._plug(wanted)
        self._verified.mark(wanted.network_id, now)
        return changed

    def _plug(self, wanted: DhcpPlan) -> bool:
        """The DHCP port's veth pair, its MAC and addresses; True if anything changed.

        One netlink session in the DHCP namespace, which only reads when all is in place
        (the periodic full pass comes through here for every network)."""
        changed = netns.create(wanted.namespace)
        inside = Kernel(wanted.namespace, owned=True)
        with inside.session():
            if wanted.inner not in inside.links():
                with self.host.session():
                    self.host.delete(wanted.outer)  # a stale host end would block the pair
                    changed |= self.host.ensure_veth(wanted.outer, wanted.inner,
                                                     wanted.namespace)
                    self.host.ensure_link(wanted.outer, up=True)
                LOG.info("Plugged DHCP port %s of network %s (%s / %s)", wanted.port_id,
                         wanted.network_id, wanted.outer, wanted.inner)
            changed |= inside.ensure_link(wanted.inner, up=True, mac=wanted.mac)
            changed |= inside.ensure_addresses(wanted.inner, wanted.addresses)
        return changed

    def _write_files(self, wanted: DhcpPlan) -> bool:
        """Write host entries and options; True if dnsmasq must re-read them (SIGHUP)."""
        where = wanted.paths
        # dnsmasq drops its privileges: its files must be readable by others.
        Path(where.base).mkdir(mode=0o755, parents=True, exist_ok=True)
        files = dict(wanted.host_files)
        sighup = (self._write_hostsdir(where, files) if wanted.watched
                  else self._write_hostsfile(where, files))
        opts = Path(where.opts)
        if not opts.exists() or opts.read_text() != wanted.opts:
            sighup |= opts.exists()
            opts.write_text(wanted.opts)
        leases = Path(where.leases)
        if not leases.exists():
            leases.write_text(render.leases_of(wanted.leases, wanted.lease_seconds,
                                               int(time.time())))
        return sighup

    @staticmethod
    def _write_hostsdir(where: render.Paths, wanted: dict[str, str]) -> bool:
        """One file per port, for a dnsmasq that watches the directory: a new file needs no
        signal (dnsmasq reads it once closed); a removed or changed one needs a SIGHUP."""
        Path(where.hostsfile).unlink(missing_ok=True)
        hostsdir = Path(where.hostsdir)
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
    def _write_hostsfile(where: render.Paths, wanted: dict[str, str]) -> bool:
        """Every port's entries in one file, for a dnsmasq that re-reads it on SIGHUP."""
        shutil.rmtree(where.hostsdir, ignore_errors=True)
        joined = "".join(text for _, text in sorted(wanted.items()))
        hostsfile = Path(where.hostsfile)
        if hostsfile.exists() and hostsfile.read_text() == joined:
            return False
        _write_atomically(hostsfile, joined)
        LOG.info("Host entries in %s: %d ports", hostsfile, len(wanted))
        return True

    def _remove(self, network_id: str) -> bool:
        """Stop dnsmasq and remove the namespace and files of a network, if there."""
        where = paths(self.settings, network_id)
        changed = self.daemons.stop(Daemon(daemon_name(network_id), (), where.pid, network_id))
        namespace = registry.dhcp_namespace(network_id, self.settings.host_namespace)
        if netns.remove(namespace):  # its ns- end goes with it, and with it the tap
            LOG.info("Removed DHCP namespace %s", namespace)
            changed = True
        if Path(where.base).exists():
            shutil.rmtree(where.base, ignore_errors=True)
            changed = True
        with self._lock:
            self._applied.pop(network_id, None)
            self._verified.forget(network_id)
            self._dead.discard(network_id)
        self.watch_host_files = True  # a watching dnsmasq may have gone: try again
        return changed
