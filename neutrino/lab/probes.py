"""Real packets between the lab's namespaces: pings and TCP connections that say what each
end saw (the addresses NAT left on them)."""

from __future__ import annotations

import itertools
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


# An echo server for one long connection.
_ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(1); s.settimeout(float(sys.argv[2]))
print("ready", flush=True)
c, _peer = s.accept(); c.settimeout(None)
while True:
    data = c.recv(4096)
    if not data:
        break
    c.sendall(data)
"""
# A client that sends a byte every `interval` and waits for its echo, until its stdin
# closes; then prints the longest time between two echoes and whether the connection broke.
_ECHO_CLIENT = """
import json, socket, sys, threading, time
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.settimeout(30)
interval, done = float(sys.argv[3]), threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
last = time.monotonic(); gap = 0.0; echoes = 0; broken = None
print("connected", flush=True)
while not done.is_set():
    try:
        c.sendall(b"x")
        if c.recv(1) != b"x":
            broken = "closed"; break
    except OSError as err:
        broken = str(err); break
    now = time.monotonic(); gap = max(gap, now - last); last = now; echoes += 1
    time.sleep(interval)
print(json.dumps({"max_gap": gap, "broken": broken, "echoes": echoes}), flush=True)
"""


@dataclass(frozen=True)
class FlowReport:
    """What a long ping and a long TCP connection saw across a fault."""

    ping_gap: float  # the longest time without a ping reply, in seconds
    ping_replies: int
    tcp_gap: float  # the longest time between two echoes on the connection
    tcp_survived: bool
    tcp_error: str | None

    def __str__(self) -> str:
        tcp = "survived" if self.tcp_survived else f"BROKE ({self.tcp_error})"
        return (f"ping: longest gap {self.ping_gap:.2f} s ({self.ping_replies} replies); "
                f"TCP connection {tcp}, longest gap {self.tcp_gap:.2f} s")


class Flows:
    """A ping every 50 ms and one TCP connection echoing a byte every 50 ms, from
    `client_ns` to `address` (a listener in `server_ns`), kept running while a fault is
    made (`start`, then `stop` for the report)."""

    def __init__(self, server_ns: str, client_ns: str, address: str, port: int = 5001,
                 interval: float = 0.05) -> None:
        self.server_ns, self.client_ns, self.address = server_ns, client_ns, address
        self.port, self.interval = port, interval
        self._procs: list[subprocess.Popen[str]] = []

    def start(self) -> Flows:
        """Start the ping and open the connection (raises if it cannot be opened)."""
        server = subprocess.Popen(netns.command(self.server_ns, [
            sys.executable, "-c", _ECHO_SERVER, str(self.port), "10"]),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._procs.append(server)
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("the echo server did not start")
        client = subprocess.Popen(netns.command(self.client_ns, [
            sys.executable, "-c", _ECHO_CLIENT, self.address, str(self.port),
            str(self.interval)]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self._procs.append(client)
        assert client.stdout is not None
        if client.stdout.readline().strip() != "connected":
            self.stop()
            raise RuntimeError(f"no TCP connection to {self.address}:{self.port}")
        self._procs.append(subprocess.Popen(netns.command(self.client_ns, [
            "ping", "-D", "-i", str(self.interval), "-W", "1", self.address]),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        return self

    def stop(self) -> FlowReport:
        """Stop everything; what was seen."""
        server, client, pinger = (self._procs + [None, None, None])[:3]
        ping_gap, replies, tcp = 0.0, 0, None
        if pinger is not None:
            pinger.terminate()
            out, _err = pinger.communicate(timeout=10)
            stamps = [float(line[1:line.index("]")]) for line in out.splitlines()
                      if line.startswith("[") and "bytes from" in line]
            replies = len(stamps)
            ping_gap = max((b - a for a, b in itertools.pairwise(stamps)), default=0.0)
        if client is not None:
            try:
                out, _err = client.communicate(input="", timeout=40)
                tcp = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
            except (subprocess.TimeoutExpired, ValueError):
                client.kill()
                client.wait()
        if server is not None:
            server.kill()
            server.wait()
        self._procs = []
        if tcp is None:
            return FlowReport(ping_gap, replies, 0.0, False, "no report")
        return FlowReport(ping_gap, replies, float(tcp["max_gap"]), tcp["broken"] is None,
                          tcp["broken"])
