"""Real packets between the lab's namespaces: pings and TCP connections that say what each
end saw (the addresses NAT left on them)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from neutrino.agent.linux import netns

# Accept one connection; print what this end saw: the peer and our own address.
_SERVER = """
import json, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(float(sys.argv[2]))
print("ready", flush=True)
try:
    c, peer = s.accept()
except OSError:
    print(json.dumps(None), flush=True); sys.exit(1)
c.sendall(b"hello\\n")
print(json.dumps({"peer": peer[0], "local": c.getsockname()[0]}), flush=True)
c.close()
"""
_CLIENT = """
import json, socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
data = c.recv(16)
print(json.dumps({"local": c.getsockname()[0], "data": data.decode()}))
"""


@dataclass(frozen=True)
class Connection:
    """One TCP connection as both ends saw it."""

    server_peer: str | None  # the source address the server saw
    server_local: str | None  # the address the server answered on (after DNAT: fixed)
    client_local: str | None  # the client's own address
    ok: bool

    def __str__(self) -> str:
        if not self.ok:
            return "no connection"
        return (f"connected: the server saw {self.server_peer} -> {self.server_local}; the "
                f"client's own address {self.client_local}")


def ping(namespace: str, address: str, count: int = 1, wait: float = 1.0) -> bool:
    """Whether `address` answers a ping from a namespace."""
    result = netns.run(namespace, ["ping", "-c", str(count), "-W", str(wait), "-i", "0.2",
                                   address], timeout=count * (wait + 1) + 5)
    return result.returncode == 0


def tcp(server_ns: str, client_ns: str, connect_to: str, port: int,
        timeout: float = 5.0) -> Connection:
    """Open one TCP connection from `client_ns` to `connect_to:port`, accepted by a
    listener in `server_ns`; what each end saw."""
    server = subprocess.Popen(netns.command(server_ns, [sys.executable, "-c", _SERVER,
                                                        str(port), str(timeout + 2)]),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            return Connection(None, None, None, False)
        client = netns.run(client_ns, [sys.executable, "-c", _CLIENT, connect_to, str(port),
                                       str(timeout)], timeout=timeout + 5)
        seen = json.loads(server.stdout.readline() or "null") if client.returncode == 0 \
            else None
        mine = json.loads(client.stdout or "null") if client.returncode == 0 else None
    finally:
        server.kill()
        server.wait()
    if not seen or not mine:
        return Connection(None, None, None, False)
    return Connection(seen["peer"], seen["local"], mine["local"], mine["data"] == "hello\n")


def _checksum(data: bytes) -> int:
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2))
    if len(data) % 2:
        total += data[-1] << 8
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


class Pinger:
    """ICMP echo to many addresses at once from one namespace (a raw socket opened there):
    which of them answer, in rounds of milliseconds rather than a process per ping."""

    def __init__(self, namespace: str) -> None:
        import socket

        with netns.entered(namespace):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.sock.setblocking(False)
        self.ident = (id(self) >> 4) & 0xFFFF
        self.seq = 0

    def round(self, addresses: list[str], wait: float = 0.2) -> set[str]:
        """Send one echo to each address; those that answered within `wait` seconds."""
        import select
        import struct
        import time

        self.seq = (self.seq + 1) & 0xFFFF
        for address in addresses:
            header = struct.pack("!BBHHH", 8, 0, 0, self.ident, self.seq)
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + b"neutrino"), self.ident,
                                 self.seq) + b"neutrino"
            try:
                self.sock.sendto(packet, (address, 0))
            except OSError:
                continue  # no route (yet): counts as no answer
        answered: set[str] = set()
        wanted = set(addresses)
        deadline = time.monotonic() + wait
        while answered != wanted:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                break
            while True:
                try:
                    data, (source, _port) = self.sock.recvfrom(2048)
                except BlockingIOError:
                    break
                offset = (data[0] & 0x0F) * 4  # past the IP header
                kind, _code, _sum, ident, seq = struct.unpack("!BBHHH",
                                                              data[offset:offset + 8])
                if kind == 0 and ident == self.ident and seq == self.seq:
                    answered.add(source)
        return answered & wanted

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
