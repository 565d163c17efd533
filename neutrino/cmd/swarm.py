"""`neutrino agent-swarm`: many simulated agents against a running server, for load tests.

Each simulated agent registers, reports every `report_interval` (spread evenly so that the
swarm does not report in lockstep), and keeps a watch open, as a real agent does; none
touches the host. The run is bounded by `--duration` and stops by itself; it prints report
latency percentiles and counts as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

AGENT_TYPES = {"dhcp": ("DHCP agent", "neutrino-dhcp-agent", "dhcp_agent"),
               "l2": ("Linux bridge agent", "neutrino-linuxbridge-agent", "N/A")}


@dataclass
class Stats:
    """What the swarm measured."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    watches: int = 0
    watch_errors: int = 0
    measure_from: float = 0.0  # reports outside [measure_from, measure_until] (monotonic)
    measure_until: float = float("inf")  # are not counted


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams.

    httpx spends about a millisecond of CPU per request; a thousand agents would then load
    the swarm, not the server. This writes prepared requests and reads Content-Length
    bodies, which is all the agent channel needs.
    """

    def __init__(self, url: str, username: str, password: str) -> None:
        parsed = urlsplit(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.head = (f"Host: {self.host}:{self.port}\r\nAuthorization: Basic {token}\r\n"
                     "Content-Type: application/json\r\n")
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Send one request; return the status and the body (reconnects when needed)."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        message = (f"{method} {path} HTTP/1.1\r\n{self.head}"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        try:
            self.writer.write(message)
            await self.writer.drain()
            status = int((await self.reader.readline()).split()[1])
            length = 0
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            return status, await self.reader.readexactly(length)
        except (OSError, IndexError, ValueError, asyncio.IncompleteReadError):
            self.close()
            raise

    def close(self) -> None:
        """Drop the connection."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _agent(index: int, args: argparse.Namespace, stats: Stats, deadline: float) -> None:
    agent_type, binary, topic = AGENT_TYPES[args.agent_type]
    host = f"{args.prefix}{index:05d}"
    body: dict[str, Any] = {"agent_type": agent_type, "host": host, "binary": binary,
                            "topic": topic, "availability_zone": args.zone,
                            "configurations": {"networks": 0, "swarm": True},
                            "start_flag": True, "applied_revision": 0}
    conn = Connection(args.server, args.username, args.password)
    # Spread the first reports over one interval, as independent hosts would be.
    await asyncio.sleep(random.uniform(0, args.report_interval))
    watch_task: asyncio.Task[None] | None = None
    next_report = time.monotonic()
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            status, _ = await conn.request("POST", "/agent-channel/v1/report",
                                           json.dumps({"agent": body}).encode())
            if status == 200:
                if stats.measure_from <= time.monotonic() <= stats.measure_until:
                    stats.latencies.append(time.perf_counter() - started)
                body["start_flag"] = False
            else:
                stats.errors += 1
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            stats.errors += 1
        if args.watch and watch_task is None and not body["start_flag"]:
            watch_task = asyncio.create_task(_watch(args, agent_type, host, stats, deadline))
        next_report += args.report_interval
        await asyncio.sleep(max(0.0, min(next_report, deadline) - time.monotonic()))
    conn.close()
    if watch_task is not None:
        watch_task.cancel()


async def _watch(args: argparse.Namespace, agent_type: str, host: str, stats: Stats,
                 deadline: float) -> None:
    conn = Connection(args.server, args.username, args.password)
    since = 0
    try:
        while time.monotonic() < deadline:
            timeout = max(1.0, min(args.watch_timeout, deadline - time.monotonic()))
            query = urlencode({"agent_type": agent_type, "host": host, "since": since,
                               "timeout": timeout})
            try:
                status, answer = await conn.request("GET", f"/agent-channel/v1/watch?{query}")
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
                stats.watch_errors += 1
                await asyncio.sleep(1)
                continue
            if status == 200:
                since = json.loads(answer)["revision"]
                stats.watches += 1
            else:
                stats.watch_errors += 1
                await asyncio.sleep(1)
    finally:
        conn.close()


async def _run_share(args: argparse.Namespace, first: int, count: int,
                     start_at: float) -> Stats:
    """One process's share of the agents; measures from the wall-clock `start_at`."""
    stats = Stats(measure_from=time.monotonic() + (start_at - time.time()))
    stats.measure_until = stats.measure_from + args.duration
    # Run on a little after the window: a thousand agents hanging up at once is a load of
    # its own, not the steady state measured.
    deadline = stats.measure_until + 3.0
    await asyncio.gather(*(_agent(i, args, stats, deadline)
                           for i in range(first, first + count)))
    return stats


def _worker(args: argparse.Namespace, first: int, count: int, start_at: float,
            out: Any) -> None:
    stats = _loop_run(_run_share(args, first, count, start_at))
    out.send((stats.latencies, stats.errors, stats.watches, stats.watch_errors))
    out.close()


def _loop_run(coro: Any) -> Any:
    """Run on uvloop when it is there: the swarm must not be the bottleneck it measures."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the swarm in `args.processes` processes; return the merged figures."""
    start_at = time.time() + args.warmup
    shares = [args.count // args.processes + (1 if i < args.count % args.processes else 0)
              for i in range(args.processes)]
    ctx = multiprocessing.get_context("fork")
    workers, first = [], 0
    for share in shares:
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker, args=(args, first, share, start_at, send))
        proc.start()
        workers.append((proc, receive))
        first += share
    stats = Stats()
    for proc, receive in workers:
        latencies, errors, watches, watch_errors = await asyncio.to_thread(receive.recv)
        proc.join()
        stats.latencies += latencies
        stats.errors += errors
        stats.watches += watches
        stats.watch_errors += watch_errors
    ms = [x * 1000 for x in stats.latencies]
    return {"agents": args.count, "processes": args.processes, "warmup_s": args.warmup,
            "duration_s": args.duration, "report_interval_s": args.report_interval,
            "reports": len(ms), "report_errors": stats.errors,
            "watches_answered": stats.watches, "watch_errors": stats.watch_errors,
            "report_ms": {"p50": percentile(ms, 50), "p90": percentile(ms, 90),
                          "p99": percentile(ms, 99), "max": max(ms) if ms else float("nan")}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The swarm's command-line options."""
    parser.add_argument("--count", type=int, default=100, help="how many agents")
    parser.add_argument("--server", default="http://127.0.0.1:9696", help="server URL")
    parser.add_argument("--username", default="neutrino-agent", help="service user")
    parser.add_argument("--password", default="", help="its password")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds measured (the swarm stops by itself after them)")
    parser.add_argument("--warmup", type=float, default=0.0,
                        help="seconds run first and not measured (registration)")
    parser.add_argument("--report-interval", type=float, default=2.0)
    parser.add_argument("--agent-type", choices=sorted(AGENT_TYPES), default="dhcp")
    parser.add_argument("--prefix", default="swarm-", help="host name prefix")
    parser.add_argument("--zone", default="nova", help="availability zone")
    parser.add_argument("--watch-timeout", type=float, default=30.0,
                        help="seconds each watch waits before asking again")
    parser.add_argument("--processes", type=int, default=2,
                        help="client processes to spread the agents over")
    parser.add_argument("--no-watch", dest="watch", action="store_false",
                        help="report only, keep no watch open")


def main(argv: Sequence[str] | None = None) -> int:
    """Run a swarm and print its figures as JSON."""
    parser = argparse.ArgumentParser(prog="neutrino agent-swarm", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
