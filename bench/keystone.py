"""Benchmark of Keystone authentication's cost: port create latency with Keystone tokens
(validated by keystonemiddleware, then cached) beside noauth, in the same run.

Run from the repository root:

    .venv/bin/python bench/keystone.py [--creates 500] [--no-write]

A real Keystone (SQLite, waitress, on loopback) and two neutrino servers on SQLite: one with
`auth_strategy = noauth`, one with `keystone`. Each gets a network; then port creates go to
the two servers in alternating rounds of 50 (so that both see the same moments of a noisy
machine), the Keystone server's with one token of the demo user, validated once and served
from the middleware's cache afterwards. Measured: create latency of each, and the
difference of their medians (goal: within 1 ms). Figures go to docs/benchmarks.md between
the `bench/keystone.py` markers.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import git_commit, machine, no_quotas, percentile, publish  # noqa: E402
from neutrino.lab.keystone import Keystone  # noqa: E402
from tests.support import Server  # noqa: E402

BEGIN = "<!-- bench/keystone.py:begin -->"
END = "<!-- bench/keystone.py:end -->"
GOAL_MS = 1.0
ROUND = 50


def creates(client: httpx.Client, network: str, count: int) -> list[float]:
    """Latencies (ms) of `count` sequential port creates."""
    out = []
    for _ in range(count):
        start = time.perf_counter()
        reply = client.post("/v2.0/ports", json={"port": {"network_id": network}})
        out.append((time.perf_counter() - start) * 1000)
        if reply.status_code != 201:
            raise RuntimeError(f"create failed: {reply.status_code} {reply.text}")
    return out


def network(client: httpx.Client, cidr: str) -> str:
    """A network with a /16 subnet; its id."""
    net = client.post("/v2.0/networks", json={"network": {"name": "bench"}}).json()["network"]
    client.post("/v2.0/subnets", json={"subnet": {
        "network_id": net["id"], "ip_version": 4, "cidr": cidr}}).raise_for_status()
    return str(net["id"])


def run(count: int, work: Path) -> dict[str, Any]:
    """Both servers, alternating rounds; the figures."""
    keystone = Keystone(work / "keystone")
    keystone.setup()
    servers: list[Server] = []
    try:
        keystone.start()
        for name, auth, extra in (("noauth", "noauth", {}),
                                  ("keystone", "keystone",
                                   {"keystone_authtoken": keystone.authtoken_options()})):
            where = work / f"server-{name}"
            where.mkdir()
            servers.append(Server(where, f"sqlite:///{where / 'n.sqlite'}", auth=auth,
                                  options={**no_quotas(), **extra}))
        keystone.seed(servers[1].url)
        for server in servers:
            server.start()
        token = keystone.token("demo", "demo")
        plain = httpx.Client(base_url=servers[0].url, timeout=30,
                             headers={"X-Project-Id": "demo", "X-Roles": "member"})
        tokened = httpx.Client(base_url=servers[1].url, timeout=30,
                               headers={"X-Auth-Token": token})
        with plain, tokened:
            nets = (network(plain, "10.0.0.0/16"), network(tokened, "10.0.0.0/16"))
            creates(plain, nets[0], 20)  # warm both up (the token's first validation)
            creates(tokened, nets[1], 20)
            got: dict[str, list[float]] = {"noauth": [], "keystone": []}
            for _ in range(max(1, count // ROUND)):
                got["noauth"] += creates(plain, nets[0], ROUND)
                got["keystone"] += creates(tokened, nets[1], ROUND)
    finally:
        for server in servers:
            server.stop()
        keystone.stop()
    figures: dict[str, Any] = {name: {f"p{q}": percentile(values, q) for q in (50, 90, 99)}
                              for name, values in got.items()}
    figures["creates_each"] = len(got["noauth"])
    figures["p50_difference_ms"] = figures["keystone"]["p50"] - figures["noauth"]["p50"]
    return figures


def markdown(result: dict[str, Any], argv: list[str], started: datetime.datetime) -> str:
    """This benchmark's section of docs/benchmarks.md."""
    diff = result["p50_difference_ms"]
    rows = [f"| {name} | {result[name]['p50']:.2f} / {result[name]['p90']:.2f} / "
            f"{result[name]['p99']:.2f} ms |" for name in ("noauth", "keystone")]
    return "\n".join([
        BEGIN, "## Keystone tokens: create latency beside noauth (`bench/keystone.py`)", "",
        f"- Command: `{' '.join(['.venv/bin/python', 'bench/keystone.py', *argv])}`",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}; Python {platform.python_version()}; commit {git_commit()}",
        f"- Two neutrino servers on SQLite (noauth, keystone) and a real Keystone (SQLite, "
        f"waitress) on loopback; {result['creates_each']} sequential port creates each, in "
        f"alternating rounds of {ROUND}; one demo-user token, validated by keystonemiddleware "
        "once and served from its cache afterwards.", "",
        "| server | create p50 / p90 / p99 |", "|---|---|", *rows, "",
        "| goal | measured | verdict |", "|---|---|---|",
        f"| Keystone p50 within {GOAL_MS:g} ms of noauth | {diff:+.2f} ms | "
        f"{'PASS' if diff <= GOAL_MS else 'FAIL'} |", "", END, ""])


def main(argv: list[str] | None = None) -> int:
    """Run, print, write."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creates", type=int, default=500)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    with tempfile.TemporaryDirectory(prefix="bench-keystone-") as tmp:
        result = run(args.creates, Path(tmp))
    publish(result, markdown(result, argv, started), BEGIN, END, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
