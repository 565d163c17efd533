"""Named network namespaces, made and entered from the calling thread (pyroute2, no `ip`).

A thread can enter a namespace on its own (`setns` applies to the calling thread), so a
namespace is created by unsharing the thread's network namespace, bind-mounting it under
`/run/netns` as `ip netns add` does, and stepping back; a netlink socket is opened the same
way and stays bound to its namespace. pyroute2's own helpers fork a process for each of
these, ten times slower, and a cost paid for every network and router on a host.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import netns as _pyroute2_netns

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(OSError):
    """A namespace could not be made, entered or removed."""


def path(name: str) -> str:
    """Where a named namespace is mounted."""
    return f"{NETNS_DIR}/{name}"


def names() -> set[str]:
    """The named namespaces that exist now."""
    try:
        return set(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return set()


def exists(name: str) -> bool:
    """Whether a named namespace exists."""
    return os.path.exists(path(name))


def _setns(fd: int, what: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise NamespaceError(ctypes.get_errno(), f"cannot enter {what}: "
                             f"{os.strerror(ctypes.get_errno())}")


@contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the block in a named namespace (None: where the thread already is).

    Only the calling thread moves; it always comes back, or the process aborts rather than
    go on in the wrong namespace."""
    if name is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            target = os.open(path(name), os.O_RDONLY)
        except FileNotFoundError:
            raise NamespaceError(errno.ENOENT, f"no network namespace {name}") from None
        try:
            _setns(target, name)
        finally:
            os.close(target)
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                os.abort()
    finally:
        os.close(own)


def iproute(name: str | None = None) -> IPRoute:
    """A netlink socket bound to a named namespace (None: the thread's own)."""
    with entered(name):
        return IPRoute()


def create(name: str) -> bool:
    """A named namespace, made as `ip netns add` makes it; False if it existed."""
    if exists(name):
        return False
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            raise NamespaceError(ctypes.get_errno(), f"cannot create namespace {name}: "
                                 f"{os.strerror(ctypes.get_errno())}")
        try:
            _pyroute2_netns.attach(name, "thread-self")
        except FileExistsError:
            return False  # made meanwhile by another thread or process
        except OSError as err:
            raise NamespaceError(err.errno, f"cannot create namespace {name}: {err}") from err
        else:
            _loopback_up()  # as everything expects; still inside the new namespace
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                os.abort()
    finally:
        os.close(own)
    return True


def _loopback_up() -> None:
    """Bring `lo` up in the thread's namespace with two ioctls: a netlink socket (pyroute2
    parses its whole handshake) costs more than the rest of making a namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def remove(name: str) -> bool:
    """Remove a named namespace (its links go with it); False if it did not exist."""
    if not exists(name):
        return False
    try:
        _pyroute2_netns.remove(name)
    except FileNotFoundError:
        return False
    return True


def command(name: str | None, argv: Sequence[str]) -> list[str]:
    """A command line that runs `argv` in a namespace.

    `nsenter --net` switches the network namespace only; `ip netns exec` would also give the
    process a mount namespace of its own, and every namespace made later would then be
    propagated into each of them: quadratic on a host with a thousand networks."""
    if name is None:
        return list(argv)
    return ["nsenter", f"--net={path(name)}", "--", *argv]


def run(name: str | None, argv: Sequence[str], timeout: float = 30,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in a namespace and wait for it; its result (never raises on failure).

    The command is started from this thread while it is in the namespace (a child starts
    where the thread that made it is), not through `nsenter`: one program fewer to load per
    command, and an agent runs thousands of them in a cold start. The wait is registered
    with the child reaper (`process.children`), so that a reaper in another thread cannot
    take this child's exit status."""
    from neutrino.agent.linux.process import children

    try:
        with children.waiting(), entered(name):
            return subprocess.run(list(argv), capture_output=True, text=True,
                                  timeout=timeout, input=stdin, check=False)
    except NamespaceError as err:  # as nsenter would have said it, and exited 1
        return subprocess.CompletedProcess(list(argv), 1, "", str(err))


def popen(name: str | None, argv: Sequence[str], **options: Any) -> subprocess.Popen[Any]:
    """Start a command in a namespace without waiting for it (see `run`): its process is
    the command's own, from its first instruction."""
    with entered(name):
        return subprocess.Popen(list(argv), **options)
