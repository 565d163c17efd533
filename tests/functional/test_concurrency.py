"""Concurrent writers: distinct addresses and MACs, and exhaustion as a 409, never a 500."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest

from tests.functional.test_api import make_net, ok
from tests.support import Server

CLIENTS = 64
POOL_SIZE = 253  # a /24 less network, broadcast and gateway


@pytest.mark.slow
def test_64_clients_fill_a_24(server: Server) -> None:
    """64 clients create ports on one /24 at once until it is full."""
    with server.http() as admin:
        net, subnet = make_net(admin, "10.200.0.0/24")
    start = threading.Barrier(CLIENTS)
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            start.wait()
            # Each client keeps creating until the pool answers that it is exhausted.
            for _ in range(POOL_SIZE):
                resp = c.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
                with lock:
                    statuses[resp.status_code] += 1
                    if resp.status_code != 201:
                        errors[resp.json()["NeutronError"]["type"]] += 1
                if resp.status_code != 201:
                    return

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)

    assert statuses[201] == POOL_SIZE, (statuses, errors)
    assert set(statuses) == {201, 409}, (statuses, errors, server.log_text()[-3000:])
    assert errors == Counter({"IpAddressGenerationFailure": CLIENTS}), errors
    with server.http() as admin:
        ports = ok(admin.get("/v2.0/ports", params={"network_id": net["id"]}))["ports"]
    addresses = [ip["ip_address"] for p in ports for ip in p["fixed_ips"]]
    macs = [p["mac_address"] for p in ports]
    assert len(ports) == POOL_SIZE
    assert len(set(addresses)) == POOL_SIZE and len(set(macs)) == POOL_SIZE
    assert all(ip["subnet_id"] == subnet["id"] for p in ports for ip in p["fixed_ips"])
