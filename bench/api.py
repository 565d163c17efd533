"""Benchmark of the Networking API: port create latency, port listing, concurrent throughput.

Run from the repository root (each backend gets a throwaway database and its own server):

    .venv/bin/python bench/api.py [--backends sqlite,postgresql] [--ports 10000] [--quick]

Per backend it pre-creates `--ports` ports on one network (bulk POSTs), then measures
sequential single-port creates, listing every port, and `--clients` concurrent creators for
`--duration` seconds; it prints a table and rewrites its section of docs/benchmarks.md
(between the `bench/api.py` markers) unless `--no-write` is given. `--quick` is a smoke run.
A backend whose database is unreachable is skipped with the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import platform
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import CLK_TCK, git_commit, machine, percentile, proc_cpu  # noqa: E402
from bench.common import write_doc as write_section  # noqa: E402
from tests.support import Server, backend_unavailable, database_url  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- bench/api.py:begin -->"
END = "<!-- bench/api.py:end -->"
PROJECT = "bench-project"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

# The goals of the issue.
GOAL_CREATE_P50_MS = 10.0
GOAL_LIST_MS = 300.0
GOAL_LIST_PORTS = 10_000
GOAL_RATE = 200.0
GOAL_CLIENTS = 16
DISTURBED_PCT = 25.0  # CPU of unrelated processes (% of one core) that makes a run noisy


@dataclass
class Settings:
    """What one run measures."""

    ports: int
    creates: int
    lists: int
    clients: int
    duration: float
    batch: int


@dataclass
class Phase:
    """CPU used while a phase ran: the server process, this process and the whole machine."""

    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    db_cpu: float = 0.0  # PostgreSQL backends serving the benchmark's database
    machine_busy: float = 0.0  # in cores

    def server_pct(self) -> float:
        """Server CPU as a percentage of one core."""
        return 100.0 * self.server_cpu / self.wall if self.wall else 0.0

    def client_pct(self) -> float:
        """Benchmark-client CPU as a percentage of one core."""
        return 100.0 * self.client_cpu / self.wall if self.wall else 0.0

    def db_pct(self) -> float:
        """Database-server CPU as a percentage of one core."""
        return 100.0 * self.db_cpu / self.wall if self.wall else 0.0

    def other_pct(self) -> float:
        """CPU used by every other process on the machine, as a percentage of one core."""
        return max(0.0, 100.0 * self.machine_busy - self.server_pct() - self.client_pct()
                   - self.db_pct())


@dataclass
class Result:
    """The figures of one backend."""

    backend: str
    skipped: str | None = None
    db_version: str = ""
    cidr: str = ""
    setup_ports: int = 0
    setup_s: float = 0.0
    create_ms: dict[str, float] = field(default_factory=dict)
    creates: int = 0
    list_ms: dict[str, float] = field(default_factory=dict)
    list_count: int = 0
    list_bytes: int = 0
    clients: int = 0
    rate: float = 0.0
    ok: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    tput_ms: dict[str, float] = field(default_factory=dict)
    tput_s: float = 0.0
    final_ports: int = 0
    distinct_ok: bool = False
    distinct_note: str = ""
    phases: dict[str, Phase] = field(default_factory=dict)


# -- measuring helpers --------------------------------------------------------------------


def summary(values: Sequence[float], qs: Sequence[int] = (50, 90, 99)) -> dict[str, float]:
    """Percentiles and maximum of latencies given in seconds, in milliseconds."""
    out = {f"p{q}": percentile(values, q) * 1000.0 for q in qs}
    out["max"] = max(values) * 1000.0 if values else math.nan
    return out


def pg_backends(url: str) -> Callable[[], dict[int, float]]:
    """A function giving the CPU seconds of each PostgreSQL backend serving `url`'s database."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)

    def cpu() -> dict[int, float]:
        with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                             dbname=parsed.database, autocommit=True) as conn:
            pids = [int(row[0]) for row in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid()", (parsed.database,))]
        return {pid: proc_cpu(pid) for pid in pids}

    return cpu


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting) so far."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLK_TCK


@contextlib.contextmanager
def phase(result: Result, name: str, server: Server,
          db_cpu: Callable[[], dict[int, float]] | None) -> Iterator[None]:
    """Record wall time and CPU use of a block as `result.phases[name]`."""
    assert server.proc is not None
    pid = server.proc.pid
    d0 = db_cpu() if db_cpu else {}
    s0, c0, m0, t0 = proc_cpu(pid), time.process_time(), machine_busy(), time.perf_counter()
    yield
    wall = time.perf_counter() - t0
    s1, c1, m1 = proc_cpu(pid), time.process_time(), machine_busy()
    d1 = db_cpu() if db_cpu else {}
    result.phases[name] = Phase(
        wall=wall, server_cpu=s1 - s0, client_cpu=c1 - c0,
        db_cpu=sum(v - d0.get(p, 0.0) for p, v in d1.items()),
        machine_busy=(m1 - m0) / wall if wall else 0.0)


def progress(message: str, *, done: bool = False) -> None:
    """Show progress on stderr (one line overwritten on a terminal, else a line each)."""
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\x1b[K{message}" + ("\n" if done else ""))
    else:
        sys.stderr.write(message + "\n")
    sys.stderr.flush()


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST `body` serialized with orjson."""
    return client.post(path, content=orjson.dumps(body), headers=JSON_HEADERS)


def expect(response: httpx.Response, status: int) -> Any:
    """The decoded body of a response, which must have `status`."""
    if response.status_code != status:
        raise RuntimeError(f"{response.request.method} {response.request.url} answered "
                           f"{response.status_code}: {response.text[:500]}")
    return orjson.loads(response.content)


def subnet_cidr(needed: int) -> str:
    """An IPv4 CIDR with at least twice `needed` addresses (a /16 at least)."""
    bits = max(16, math.ceil(math.log2(2 * needed + 4)))
    if bits > 24:
        raise SystemExit(f"{needed} ports do not fit one IPv4 subnet of this benchmark")
    return f"10.0.0.0/{32 - bits}"


def db_version(backend: str, url: str) -> str:
    """The database server's version."""
    if backend == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = str(conn.execute(text("SELECT version()")).scalar())
    finally:
        engine.dispose()
    return " ".join(version.split()[:2]).rstrip(",")


# -- the measurements -----------------------------------------------------------------------


def port_body(network_id: str) -> dict[str, Any]:
    """The body of one port."""
    return {"network_id": network_id, "project_id": PROJECT}


def setup(client: httpx.Client, result: Result, settings: Settings, label: str) -> str:
    """Create the network, its subnet and the pre-existing ports; return the network id."""
    network = expect(post(client, "/v2.0/networks", {"network": {
        "name": "bench", "project_id": PROJECT}}), 201)["network"]
    needed = settings.ports + settings.creates + 2000 * int(settings.duration) + 100
    result.cidr = subnet_cidr(needed)
    expect(post(client, "/v2.0/subnets", {"subnet": {
        "network_id": network["id"], "ip_version": 4, "cidr": result.cidr,
        "project_id": PROJECT}}), 201)
    made = 0
    start = time.perf_counter()
    while made < settings.ports:
        count = min(settings.batch, settings.ports - made)
        body = {"ports": [port_body(network["id"]) for _ in range(count)]}
        made += len(expect(post(client, "/v2.0/ports", body), 201)["ports"])
        elapsed = time.perf_counter() - start
        progress(f"[{label}] setup: {made}/{settings.ports} ports "
                 f"({made / elapsed:.0f}/s)", done=made >= settings.ports)
    result.setup_ports = made
    result.setup_s = time.perf_counter() - start
    return str(network["id"])


def sequential_creates(client: httpx.Client, network_id: str, result: Result,
                       settings: Settings, label: str) -> None:
    """Single-port POSTs one after another; latency percentiles."""
    timings = []
    payload = orjson.dumps({"port": port_body(network_id)})
    for i in range(settings.creates):
        t0 = time.perf_counter()
        response = client.post("/v2.0/ports", content=payload, headers=JSON_HEADERS)
        timings.append(time.perf_counter() - t0)
        expect(response, 201)
        if (i + 1) % 50 == 0 or i + 1 == settings.creates:
            progress(f"[{label}] sequential creates: {i + 1}/{settings.creates}",
                     done=i + 1 == settings.creates)
    result.creates = len(timings)
    result.create_ms = summary(timings)


def list_ports(client: httpx.Client, expected: int, result: Result, settings: Settings,
               label: str) -> None:
    """GET every port, repeatedly; the time includes reading the whole body."""
    timings = []
    for i in range(settings.lists):
        t0 = time.perf_counter()
        response = client.get("/v2.0/ports")
        timings.append(time.perf_counter() - t0)
        ports = expect(response, 200)["ports"]
        if len(ports) != expected:
            raise RuntimeError(f"GET /v2.0/ports returned {len(ports)} ports, not {expected}")
        result.list_count = len(ports)
        result.list_bytes = len(response.content)
        progress(f"[{label}] list: {i + 1}/{settings.lists} "
                 f"({timings[-1] * 1000:.0f} ms)", done=i + 1 == settings.lists)
    result.list_ms = summary(timings, qs=(50,))


def throughput(url: str, network_id: str, result: Result, settings: Settings,
               label: str) -> None:
    """`settings.clients` threads, each with its own keep-alive client, creating ports."""
    payload = orjson.dumps({"port": port_body(network_id)})
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    samples: list[str] = []
    finished: list[float] = []
    started: list[float] = []

    def mark_start() -> None:
        started.append(time.perf_counter())

    barrier = threading.Barrier(settings.clients, action=mark_start)

    def worker() -> None:
        mine: list[float] = []
        codes: dict[int, int] = {}
        errs: list[str] = []
        with httpx.Client(base_url=url, timeout=60) as client:
            client.get("/")  # open the keep-alive connection before the clock starts
            barrier.wait(timeout=120)
            deadline = started[0] + settings.duration
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    response = client.post("/v2.0/ports", content=payload,
                                           headers=JSON_HEADERS)
                except httpx.HTTPError as err:
                    codes[0] = codes.get(0, 0) + 1
                    errs.append(f"{type(err).__name__}: {err}")
                    continue
                mine.append(time.perf_counter() - t0)
                codes[response.status_code] = codes.get(response.status_code, 0) + 1
                if response.status_code != 201:
                    errs.append(f"{response.status_code}: {response.text[:300]}")
        with lock:
            latencies.extend(mine)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n
            samples.extend(errs[:3])
            finished.append(time.perf_counter())

    threads = [threading.Thread(target=worker, name=f"bench-client-{i}")
               for i in range(settings.clients)]
    progress(f"[{label}] throughput: {settings.clients} clients for {settings.duration:g} s")
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(finished) - started[0]
    result.clients = settings.clients
    result.ok = statuses.get(201, 0)
    result.errors = sum(n for code, n in statuses.items() if code != 201)
    result.error_samples = samples[:5]
    result.tput_s = elapsed
    result.rate = result.ok / elapsed
    result.tput_ms = summary(latencies)
    progress(f"[{label}] throughput: {result.ok} created in {elapsed:.1f} s "
             f"({result.rate:.0f}/s, {result.errors} errors)", done=True)


def check_distinct(client: httpx.Client, network_id: str, expected: int,
                   result: Result) -> None:
    """Every port of the network has its own MAC and its own IP addresses."""
    response = client.get("/v2.0/ports", params=[
        ("network_id", network_id), ("fields", "mac_address"), ("fields", "fixed_ips")])
    ports = expect(response, 200)["ports"]
    macs = [p["mac_address"] for p in ports]
    ips = [ip["ip_address"] for p in ports for ip in p["fixed_ips"]]
    result.final_ports = len(ports)
    problems = []
    if len(ports) != expected:
        problems.append(f"{len(ports)} ports exist, {expected} were created")
    if len(set(macs)) != len(macs):
        problems.append(f"{len(macs) - len(set(macs))} duplicate MACs")
    if len(set(ips)) != len(ips):
        problems.append(f"{len(ips) - len(set(ips))} duplicate IPs")
    if len(ips) != len(ports):
        problems.append(f"{len(ips)} IPs for {len(ports)} ports")
    result.distinct_ok = not problems
    result.distinct_note = "; ".join(problems) or (
        f"{len(ports)} ports, {len(set(macs))} distinct MACs, {len(set(ips))} distinct IPs")


def run_backend(backend: str, settings: Settings) -> Result:
    """Measure one backend on a throwaway database and server."""
    result = Result(backend=backend)
    reason = backend_unavailable(backend)
    if reason is not None:
        result.skipped = reason
        print(f"[{backend}] skipped: {reason}", file=sys.stderr)
        return result
    with tempfile.TemporaryDirectory(prefix=f"bench-{backend}-") as tmp, \
            database_url(backend, Path(tmp)) as url:
        result.db_version = db_version(backend, url)
        server = Server(Path(tmp), url).start()
        db_cpu = pg_backends(url) if backend == "postgresql" else None
        try:
            with httpx.Client(base_url=server.url, timeout=300) as client:
                with phase(result, "setup", server, db_cpu):
                    network_id = setup(client, result, settings, backend)
                with phase(result, "create", server, db_cpu):
                    sequential_creates(client, network_id, result, settings, backend)
                existing = result.setup_ports + result.creates
                with phase(result, "list", server, db_cpu):
                    list_ports(client, existing, result, settings, backend)
                with phase(result, "throughput", server, db_cpu):
                    throughput(server.url, network_id, result, settings, backend)
                check_distinct(client, network_id, existing + result.ok, result)
        except Exception:
            print(f"[{backend}] server log tail:\n{server.log_text()[-3000:]}", file=sys.stderr)
            raise
        finally:
            server.stop()
    return result


# -- reporting ------------------------------------------------------------------------------


@dataclass
class Goal:
    """One goal of the issue and how a result meets it."""

    text: str
    figure: Callable[[Result], float]
    limit: float
    at_most: bool
    applies: Callable[[Result], str | None]  # why the goal does not apply, or None

    def verdict(self, result: Result) -> str:
        """PASS, FAIL, or n/a with the reason."""
        why = self.applies(result)
        if why is not None:
            return f"n/a ({why})"
        value = self.figure(result)
        met = value <= self.limit if self.at_most else value >= self.limit
        return "PASS" if met else "FAIL"


GOALS = (
    Goal(f"create p50 <= {GOAL_CREATE_P50_MS:g} ms", lambda r: r.create_ms["p50"],
         GOAL_CREATE_P50_MS, True, lambda r: None),
    Goal(f"list of {GOAL_LIST_PORTS:,} ports <= {GOAL_LIST_MS:g} ms (p50)",
         lambda r: r.list_ms["p50"], GOAL_LIST_MS, True,
         lambda r: None if r.list_count >= GOAL_LIST_PORTS
         else f"only {r.list_count:,} ports listed"),
    Goal(f">= {GOAL_RATE:g} creates/s with {GOAL_CLIENTS} clients", lambda r: r.rate,
         GOAL_RATE, False,
         lambda r: None if r.clients == GOAL_CLIENTS and r.errors == 0
         else (f"{r.errors} errors" if r.errors else f"{r.clients} clients")),
)


def disturbance(result: Result) -> float:
    """The most CPU unrelated processes used during a measured phase (% of one core)."""
    if result.backend == "mysql":  # its server's CPU is not told apart from others'
        return 0.0
    return max(p.other_pct() for name, p in result.phases.items() if name != "setup")


def figures(result: Result) -> list[tuple[str, str]]:
    """The rows (label, value) of one backend's results."""
    c, lst, t, ph = result.create_ms, result.list_ms, result.tput_ms, result.phases

    def cpu(name: str) -> str:
        p = ph[name]
        db = f"database {p.db_pct():.0f}%, " if result.backend == "postgresql" else ""
        others = " (database included)" if result.backend == "mysql" else ""
        return (f"neutrino-server {p.server_pct():.0f}%, bench client {p.client_pct():.0f}%, "
                f"{db}other processes{others} {p.other_pct():.0f}% (% of one core; "
                f"{os.cpu_count()} cores)")

    return [
        ("database", result.db_version),
        ("setup", f"{result.setup_ports:,} ports in bulk POSTs on {result.cidr}: "
                  f"{result.setup_s:.1f} s ({result.setup_ports / result.setup_s:.0f}/s)"),
        (f"create latency ({result.creates} sequential, {result.setup_ports:,} existing)",
         f"p50 {c['p50']:.1f} ms, p90 {c['p90']:.1f} ms, p99 {c['p99']:.1f} ms, "
         f"max {c['max']:.1f} ms"),
        ("  CPU during creates", cpu("create")),
        ("list all ports", f"{result.list_count:,} ports ({result.list_bytes / 1e6:.1f} MB): "
                           f"p50 {lst['p50']:.0f} ms, max {lst['max']:.0f} ms"),
        ("  CPU during lists", cpu("list")),
        (f"throughput ({result.clients} clients, {result.tput_s:.1f} s)",
         f"{result.rate:.0f} creates/s, {result.ok:,} created, {result.errors} errors; "
         f"latency p50 {t['p50']:.0f} ms, p99 {t['p99']:.0f} ms, max {t['max']:.0f} ms"),
        ("  CPU during throughput", cpu("throughput")),
        ("distinct IPs and MACs", ("yes: " if result.distinct_ok else "NO: ")
         + result.distinct_note),
    ]


def goal_rows(result: Result) -> list[tuple[str, str, str]]:
    """The rows (goal, measured, verdict) of one backend."""
    measured = (f"{result.create_ms['p50']:.1f} ms", f"{result.list_ms['p50']:.0f} ms",
                f"{result.rate:.0f}/s")
    return [(g.text, m, g.verdict(result)) for g, m in zip(GOALS, measured, strict=True)]


def print_table(results: Sequence[Result]) -> None:
    """The results as a plain-text table on stdout."""
    for result in results:
        print(f"\n== {result.backend} ==")
        if result.skipped:
            print(f"skipped: {result.skipped}")
            continue
        rows = figures(result)
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
        for text, measured, verdict in goal_rows(result):
            print(f"goal: {text:<40} {measured:>10}  {verdict}")
        for sample in result.error_samples:
            print(f"error sample: {sample}")
        busiest = disturbance(result)
        if busiest > DISTURBED_PCT:
            print(f"warning: other processes used up to {busiest:.0f}% of a core while "
                  "measuring; these figures are disturbed")


def markdown(results: Sequence[Result], settings: Settings, argv: Sequence[str],
             started: datetime.datetime, loads: tuple[str, str], commit: str) -> str:
    """The section of docs/benchmarks.md."""
    command = shlex.join([".venv/bin/python", "bench/api.py", *argv])
    lines = [
        BEGIN,
        "## API: port create, list and throughput (`bench/api.py`)",
        "",
        f"- Command: `{command}`",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}; load average {loads[0]} before, {loads[1]} after",
        f"- Python {platform.python_version()}; commit {commit}",
        f"- Workload: {settings.ports:,} ports pre-created on one network, "
        f"{settings.creates} sequential creates, {settings.lists} lists of every port, "
        f"{settings.clients} concurrent creators for {settings.duration:g} s; one "
        "`neutrino-server` (noauth, admin, default options but quotas lifted: one project "
        "holds every port), client on the same machine.",
        "",
    ]
    for result in results:
        lines.append(f"### {result.backend}")
        lines.append("")
        if result.skipped:
            lines += [f"Skipped: {result.skipped}", ""]
            continue
        lines += ["| measurement | result |", "|---|---|"]
        lines += [f"| {k.strip()} | {v} |" for k, v in figures(result)]
        lines += ["", "| goal | measured | verdict |", "|---|---|---|"]
        lines += [f"| {g} | {m} | {v} |" for g, m, v in goal_rows(result)]
        lines.append("")
        busiest = disturbance(result)
        if busiest > DISTURBED_PCT:
            lines += [f"Disturbed: unrelated processes used up to {busiest:.0f}% of a core "
                      "while measuring.", ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_doc(section: str, path: Path = DOC) -> None:
    """Replace this benchmark's section of the document, keeping the rest."""
    write_section(section, BEGIN, END, path)


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, Settings]:
    """Command-line options and the settings they give."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql, mysql")
    parser.add_argument("--ports", type=int, help="ports created before measuring (10000)")
    parser.add_argument("--creates", type=int, help="sequential single creates (500)")
    parser.add_argument("--lists", type=int, help="lists of every port (10)")
    parser.add_argument("--clients", type=int, default=GOAL_CLIENTS,
                        help="concurrent creators")
    parser.add_argument("--duration", type=float, help="seconds of concurrent creates (10)")
    parser.add_argument("--batch", type=int, default=500, help="ports per bulk POST in setup")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1000 ports, 100 creates, 5 lists, 5 s throughput")
    parser.add_argument("--no-write", action="store_true",
                        help="print the figures only; do not rewrite the document")
    parser.add_argument("--output", type=Path, default=DOC,
                        help=f"the document to update ({DOC.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    quick = args.quick
    settings = Settings(
        ports=args.ports if args.ports is not None else (1000 if quick else 10_000),
        creates=args.creates if args.creates is not None else (100 if quick else 500),
        lists=args.lists if args.lists is not None else (5 if quick else 10),
        clients=args.clients,
        duration=args.duration if args.duration is not None else (5.0 if quick else 10.0),
        batch=args.batch,
    )
    if min(settings.creates, settings.lists, settings.clients, settings.batch) < 1 \
            or settings.ports < 0 or settings.duration <= 0:
        parser.error("counts must be positive")
    return args, settings


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark on each backend, print the table, update the document."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args, settings = parse_args(argv)
    started = datetime.datetime.now(datetime.UTC)
    commit = git_commit()
    load_before = Path("/proc/loadavg").read_text().split()[0]
    results = [run_backend(b.strip(), settings) for b in args.backends.split(",") if b.strip()]
    load_after = Path("/proc/loadavg").read_text().split()[0]
    if git_commit() != commit:
        commit = f"{commit} at the start, {git_commit()} at the end (the code changed)"
    print_table(results)
    print(f"\ncommit {commit}; load average (1 min): {load_before} before, {load_after} after")
    if not args.no_write:
        write_doc(markdown(results, settings, argv, started, (load_before, load_after),
                           commit), args.output)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
