"""A minimal DHCPv4 client on a raw socket, for measuring when dnsmasq answers.

busybox udhcpc retries in whole seconds; this client sends DISCOVER (and REQUEST) frames
with any client MAC (`chaddr`) and waits for the answer with millisecond resolution. The
socket is opened inside a namespace of the benchmark's own and used from there.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from dataclasses import dataclass

from neutrino.agent.linux import netns

ETH_P_IP = 0x0800
MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6


@dataclass(frozen=True)
class Reply:
    """A server's answer."""

    kind: int
    yiaddr: str
    server_id: str | None


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _frame(src_mac: bytes, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 68, 67, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     b"\0\0\0\0", b"\xff\xff\xff\xff")
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\xff" * 6 + src_mac + struct.pack("!H", ETH_P_IP) + ip + udp


def _message(kind: int, xid: int, chaddr: bytes, options: bytes = b"") -> bytes:
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                       b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, chaddr + b"\0" * 10,
                       b"", b"")
    return head + MAGIC + bytes([53, 1, kind]) + options + b"\xff"


def _parse(frame: bytes, xid: int) -> Reply | None:
    if len(frame) < 14 + 20 + 8 + 240 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    udp = 14 + ihl
    if struct.unpack("!H", frame[udp + 2:udp + 4])[0] != 68:
        return None
    dhcp = frame[udp + 8:]
    if dhcp[0] != 2 or struct.unpack("!I", dhcp[4:8])[0] != xid or dhcp[236:240] != MAGIC:
        return None
    kind, server, i = 0, None, 240
    while i < len(dhcp) and dhcp[i] != 255:
        if dhcp[i] == 0:
            i += 1
            continue
        code, length = dhcp[i], dhcp[i + 1]
        value = dhcp[i + 2:i + 2 + length]
        if code == 53:
            kind = value[0]
        elif code == 54:
            server = socket.inet_ntoa(value)
        i += 2 + length
    return Reply(kind, socket.inet_ntoa(dhcp[16:20]), server)


class Client:
    """Raw DHCP on one interface of a namespace."""

    def __init__(self, namespace: str, ifname: str) -> None:
        with netns.entered(namespace):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
            self.sock.bind((ifname, 0))
        self.mac = self.sock.getsockname()[4][:6]

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def _exchange(self, message: bytes, xid: int, want: tuple[int, ...],
                  timeout: float) -> Reply | None:
        self.sock.send(_frame(self.mac, message))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([self.sock], [], [], left)[0]:
                return None
            reply = _parse(self.sock.recv(2048), xid)
            if reply is not None and reply.kind in want:
                return reply
        return None

    def discover(self, mac: str, timeout: float) -> Reply | None:
        """One DISCOVER for `mac`; the OFFER, or None."""
        xid = int.from_bytes(os.urandom(4), "big")
        return self._exchange(_message(DISCOVER, xid, bytes.fromhex(mac.replace(":", ""))),
                              xid, (OFFER,), timeout)

    def lease(self, mac: str, timeout: float) -> Reply | None:
        """DISCOVER, OFFER, REQUEST, ACK for `mac`; the ACK (None on no answer or NAK)."""
        chaddr = bytes.fromhex(mac.replace(":", ""))
        xid = int.from_bytes(os.urandom(4), "big")
        offer = self._exchange(_message(DISCOVER, xid, chaddr), xid, (OFFER,), timeout)
        if offer is None or offer.server_id is None:
            return None
        options = (bytes([50, 4]) + socket.inet_aton(offer.yiaddr)
                   + bytes([54, 4]) + socket.inet_aton(offer.server_id))
        ack = self._exchange(_message(REQUEST, xid, chaddr, options), xid, (ACK, NAK), timeout)
        return ack if ack is not None and ack.kind == ACK else None
