"""conntrackd for one HA router, as pure functions of its keepalived plan.

An HA router's hosts keep each other's connection tracking state: conntrackd in each
router namespace sends its kernel's conntrack events to the other hosts over the HA network
(FTFW, the reliable protocol), and what it hears goes straight into its own kernel's table
(no external cache): a backup's kernel already tracks every established connection of the
primary, NAT mappings and SNAT ports included, so that a new primary forwards the first
packet of each as the old one did, with no commit step racing that packet. keepalived
calls `script_text`'s script on each transition: a new primary reads its kernel's table
afresh and sends it all to the others; a backup or a faulty node asks for a full resync.

With one peer the events go to it by UDP unicast; with more, to a multicast group on the
HA network, a port per VRID, so that the routers sharing a project's HA network never hear
each other's state. Either way they never leave the HA network (`Interface`).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from neutrino.agent.l3.keepalived import HaPlan
from neutrino.agent.linux.process import Daemon

PORT = 3780
MULTICAST_GROUP = "225.0.0.50"
HASH_SIZE = 8192
HASH_LIMIT = 65536
SOCKET_BUFFER = 2097152
SOCKET_BUFFER_MAX = 8388608
# A UNIX socket's path has room for 107 bytes: a longer one goes to a short directory.
MAX_SOCKET_PATH = 100
SHORT_SOCKETS = "/run/neutrino-conntrackd"


@dataclass(frozen=True)
class Paths:
    """Where one router's conntrackd keeps its files (the router's keepalived directory)."""

    base: str

    @property
    def conf(self) -> str:
        """conntrackd.conf."""
        return f"{self.base}/conntrackd.conf"

    @property
    def pid(self) -> str:
        """The pid file the agent writes (conntrackd writes none)."""
        return f"{self.base}/conntrackd.pid"

    @property
    def script(self) -> str:
        """The script keepalived calls on each transition."""
        return f"{self.base}/conntrackd.sh"

    @property
    def control(self) -> str:
        """conntrackd's control socket (the script's commands go through it), in the
        router's directory unless that path is too long for a socket."""
        path = f"{self.base}/conntrackd.ctl"
        if len(path) <= MAX_SOCKET_PATH:
            return path
        return f"{SHORT_SOCKETS}/{hashlib.sha256(self.base.encode()).hexdigest()[:24]}.ctl"

    @property
    def lock(self) -> str:
        """conntrackd's lock file."""
        return f"{self.base}/conntrackd.lock"

    @property
    def log(self) -> str:
        """conntrackd's log."""
        return f"{self.base}/conntrackd.log"


def own_address(plan: HaPlan) -> str:
    """This node's address on the HA network."""
    return str(ipaddress.ip_interface(plan.ha_cidr).ip)


def transport(plan: HaPlan) -> list[str]:
    """The Sync section's transport block: UDP to the one peer, else multicast."""
    own = own_address(plan)
    peers = sorted(set(plan.unicast_peers), key=ipaddress.ip_address)
    if len(peers) == 1:
        return ["UDP {", f"IPv4_address {own}", f"IPv4_Destination_Address {peers[0]}",
                f"Port {PORT}", f"Interface {plan.ha_device}",
                f"SndSocketBuffer {SOCKET_BUFFER}", f"RcvSocketBuffer {SOCKET_BUFFER}",
                "Checksum on", "}"]
    return ["Multicast {", f"IPv4_address {MULTICAST_GROUP}", f"Group {PORT + plan.vrid}",
            f"IPv4_interface {own}", f"Interface {plan.ha_device}",
            f"SndSocketBuffer {SOCKET_BUFFER}", f"RcvSocketBuffer {SOCKET_BUFFER}",
            "Checksum on", "}"]


def render(plan: HaPlan, paths: Paths) -> str:
    """conntrackd.conf for one router on this node."""
    lines = [f"# conntrackd for HA router {plan.router_id}, written by neutrino.",
             "Sync {", "Mode FTFW {",
             # What the other hosts send goes into this kernel at once (see above).
             "DisableExternalCache on", "}",
             *transport(plan), "}",
             "General {",
             f"HashSize {HASH_SIZE}", f"HashLimit {HASH_LIMIT}",
             "Syslog off", f"LogFile {paths.log}", f"LockFile {paths.lock}",
             "UNIX {", f"Path {paths.control}", "}",
             f"NetlinkBufferSize {SOCKET_BUFFER}",
             f"NetlinkBufferSizeMaxGrowth {SOCKET_BUFFER_MAX}",
             "Filter From Userspace {",
             "Protocol Accept {", "TCP", "UDP", "ICMP", "}",
             # The HA network's own traffic (VRRP, this very sync) is nobody's connection.
             "Address Ignore {", "IPv4_address 127.0.0.1",
             f"IPv4_address {own_address(plan)}",
             *(f"IPv4_address {p}" for p in sorted(set(plan.unicast_peers),
                                                    key=ipaddress.ip_address)),
             "}", "}", "}"]
    return _indent(lines)


def _indent(lines: list[str]) -> str:
    out, depth = [], 0
    for line in lines:
        if line == "}":
            depth -= 1
        out.append("    " * depth + line)
        if line.endswith("{"):
            depth += 1
    return "\n".join(out) + "\n"


def script_text(plan: HaPlan, paths: Paths) -> str:
    """The script keepalived runs (in the router's namespace) with primary, backup or
    fault: each step of a transition, whatever the one before it did."""
    ctl = f"conntrackd -C {paths.conf}"
    return "\n".join([
        "#!/bin/sh",
        f"# conntrackd transitions of HA router {plan.router_id} (VRID {plan.vrid}), run "
        "by keepalived; written by neutrino.",
        'case "$1" in',
        "primary)",
        # The kernel's table (with what the old primary sent) becomes what this host sends.
        f"    {ctl} -R",
        f"    {ctl} -B",
        "    ;;",
        "backup|fault)",
        f"    {ctl} -n",
        "    ;;",
        "esac",
        "exit 0"]) + "\n"


def command(paths: Paths) -> list[str]:
    """conntrackd's command line: in the foreground (the agent writes its pid file)."""
    return ["conntrackd", "-C", paths.conf]


def daemon(plan: HaPlan, paths: Paths, namespace: str | None) -> Daemon:
    """The router's conntrackd for `process.Daemons` (started attached, then left)."""
    return Daemon(f"conntrackd for router {plan.router_id}", tuple(command(paths)),
                  paths.pid, paths.conf, namespace, foreground=True)
