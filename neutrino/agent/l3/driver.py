"""The L3 agent's data plane: legacy routers in `qrouter-<id>` namespaces.

For each router the driver makes what its plan (`plan.plan`, pure) says, through the Linux
layer: the namespace with its sysctls, a veth pair per port (the router's end `qr-`/`qg-`
inside with the port's MAC and addresses; the host's end `tap...`, which the host's L2
agent plugs into the network's bridge, as it does a VM's), the routes, and the NAT table in
one transaction. A floating IP added is announced with a gratuitous ARP; the connections of
a floating IP removed are cleared from conntrack, so that its flows stop. Everything is
compared first: a second pass changes nothing.
"""

from __future__ import annotations

import logging
import shutil
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

from oslo_config import cfg

from neutrino import registry
from neutrino.agent.contract import Key, Notify, Status
from neutrino.agent.l3 import conntrackd, keepalived
from neutrino.agent.l3.ha_monitor import ACTIVE, HaMonitor, Watched
from neutrino.agent.l3.host_links import HostLinks
from neutrino.agent.l3.plan import (
    FENCE_TABLE,
    FENCE_TABLES,
    LEASE_ADVERTS,
    HaSettings,
    RouterPlan,
    namespace,
    plan,
)
from neutrino.agent.linux import netns, process
from neutrino.agent.linux.kernel import Kernel, Link
from neutrino.agent.linux.netfilter import Netfilter, NetfilterError, expires_in
from neutrino.agent.linux.process import Daemon, Daemons
from neutrino.agent.readback import ReadBacks

LOG = logging.getLogger(__name__)
ROUTER = "router"
PORT_PREFIXES = ("qr-", "qg-", "ha-")
# A dead keepalived's addresses go this long before its fence closes (the backup takes
# over a skew after that): room for a late timer on a loaded host.
RELEASE_MARGIN = 0.05


def l3_configurations(conf: cfg.ConfigOpts, plans: list[RouterPlan]) -> dict[str, Any]:
    """Neutron's L3 agent configurations, counted from the routers served."""
    gateways = sum(1 for p in plans if p.gateway)
    return {"agent_mode": conf.agent_mode, "interface_driver": conf.interface_driver,
            "handle_internal_only_routers": conf.handle_internal_only_routers,
            "log_agent_heartbeats": False, "routers": len(plans),
            "interfaces": sum(len(p.internal) for p in plans), "ex_gw_ports": gateways,
            "gateway_ports": gateways,
            "floating_ips": sum(len(p.floating_ips) for p in plans)}


GARP_DELAYS = (0.0, 0.15, 0.5, 2.0)  # the first ones may go before the L2 agent plugs the port
ETH_P_ARP = 0x0806


def garp_frame(mac: str, address: str) -> bytes:
    """A gratuitous ARP request (sender and target the address itself), broadcast."""
    hw = bytes.fromhex(mac.replace(":", ""))
    ip = socket.inet_aton(address)
    header = b"\xff" * 6 + hw + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + hw + ip + b"\x00" * 6 + ip
    return header + arp


def announce(namespace_name: str, device: str, mac: str, addresses: list[str]) -> None:
    """Gratuitous ARPs for addresses on a device, a few times over two seconds, from a raw
    socket opened in the router's namespace, in a thread of their own (the apply does not
    wait, and no process is started per packet): neighbours learn a new router port or
    floating IP at once instead of after their ARP cache's next try."""
    frames = [garp_frame(mac, a) for a in addresses]

    def run() -> None:
        try:
            with netns.entered(namespace_name):
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            sock.bind((device, 0))
        except OSError:
            return  # the router (or the port) went away meanwhile
        started = time.monotonic()
        try:
            for delay in GARP_DELAYS:
                time.sleep(max(0.0, started + delay - time.monotonic()))
                for frame in frames:
                    sock.send(frame)
        except OSError:
            pass  # the device went away meanwhile
        finally:
            sock.close()

    threading.Thread(target=run, name=f"garp-{device}", daemon=True).start()


class RouterDriver:
    """Legacy routers: namespaces, ports, routes and NAT."""

    kind = registry.L3
    key_kinds = frozenset({ROUTER})

    def __init__(self, conf: cfg.ConfigOpts, host_netns: str | None = None,
                 verify_interval: float | None = None) -> None:
        self.conf = conf
        # Between two full reads of a router's addresses (drift repaired at the latest then),
        # a change applies only the difference from what was applied.
        self.verify_interval = conf.AGENT.resync_interval if verify_interval is None \
            else verify_interval
        self._verified = ReadBacks()
        self.host_netns = host_netns or conf.AGENT.host_namespace
        self.host = Kernel(self.host_netns)
        self.prefix = namespace("", self.host_netns)
        self._lock = threading.Lock()
        self._applied: dict[str, RouterPlan] = {}
        self._nft: dict[str, Netfilter] = {}
        self.host_links = HostLinks(f"{conf.ha_confs_path}/host-links",
                                    conf.ha_vrrp_track_interfaces, self.host_netns)
        self.ha_settings = HaSettings(
            advert_int=conf.ha_vrrp_advert_int, auth_password=conf.ha_vrrp_auth_password,
            health_check_interval=conf.ha_vrrp_health_check_interval,
            confs_path=conf.ha_confs_path, conntrackd=conf.ha_conntrackd_enabled,
            track_file=str(self.host_links.path) if self.host_links.enabled else None)
        process.become_subreaper()  # keepalived's exits come back to the agent
        self.daemons = Daemons()
        self.monitor = HaMonitor(on_dead=self._release)
        self._waiting_wiring: set[str] = set()  # HA routers whose keepalived waits for L2
        # Of those, the ones a look found wired: queued already, not looked for again
        self._found_wired: set[str] = set()
        # HA routers whose keepalived died here, until their fence has closed by itself
        # (monotonic deadline): keepalived is not started again before.
        self._orphaned: dict[str, float] = {}

    # -- the Driver contract --------------------------------------------------------------

    def configurations(self) -> dict[str, Any]:
        """Neutron's L3 agent configurations."""
        with self._lock:
            plans = list(self._applied.values())
        return l3_configurations(self.conf, plans)

    def present(self) -> set[Key]:
        """Routers with a namespace on this host."""
        return {(ROUTER, name[len(self.prefix):]) for name in netns.names()
                if name.startswith(self.prefix)}

    def apply(self, key: Key, state: dict[str, Any] | None) -> bool:
        """Make a router as its state says, or remove it (None, or admin down)."""
        router_id = key[1]
        wanted = plan(state, self.host_netns, self.ha_settings) if state else None
        if wanted is None:
            return self._remove(router_id)
        with self._lock:
            before = self._applied.get(router_id)
        if wanted == before and self._verified.recent(router_id, self.verify_interval) and \
                netns.exists(wanted.namespace):
            # Its state changed in what this host does not use (a port turned ACTIVE, the
            # router's binding followed the active host): hundreds of such passes in a cold
            # start. Only keepalived may be due (it waited for the L2 agent).
            return self._keepalived(wanted) if wanted.ha is not None else False
        changed = self._realize(wanted, before)
        with self._lock:
            self._applied[router_id] = wanted
        return changed

    def status(self) -> Status:
        """Floating IPs served here are ACTIVE (an HA router's where it is active), and
        each HA router's VRRP state here."""
        with self._lock:
            plans = list(self._applied.values())
        states = self.monitor.states()
        serving = [p for p in plans if not p.vrrp or states.get(p.router_id) == ACTIVE]
        return Status(floatingips={f.id: "ACTIVE" for p in serving for f in p.floating_ips},
                      routers={p.router_id: states.get(p.router_id, "standby")
                               for p in plans if p.vrrp})

    def drifted(self) -> set[Key]:
        """Routers whose namespace went away since they were applied, whose keepalived
        died, or whose keepalived waited for the L2 agent and can start now (their HA
        port is wired)."""
        names = netns.names()
        dead = self.daemons.dead()
        with self._lock:
            found = {(ROUTER, r) for r, p in self._applied.items()
                     if p.namespace not in names or (
                         p.ha is not None and {self._paths(r).pid,
                                               self._sync_paths(r).pid} & dead)}
            waiting = {r: p for r, p in self._applied.items()
                       if r in self._waiting_wiring and r not in self._found_wired}
        if waiting:
            # One read of the host's links for all of them: applying every waiting router
            # at each look (a cold start has hundreds) kept the workers from the rest. A
            # router found wired is not looked for again until its keepalived starts (or
            # finds it unwired): in a cold start hundreds wait for a worker once wired,
            # and reading a host's thousand links for them at every look was for nothing.
            links = self.host.links(details=False)
            wired = {r for r, p in waiting.items()
                     if p.ha_port is not None and _in_bridge(links.get(p.ha_port.outer))}
            with self._lock:
                self._found_wired |= wired & self._waiting_wiring
        with self._lock:
            found |= {(ROUTER, r) for r in self._found_wired}
            now = time.monotonic()
            found -= {(ROUTER, r) for r, until in self._orphaned.items() if now < until}
        return found

    def events(self, notify: Notify, stop: threading.Event) -> None:
        """Until `stop`: an HA router whose VRRP state changes here is queued at once, so
        that its status goes to the server in the pass that follows; the host links its
        keepalived track are followed beside (`host_links`)."""
        links = threading.Thread(target=self.host_links.run, args=(stop,),
                                 name="host-links", daemon=True)
        links.start()
        try:
            self.monitor.run(lambda router_id: notify({(ROUTER, router_id)}), stop)
        finally:
            links.join(5)

    # -- pieces ---------------------------------------------------------------------------

    def _netfilter(self, wanted: RouterPlan) -> Netfilter:
        with self._lock:
            nft = self._nft.get(wanted.router_id)
            if nft is None or nft.namespace != wanted.namespace:
                nft = self._nft[wanted.router_id] = Netfilter(wanted.namespace)
            return nft

    def _realize(self, wanted: RouterPlan, before: RouterPlan | None) -> bool:
        made = netns.create(wanted.namespace)
        if made:
            with self._lock:
                self._nft.pop(wanted.router_id, None)  # a new namespace: a new context
        changed = made
        if wanted.ha is None and Path(self._paths(wanted.router_id).pid).exists():
            # No longer HA here (made legacy, or its HA port went): keepalived goes first,
            # taking its addresses with it, before the driver sets the legacy ones.
            changed |= self._stop_keepalived(wanted.router_id, wanted.namespace)
        now = time.monotonic()
        incremental = before is not None and not made and \
            self._verified.recent(wanted.router_id, self.verify_interval, now)
        if not incremental:
            self._verified.mark(wanted.router_id, now)
        old_ports = {p.device: p for p in before.ports} if before else {}
        inside = Kernel(wanted.namespace, owned=True)
        with inside.session(), self.host.session():
            changed |= inside.ensure_sysctls(dict(wanted.sysctls))
            devices = {p.device for p in wanted.ports}
            links = inside.links()
            for name in sorted(links):
                if name.startswith(PORT_PREFIXES) and name not in devices:
                    changed |= inside.delete(name)  # a port gone: its host end goes too
            plugged = set()
            for port in wanted.ports:
                if port.device not in links:
                    plugged.add(port.device)
                    self.host.delete(port.outer)  # a stale host end would block the pair
                    self.host.ensure_veth(port.outer, port.device, wanted.namespace)
                    LOG.info("Plugged port %s of router %s (%s / %s)", port.id,
                             wanted.router_id, port.outer, port.device)
                    changed = True
                changed |= self.host.ensure_link(port.outer, up=True, mtu=port.mtu)
                changed |= inside.ensure_link(port.device, up=True, mac=port.mac, mtu=port.mtu)
                if wanted.vrrp and port is not wanted.ha_port:
                    continue  # keepalived adds and removes the router's own addresses
                addresses = port.addresses
                if port is wanted.ha_port and wanted.ha is not None:
                    # The VRID's address on the ha- device is keepalived's too.
                    vip = keepalived.vip_address(wanted.ha.vrid)
                    if incremental and port.device in links:
                        continue  # nothing of ours changes on it between verifications
                    addresses = addresses | (inside.addresses(port.device) & {vip})
                # What was applied is assumed to be there only if the device was already.
                known = old_ports.get(port.device) if incremental and port.device in links \
                    else None
                changed |= inside.ensure_addresses(
                    port.device, addresses,
                    assume=known.addresses if known is not None else None)
            if not wanted.vrrp:
                changed |= inside.ensure_routes(wanted.routes)
        nft = self._netfilter(wanted)
        changed |= nft.apply(wanted.table)
        for fence in wanted.fences:
            changed |= nft.apply(fence)
        if not incremental or (before is not None and before.fences != wanted.fences):
            # Made legacy, a router without ports, or a change before an agent restart.
            unwanted = FENCE_TABLES - {fence.key for fence in wanted.fences}
            for family, name in sorted(unwanted):
                changed |= nft.remove(family, name)
        if wanted.ha is not None:
            changed |= self._keepalived(wanted)
        self._announce(wanted, before, plugged, garp=not wanted.vrrp)
        return changed

    # -- HA routers ------------------------------------------------------------------------

    def _paths(self, router_id: str) -> keepalived.Paths:
        return keepalived.Paths(f"{self.conf.ha_confs_path}/{router_id}")

    def _wired(self, wanted: RouterPlan) -> bool:
        """The HA port's host end is in a bridge: the L2 agent wired it. keepalived must not
        start before (Neutron bug 1597461): alone on its link it would hear no adverts,
        make itself primary and, once wired, serve beside the real primary."""
        assert wanted.ha_port is not None
        return _in_bridge(self.host.link(wanted.ha_port.outer))

    def _keepalived(self, wanted: RouterPlan) -> bool:
        """keepalived for an HA router: its files written, started once the HA port is
        wired (reloaded when they change, adopted across agent restarts), followed by the
        monitor."""
        router_id, ha = wanted.router_id, wanted.ha
        assert ha is not None
        paths = self._paths(router_id)
        if not self._wired(wanted):
            with self._lock:
                first = router_id not in self._waiting_wiring
                self._waiting_wiring.add(router_id)
                self._found_wired.discard(router_id)  # looked for again
            if first:
                LOG.info("HA router %s: keepalived waits for HA port %s to be wired",
                         router_id, wanted.ha_port.id if wanted.ha_port else "-")
            return False
        with self._lock:
            self._waiting_wiring.discard(router_id)
            self._found_wired.discard(router_id)
            if time.monotonic() < self._orphaned.get(router_id, 0.0):
                return False  # its fence closes first (see `_release`)
        base = Path(paths.base)
        base.mkdir(parents=True, exist_ok=True)
        if ha.track_file and not Path(ha.track_file).exists():
            self.host_links.sync()  # keepalived reads it as it starts
        changed = _write(Path(paths.conf), keepalived.render(ha))
        if ha.health_checked:
            changed |= _write(Path(paths.health_check), keepalived.health_check_text(ha),
                              mode=0o700)
        if changed and ha.password_ignored:  # once per new configuration, not per pass
            LOG.warning("HA router %s: VRRPv3 (advert_int %s) has no authentication; "
                        "ha_vrrp_auth_password is not used", router_id, ha.advert_int)
        sync_changed = self._conntrackd(wanted)  # before keepalived can call its script
        daemon = keepalived.daemon(ha, paths, wanted.namespace)
        if self.daemons.pid(daemon) is None:
            # A stale VRRP pid file naming a reused pid would keep keepalived from starting.
            Path(paths.vrrp_pid).unlink(missing_ok=True)
            # A keepalived starts as a backup: addresses left by one that died (or by one
            # that outlived an agent killed with it) go first, or this host would go on
            # answering ARP for them and report itself active beside the real primary.
            self._clear_addresses(wanted)
            with self._lock:
                self._orphaned.pop(router_id, None)
        outcome = self.daemons.ensure(daemon, keepalived.RELOAD_SIGNAL if changed else None)
        self.monitor.watch(Watched(router_id, wanted.namespace, ha.ha_device,
                                   keepalived.vip_address(ha.vrid), paths.vrrp_pid))
        return changed or sync_changed or outcome.changed

    def _sync_paths(self, router_id: str) -> conntrackd.Paths:
        return conntrackd.Paths(self._paths(router_id).base)

    def _conntrackd(self, wanted: RouterPlan) -> bool:
        """conntrackd for an HA router (if `ha_conntrackd_enabled`): its files written and
        the daemon running with them (restarted when they change: it has no reload)."""
        ha = wanted.ha
        assert ha is not None
        paths = self._sync_paths(wanted.router_id)
        if ha.conntrackd_script is None:
            return self.daemons.stop(conntrackd.daemon(ha, paths, wanted.namespace))
        if paths.control.startswith(conntrackd.SHORT_SOCKETS):
            Path(conntrackd.SHORT_SOCKETS).mkdir(mode=0o700, exist_ok=True)
        changed = _write(Path(paths.conf), conntrackd.render(ha, paths))
        changed |= _write(Path(paths.script), conntrackd.script_text(ha, paths), mode=0o700)
        daemon = conntrackd.daemon(ha, paths, wanted.namespace)
        if changed and self.daemons.pid(daemon) is not None:
            self.daemons.stop(daemon)
        if self.daemons.pid(daemon) is None:
            # A lock file left by a conntrackd killed with SIGKILL would stop the next.
            Path(paths.lock).unlink(missing_ok=True)
            Path(paths.control).unlink(missing_ok=True)
        return self.daemons.ensure(daemon).changed or changed

    def _release(self, router_id: str) -> None:
        """keepalived died here. The router goes on forwarding until its fence closes by
        itself (its lease, renewed by adverts no longer sent, runs out before the backup
        takes over), so that the gap is only the backup's wait beyond the lease; just
        before that moment a timer removes the addresses the dead one left, so that the
        host never holds them beside the new primary; the next pass after starts
        keepalived again, as a backup."""
        with self._lock:
            applied = self._applied.get(router_id)
            if applied is None or applied.ha is None or router_id in self._orphaned:
                return  # not HA here, or the same death seen again: the wait it set stands
        left = max(0.0, self._lease_left(applied) - RELEASE_MARGIN)
        with self._lock:
            if router_id in self._orphaned:
                return  # seen by another thread meanwhile
            self._orphaned[router_id] = time.monotonic() + left + RELEASE_MARGIN
        timer = threading.Timer(left, self._release_addresses, (router_id,))
        timer.daemon = True
        timer.start()
        LOG.warning("HA router %s: keepalived died here; its fence closes within %.2f s, "
                    "then its addresses go and keepalived starts again", router_id,
                    left + RELEASE_MARGIN)

    def _lease_left(self, applied: RouterPlan) -> float:
        """Seconds until the router's fence closes here: what its lease has left, read from
        the kernel (a whole lease if it cannot be read)."""
        assert applied.ha is not None
        whole = applied.ha.advert_int * LEASE_ADVERTS
        try:
            listing = self._netfilter(applied).run(f"list set inet {FENCE_TABLE} lease")
        except NetfilterError:
            return whole
        left = expires_in(listing)
        return 0.0 if left is None else min(whole, left)

    def _release_addresses(self, router_id: str) -> None:
        """The fence of a router whose keepalived died is closing: its addresses go now,
        before the backup takes over (unless keepalived runs again meanwhile)."""
        with self._lock:
            applied = self._applied.get(router_id)
            orphaned = router_id in self._orphaned
        if applied is None or applied.ha is None or not orphaned:
            return
        if self.daemons.pid(keepalived.daemon(applied.ha, self._paths(router_id),
                                              applied.namespace)) is not None:
            return
        try:
            self._clear_addresses(applied)
        except Exception:  # the next pass removes them before keepalived starts
            LOG.exception("HA router %s: removing the addresses a dead keepalived left "
                          "failed", router_id)

    @staticmethod
    def _clear_addresses(wanted: RouterPlan) -> bool:
        """Remove a router's own addresses (and the VRID's) from its devices here; True if
        any was there."""
        ha = wanted.ha
        assert ha is not None
        inside = Kernel(wanted.namespace, owned=True)
        changed = False
        with inside.session():
            for port in wanted.ports:
                if port is not wanted.ha_port:
                    changed |= inside.ensure_addresses(port.device, ())
            changed |= inside.ensure_addresses(ha.ha_device, [ha.ha_cidr])
        if changed:
            LOG.warning("HA router %s: removed the addresses a dead keepalived left",
                        wanted.router_id)
        return changed

    def _stop_keepalived(self, router_id: str, namespace_name: str) -> bool:
        self.monitor.forget(router_id)
        paths = self._paths(router_id)
        # Found by its pid file and marker alone: after an agent restart no plan is known.
        stopped = self.daemons.stop(Daemon(f"keepalived for router {router_id}", (),
                                           paths.pid, paths.conf, namespace_name))
        sync = self._sync_paths(router_id)
        stopped |= self.daemons.stop(Daemon(f"conntrackd for router {router_id}", (),
                                            sync.pid, sync.conf, namespace_name))
        Path(sync.control).unlink(missing_ok=True)
        shutil.rmtree(paths.base, ignore_errors=True)
        return stopped

    def _announce(self, wanted: RouterPlan, before: RouterPlan | None,
                  plugged: set[str], garp: bool = True) -> None:
        """Gratuitous ARPs for the addresses of ports just plugged and for floating IPs
        added (not for HA routers: keepalived sends them); conntrack cleared for each
        floating IP removed."""
        old = {f.address: f for f in (before.floating_ips if before else ())}
        new = {f.address: f for f in wanted.floating_ips}
        for port in wanted.ports if garp else ():
            fresh = sorted(a.split("/")[0] for a in port.addresses
                           if port.device in plugged or (
                               port is wanted.gateway and a.endswith("/32")
                               and a.split("/")[0] not in old))
            if fresh:
                announce(wanted.namespace, port.device, port.mac, fresh)
        for address, fip in sorted(old.items()):
            if new.get(address) != fip:
                self._forget_flows(wanted.namespace, address)

    @staticmethod
    def _forget_flows(namespace_name: str, address: str) -> None:
        """Delete the connections of a floating IP: inbound (to it) and outbound (SNATed to
        it, so their replies come back to it)."""
        for selector in ("--orig-dst", "--reply-dst"):
            netns.run(namespace_name, ["conntrack", "-D", selector, address], timeout=10)
        LOG.info("Cleared the connections of floating IP %s in %s", address, namespace_name)

    def _remove(self, router_id: str) -> bool:
        """Remove a router's namespace (its devices and their host ends go with it)."""
        with self._lock:
            old = self._applied.pop(router_id, None)
            nft = self._nft.pop(router_id, None)
            self._verified.forget(router_id)
        if nft is not None:
            nft.close()
        name = old.namespace if old else namespace(router_id, self.host_netns)
        with self._lock:
            self._waiting_wiring.discard(router_id)
            self._found_wired.discard(router_id)
            self._orphaned.pop(router_id, None)
        stopped = self._stop_keepalived(router_id, name)
        if netns.remove(name) or stopped:
            LOG.info("Removed router %s (namespace %s)", router_id, name)
            return True
        return False


def _write(path: Path, text: str, mode: int = 0o600) -> bool:
    """Write a file if its text differs; True if it did (atomically: keepalived may read it
    at any time)."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)
    return True


def _in_bridge(link: Link | None) -> bool:
    """An HA port's host end the L2 agent has wired (enslaved to its network's bridge)."""
    return link is not None and link.master is not None
