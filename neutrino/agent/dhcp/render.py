"""dnsmasq's files and command line for one network, as pure functions of its state.

One file per port in the network's `--dhcp-hostsdir` (dnsmasq reads additions there without
a reload), an options file with each subnet's router, DNS servers and routes and each
port's own options, and the command line. Names and formats follow Neutron's, so an
operator recognises them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import netaddr

DHCP_OWNER = "network:dhcp"
DOMAIN = "openstacklocal"


@dataclass(frozen=True)
class Paths:
    """Where one network's dnsmasq keeps its files."""

    base: str

    @property
    def hostsdir(self) -> str:
        """The directory of per-port host files."""
        return f"{self.base}/hosts.d"

    @property
    def hostsfile(self) -> str:
        """Every host file in one, for a dnsmasq that does not watch the directory."""
        return f"{self.base}/host"

    @property
    def opts(self) -> str:
        """The options file."""
        return f"{self.base}/opts"

    @property
    def leases(self) -> str:
        """The lease file."""
        return f"{self.base}/leases"

    @property
    def pid(self) -> str:
        """The pid file."""
        return f"{self.base}/pid"


def hostname(address: str) -> str:
    """Neutron's host name for an address: host-10-0-0-5."""
    return "host-" + address.replace(".", "-").replace(":", "-")


def dhcp_subnets(network: dict[str, Any]) -> list[dict[str, Any]]:
    """The network's subnets with DHCP enabled, in a stable order."""
    return sorted((s for s in network["subnets"] if s["enable_dhcp"]), key=lambda s: s["id"])


def host_entries(network: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(port id, MAC, address) for every address DHCP serves: enabled non-DHCP ports'
    addresses on DHCP-enabled subnets, by port id."""
    served = {s["id"] for s in dhcp_subnets(network)}
    return [(port["id"], port["mac_address"], ip["ip_address"])
            for port in sorted(network["ports"], key=lambda p: p["id"])
            if port["device_owner"] != DHCP_OWNER and port["admin_state_up"]
            for ip in port["fixed_ips"] if ip["subnet_id"] in served]


def host_files(network: dict[str, Any]) -> dict[str, str]:
    """Per-port host files (name: text): `mac,[ip]|ip,hostname` lines.

    No `set:port-<id>` tag: dnsmasq 2.90 crashes on SIGHUP once a host entry carrying a tag
    has a lease (seen here: any port removal would have killed it); a port's own options
    match its MAC through `--dhcp-mac` instead (`command`)."""
    files: dict[str, str] = {}
    for port_id, mac, address in host_entries(network):
        shown = f"[{address}]" if ":" in address else address
        files[port_id] = files.get(port_id, "") + f"{mac},{shown},{hostname(address)}.{DOMAIN}.\n"
    return files


def leases_text(network: dict[str, Any], lease_seconds: int, now: int) -> str:
    """A dnsmasq lease file holding every IPv4 host entry, valid for one lease from `now`.

    Written before a network's first dnsmasq starts (a new host after failover, or a lost
    lease file), so that dnsmasq treats the clients as known: a renewal coming in is acked
    instead of refused and the lease is not offered to anyone else (Neutron bug 2124215).
    """
    return leases_of([(mac, address) for _port, mac, address in host_entries(network)
                      if ":" not in address], lease_seconds, now)


def leases_of(entries: Iterable[tuple[str, str]], lease_seconds: int, now: int) -> str:
    """Lease file lines for (MAC, IPv4) entries, valid for one lease from `now`."""
    expiry = now + lease_seconds if lease_seconds > 0 else 0
    return "".join(f"{expiry} {mac} {address} {hostname(address)} *\n"
                   for mac, address in entries)


def _server_address(network: dict[str, Any], subnet_id: str) -> str | None:
    dhcp_port = next((p for p in network["ports"] if p["id"] == network.get("dhcp_port_id")),
                     None)
    if dhcp_port is None:
        return None
    return next((ip["ip_address"] for ip in dhcp_port["fixed_ips"]
                 if ip["subnet_id"] == subnet_id), None)


def option_line(tag: str, ip_version: int, name: str, value: str) -> str:
    """One options-file line, as Neutron formats it: `tag:<tag>[,tag:<extra>],option:<name>`
    (a number stands as it is in IPv4; IPv6 names and numbers take `option6:`), then the
    value unless it is blank (a blank router means: no router)."""
    extra, _, bare = name.rpartition(",")
    numbered = bare if bare.isdigit() else f"option:{bare}"
    option = f"option6:{bare}" if ip_version == 6 else numbered
    parts = [f"tag:{tag}", *([extra] if extra else []), option]
    if value.strip():
        parts.append(value)
    return ",".join(parts)


def port_options(network: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Ports with options of their own that DHCP serves: port id -> (MAC, option lines).
    An option of an IP version the port has no served address of is left out."""
    versions: dict[str, set[int]] = {}
    for port_id, _mac, address in host_entries(network):
        versions.setdefault(port_id, set()).add(6 if ":" in address else 4)
    found: dict[str, tuple[str, list[str]]] = {}
    for port in network["ports"]:
        lines = [option_line(f"port-{port['id']}", opt["ip_version"], opt["opt_name"],
                             opt["opt_value"])
                 for opt in port.get("extra_dhcp_opts", [])
                 if opt["ip_version"] in versions.get(port["id"], set())]
        if lines:
            found[port["id"]] = (port["mac_address"], lines)
    return found


def opts_text(network: dict[str, Any]) -> str:
    """Per-subnet options: router, DNS servers (the DHCP server itself when none are set, as
    Neutron does), and classless static routes (host routes plus the default route)."""
    lines = []
    for subnet in dhcp_subnets(network):
        if subnet["ip_version"] != 4:
            continue  # DHCPv6 options come with the IPv6 work
        tag = f"tag:subnet-{subnet['id']}"
        gateway = subnet["gateway_ip"]
        dns = subnet["dns_nameservers"] or [a for a in [_server_address(network, subnet["id"])]
                                            if a]
        if dns:
            lines.append(f"{tag},option:dns-server,{','.join(dns)}")
        routes = [f"{r['destination']},{r['nexthop']}" for r in subnet["host_routes"]]
        if gateway:
            lines.append(f"{tag},option:router,{gateway}")
            if routes:
                routes.append(f"0.0.0.0/0,{gateway}")
        else:
            lines.append(f"{tag},option:router")
        if routes:
            lines.append(f"{tag},option:classless-static-route,{','.join(routes)}")
    for _port, (_mac, port_lines) in sorted(port_options(network).items()):
        lines.extend(port_lines)
    return "".join(f"{line}\n" for line in lines)


def command(network: dict[str, Any], interface: str, paths: Paths, lease_seconds: int,
            extra_conf: str | None = None, watched: bool = True) -> list[str]:
    """dnsmasq's command line for a network (one static range per DHCP subnet).

    `watched`: dnsmasq watches the host files' directory (inotify) and reads new files by
    itself; otherwise it reads them joined in one hosts file, on start and on SIGHUP."""
    lease = "infinite" if lease_seconds < 0 else f"{lease_seconds}s"
    hosts = f"--dhcp-hostsdir={paths.hostsdir}" if watched else \
        f"--dhcp-hostsfile={paths.hostsfile}"
    args = ["dnsmasq", "--no-hosts", "--no-resolv", "--keep-in-foreground",
            "--except-interface=lo", f"--pid-file={paths.pid}",
            hosts, f"--dhcp-optsfile={paths.opts}",
            f"--dhcp-leasefile={paths.leases}", "--dhcp-match=set:ipxe,175",
            f"--interface={interface}", "--bind-interfaces", f"--domain={DOMAIN}",
            "--port=0"]
    for subnet in dhcp_subnets(network):
        net = netaddr.IPNetwork(subnet["cidr"])
        if subnet["ip_version"] == 4:
            args.append(f"--dhcp-range=set:subnet-{subnet['id']},{net.network},static,"
                        f"{net.netmask},{lease}")
        else:
            args.append(f"--dhcp-range=set:subnet-{subnet['id']},{net.network},static,"
                        f"{net.prefixlen},{lease}")
    # A port's own options match its MAC through a tag set here, not in its host entry:
    # dnsmasq 2.90 crashes on a SIGHUP once a tagged host entry has a lease. A port gaining
    # or losing options therefore restarts dnsmasq (its leases kept in the lease file);
    # a change of values only rewrites the options file.
    for port_id, (mac, _lines) in sorted(port_options(network).items()):
        args.append(f"--dhcp-mac=set:port-{port_id},{mac}")
    args.append(f"--dhcp-option-force=option:mtu,{network['mtu']}")
    addresses = sum(netaddr.IPNetwork(s["cidr"]).size for s in dhcp_subnets(network))
    args.append(f"--dhcp-lease-max={addresses}")
    if extra_conf:
        args.append(f"--conf-file={extra_conf}")
    return args


def stale_files(present: Iterable[str], wanted: dict[str, str]) -> set[str]:
    """Host files on disk that no port wants any more (they need removing and a SIGHUP)."""
    return set(present) - set(wanted)
