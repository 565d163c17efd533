"""The lab's own namespaces and wires, made with iproute2 and always by name.

Every veth pair is created with both ends directly in their namespaces, so nothing the lab
makes ever appears in (or moves out of) the root namespace.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

NETNS_DIR = "/run/netns"


class LabKernelError(RuntimeError):
    """An `ip` command failed."""


def ip(*args: str, check: bool = True) -> str:
    """Run `ip` with arguments; its output."""
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise LabKernelError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def namespaces() -> set[str]:
    """Names of the namespaces that exist now."""
    try:
        return set(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return set()


def add_namespace(name: str) -> None:
    """A namespace with its loopback up (kept if it exists)."""
    if name not in namespaces():
        ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")


def delete_namespace(name: str) -> bool:
    """Remove a namespace by name (its links go with it); True if it existed."""
    if name not in namespaces():
        return False
    ip("netns", "delete", name)
    return True


def link_exists(netns: str, name: str) -> bool:
    """Whether a link exists in a namespace."""
    return subprocess.run(["ip", "-n", netns, "link", "show", name], capture_output=True,
                          timeout=30).returncode == 0


def veth(ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
    """A veth pair made directly in both namespaces, both ends up (kept if it exists)."""
    if not link_exists(ns_a, name_a):
        ip("link", "add", name_a, "netns", ns_a, "type", "veth", "peer", "name", name_b,
           "netns", ns_b)
    ip("-n", ns_a, "link", "set", name_a, "up")
    ip("-n", ns_b, "link", "set", name_b, "up")


def bridge(netns: str, name: str, ports: Sequence[str] = ()) -> None:
    """A bridge in a namespace with these ports, up."""
    if not link_exists(netns, name):
        ip("-n", netns, "link", "add", name, "type", "bridge")
    ip("-n", netns, "link", "set", name, "up")
    for port in ports:
        ip("-n", netns, "link", "set", port, "master", name, "up")


def address(netns: str, ifname: str, cidr: str) -> None:
    """An address on an interface (kept if there)."""
    if cidr.split("/")[0] not in ip("-n", netns, "-o", "addr", "show", "dev", ifname):
        ip("-n", netns, "addr", "add", cidr, "dev", ifname)


def run_in(netns: str, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """A command run inside a namespace."""
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True,
                          text=True, timeout=timeout)
