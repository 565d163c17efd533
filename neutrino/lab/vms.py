"""The lab's VMs: a namespace whose `ens3` is the peer of its port's tap in the host, as a
real VM's tap is, running a real DHCP client (busybox udhcpc)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neutrino.agent.linux import netns
from neutrino.lab.base import LabBase, LabError
from neutrino.lab.wiring import kernel
from neutrino.registry import tap_name

VM_IFNAME = "ens3"
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


class Vms(LabBase):
    """Boot, ask for a lease, run a command in, and delete VMs."""

    def write_vm_files(self) -> None:
        """The DHCP client's script, shared by every VM."""
        script = self.dir / "udhcpc.script"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)

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
        net = self.network(network)
        port = self.api_call("POST", "/v2.0/ports", {"port": {
            "network_id": net["id"], "name": name, "device_owner": "compute:nova",
            "project_id": net["project_id"],  # the VM is the network's project's
            "device_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{self.name}.{name}")),
            "binding:host_id": host}})["port"]
        record = {"name": name, "port_id": port["id"], "host": host,
                  "network_id": net["id"], "network": net["name"],
                  "mac_address": port["mac_address"],
                  "ip_address": port["fixed_ips"][0]["ip_address"] if port["fixed_ips"] else None}
        self.state["vms"][name] = record
        self.save()
        vm_ns = self.vm_namespace(name)
        netns.create(vm_ns)
        kernel(self.host_namespace(host)).ensure_veth(tap_name(port["id"]), VM_IFNAME, vm_ns)
        kernel(vm_ns).ensure_link(VM_IFNAME, up=True, mac=port["mac_address"])
        self.out(f"Booted {name} on {host}: port {port['id']} on {net['name']}, "
                 f"MAC {port['mac_address']}, fixed IP {record['ip_address']}")
        return record

    def vm_dhcp(self, name: str, attempts: int = 4) -> Lease:
        """Run the VM's DHCP client once; the lease and which host's DHCP port gave it."""
        vm = self.vm(name)
        result = netns.run(self.vm_namespace(name), [
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
        return self.run_in(self.vm_namespace(name), argv)

    def vm_addresses(self, name: str) -> str:
        """A VM's addresses as `nova list` shows them: `demo-net=192.168.1.3, 203.0.113.102`
        (fixed IPs, then floating IPs)."""
        vm = self.vm(name)
        port = self.api_get(f"/v2.0/ports/{vm['port_id']}")["port"]
        fips = self.api_get("/v2.0/floatingips", port_id=vm["port_id"])["floatingips"]
        addresses = [ip["ip_address"] for ip in port["fixed_ips"]]
        addresses += [f["floating_ip_address"] for f in fips]
        return f"{vm['network']}={', '.join(addresses)}"

    def vm_list(self) -> list[dict[str, str]]:
        """Every VM: name, host, status of its port, and its addresses."""
        self.require_up()
        rows = []
        for name in sorted(self.state["vms"]):
            vm = self.vm(name)
            port = self.api_get(f"/v2.0/ports/{vm['port_id']}")["port"]
            rows.append({"name": name, "host": vm["host"], "status": port["status"],
                         "networks": self.vm_addresses(name)})
        return rows

    def vm_delete(self, name: str) -> None:
        """Remove the VM's namespace (its tap goes with it) and its port."""
        vm = self.vm(name)
        netns.remove(self.vm_namespace(name))
        self.api_call("DELETE", f"/v2.0/ports/{vm['port_id']}", expect=(204, 404))
        del self.state["vms"][name]
        self.save()
        self.out(f"Deleted {name} (port {vm['port_id']})")
