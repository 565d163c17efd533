"""Chaos on seed 003's HA router: every fault of the active node, repeated, while a ping and
a TCP connection run from outside, with the whole cloud sampled every 100 ms.

One round injects, on whichever node is active, each of `FAULTS` and heals it: kill -9 of
the L3 agent (keepalived and conntrackd live on), of keepalived (the agent starts it again),
of conntrackd (likewise), a freeze of every process of the host (SIGSTOP, then SIGCONT), its
underlay and external links cut and healed, and the server killed and started again.

The sampler reads, for each node: whether its router namespace holds the router's gateway
address, whether its fence passes traffic or ARP replies (either side's lease, which its
adverts renew, current and no other primary heard) and whether its links are up; and the
API's `ha_state` of each agent. The invariants (`Report.violations`):
- never two nodes holding the router's addresses at once, but while one is frozen
  (`held_twice_by_fault`): every process of a frozen host is stopped, so nobody there can
  remove its addresses, and the kernel has no timer that would (an address lifetime
  counts whole seconds: the backup would have to wait more than a second before taking
  over); its fence keeps them from serving instead (next line);
- never two nodes *serving* at once: holding the address, fence open, links up. The one
  exception VRRP leaves is the instant a partition heals, both sides primary until their
  first adverts cross; such samples, within `HEAL_WINDOW` of a link's heal, are counted
  apart (`served_twice_at_heal`). A host whose own links are cut gives the router up
  (`ha_vrrp_track_interfaces`), so the lab's link fault should leave none;
- the API never shows two actives for longer than 1 s;
- after every heal, exactly one active in the API and one node serving within 10 s.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from neutrino.agent.l3.plan import FENCE_TABLES
from neutrino.agent.linux.kernel import Kernel
from neutrino.agent.linux.netfilter import Netfilter, NetfilterError
from neutrino.lab import demo_l3_ha, probes
from neutrino.lab.demo import Demo
from neutrino.lab.lab import Lab

NODES = demo_l3_ha.NODES
FAULTS = ("agent", "keepalived", "conntrackd", "freeze", "link", "server")
PERIOD = 0.1
SETTLE_LIMIT = 10.0  # seconds after a heal for exactly one active and one serving node
DOUBLE_ACTIVE_LIMIT = 1.0
HOLD = 3.0  # seconds a fault lasts before it is healed
HEAL_WINDOW = 0.5  # seconds after a link heals in which two primaries are VRRP's to settle
# Where two kernels may hold the addresses: a frozen host's, which nobody can empty.
HELD_BY_DESIGN = frozenset({"freeze"})


@dataclass
class Sample:
    """One look at the cloud: per node (held, fence open, links up), the API's states."""

    at: float
    nodes: dict[str, tuple[bool, bool, bool]]
    api: dict[str, str] | None  # None: the API did not answer (the server is down)

    @property
    def serving(self) -> list[str]:
        """Nodes that hold the address, pass traffic and can be reached."""
        return [h for h, (held, open_, up) in self.nodes.items() if held and open_ and up]

    @property
    def holding(self) -> list[str]:
        """Nodes whose kernel holds the address, fenced or cut off or not."""
        return [h for h, (held, _open, _up) in self.nodes.items() if held]

    @property
    def api_actives(self) -> list[str]:
        """Hosts the API shows active."""
        return [h for h, s in (self.api or {}).items() if s == "active"]


@dataclass
class FaultRun:
    """One fault injected and healed, and what the flows saw."""

    kind: str
    node: str
    ping_gap: float
    tcp_survived: bool
    settle: float | None  # seconds from the heal to one active and one serving node
    injected_at: float = 0.0  # on the sampler's clock
    healed_at: float = 0.0


@dataclass
class Report:
    """The chaos run: samples, faults, and the invariants' counts."""

    rounds: int
    samples: list[Sample] = field(default_factory=list)
    runs: list[FaultRun] = field(default_factory=list)

    @property
    def served_twice(self) -> int:
        """Samples with two nodes serving the router, but at a partition's heal."""
        return sum(1 for s in self.samples if len(s.serving) > 1 and not self._at_heal(s))

    @property
    def served_twice_at_heal(self) -> int:
        """Samples with two nodes serving within `HEAL_WINDOW` of a link's heal."""
        return sum(1 for s in self.samples if len(s.serving) > 1 and self._at_heal(s))

    def _at_heal(self, sample: Sample) -> bool:
        return any(r.kind == "link" and 0 <= sample.at - r.healed_at <= HEAL_WINDOW
                   for r in self.runs)

    def _last_run(self, sample: Sample) -> FaultRun | None:
        """The fault a sample was taken in (or after, until the next)."""
        before = [r for r in self.runs if r.injected_at <= sample.at]
        return before[-1] if before else None

    def during(self, sample: Sample) -> str:
        """The fault a sample was taken in (or after), for the logs."""
        run = self._last_run(sample)
        return f"{run.kind} on {run.node}" if run else "before any fault"

    def _fault(self, sample: Sample) -> str:
        run = self._last_run(sample)
        return run.kind if run else "none"

    @property
    def held_twice(self) -> int:
        """Samples with two kernels holding the address (fenced or cut off included)."""
        return sum(1 for s in self.samples if len(s.holding) > 1)

    @property
    def held_twice_by_fault(self) -> dict[str, int]:
        """Samples with two kernels holding the address, by the fault they were taken in
        (or after, until the next)."""
        return dict(Counter(self._fault(s) for s in self.samples if len(s.holding) > 1))

    @property
    def longest_double_active(self) -> float:
        """The longest stretch, in seconds, of samples where the API showed two actives."""
        longest, since = 0.0, None
        for s in self.samples:
            if len(s.api_actives) > 1:
                since = s.at if since is None else since
                longest = max(longest, s.at - since + PERIOD)
            elif s.api is not None:
                since = None
        return longest

    @property
    def unsettled(self) -> list[FaultRun]:
        """Heals not followed by one active and one serving node within the limit."""
        return [r for r in self.runs if r.settle is None or r.settle > SETTLE_LIMIT]

    @property
    def violations(self) -> list[str]:
        """What broke an invariant, in words (empty: none did)."""
        out = []
        held = {k: n for k, n in self.held_twice_by_fault.items() if k not in HELD_BY_DESIGN}
        if held:
            out.append(f"{sum(held.values())} samples with two nodes holding the router's "
                       f"addresses ({', '.join(f'{k}: {n}' for k, n in sorted(held.items()))})")
        if self.served_twice:
            where = sorted({self.during(s) for s in self.samples
                            if len(s.serving) > 1 and not self._at_heal(s)})
            out.append(f"{self.served_twice} samples with two nodes serving "
                       f"({', '.join(where)})")
        if self.served_twice_at_heal > round(HEAL_WINDOW / PERIOD):
            out.append(f"{self.served_twice_at_heal} samples with two nodes serving as "
                       "partitions healed")
        if self.longest_double_active > DOUBLE_ACTIVE_LIMIT:
            out.append(f"the API showed two actives for {self.longest_double_active:.1f} s")
        out += [f"{r.kind} on {r.node}: not settled within {SETTLE_LIMIT:.0f} s"
                for r in self.unsettled]
        return out


class Sampler:
    """Samples the cloud every `PERIOD` seconds in a thread of its own."""

    def __init__(self, lab: Lab, router_id: str, gateway_ip: str, gateway_device: str) -> None:
        self.lab, self.router_id = lab, router_id
        self.address, self.device = gateway_ip, gateway_device
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._nft: dict[str, Netfilter] = {}
        self._client: httpx.Client | None = None
        self._thread = threading.Thread(target=self._run, name="chaos-sampler", daemon=True)
        self._started = time.monotonic()

    def now(self) -> float:
        """The sampler's clock: seconds since it was made."""
        return time.monotonic() - self._started

    def start(self) -> Sampler:
        """Start sampling."""
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        """Stop; every sample taken."""
        self._stop.set()
        self._thread.join(10)
        for nft in self._nft.values():
            nft.close()
        if self._client is not None:
            self._client.close()
        return self.samples

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.samples.append(Sample(began - self._started,
                                       {h: self._node(h) for h in NODES}, self._api()))
            self._stop.wait(max(0.0, PERIOD - (time.monotonic() - began)))

    def _node(self, host: str) -> tuple[bool, bool, bool]:
        host_ns = self.lab.host_namespace(host)
        ns = f"{host_ns}-qrouter-{self.router_id}"
        try:
            held = any(a.startswith(self.address + "/")
                       for a in Kernel(ns, owned=True).addresses(self.device))
        except Exception:  # the namespace is being made again
            held = False
        up = all(link is not None and link.up for link in (
            Kernel(host_ns, owned=True).link(name) for name in ("ul0", "ext0")))
        return held, held and self._fence_open(ns), up

    def _fence_open(self, ns: str) -> bool:
        """Whether either side of the fence (traffic, ARP replies) passes anything."""
        nft = self._nft.setdefault(ns, Netfilter(ns))
        for family, table in sorted(FENCE_TABLES):
            try:
                lease = nft.run(f"list set {family} {table} lease")
                heard = nft.run(f"list set {family} {table} heard")
            except NetfilterError:
                continue
            if "elements" in lease and "elements" not in heard:
                return True
        return False

    def _api(self) -> dict[str, str] | None:
        if self._client is None:
            self._client = self.lab.api()
        try:
            reply = self._client.get(f"/v2.0/routers/{self.router_id}/l3-agents", timeout=1)
            agents = reply.json()["agents"] if reply.status_code == 200 else None
        except Exception:
            return None
        return None if agents is None else {a["host"]: a["ha_state"] for a in agents}


def inject(lab: Lab, kind: str, host: str) -> Callable[[], None]:
    """Inject a fault on a node; the function that heals it."""
    if kind == "agent":
        lab.agent_stop(host, "l3", sig=signal.SIGKILL)
        return lambda: lab.agent_start(host, "l3")
    if kind == "keepalived":
        lab.stop_keepalived(host, signal.SIGKILL)
        return lambda: None  # the live agent starts it again by itself
    if kind == "conntrackd":
        lab.stop_conntrackd(host, signal.SIGKILL)
        return lambda: None
    if kind == "freeze":
        lab.host_freeze(host, frozen=True)

        def thaw() -> None:
            lab.host_freeze(host, frozen=False)
        return thaw
    if kind == "link":
        lab.host_link(host, up=False)
        return lambda: lab.host_link(host, up=True)
    if kind == "server":
        lab.stop_server(signal.SIGKILL)
        return lab.restart_server
    raise ValueError(f"unknown fault {kind}")


def run(lab: Lab, rounds: int, out: Callable[[str], None] = print,
        faults: tuple[str, ...] = FAULTS) -> Report:
    """Build seed 003's HA router in an up lab and run `rounds` rounds of `faults`."""
    demo = Demo(lab, out=lambda _line: None)
    router_id, vm_ns, address, _built_active = demo_l3_ha.build(demo)
    [gateway] = lab.api_get("/v2.0/ports", device_id=router_id,
                            device_owner="network:router_gateway")["ports"]
    gateway_ip = gateway["fixed_ips"][0]["ip_address"]
    device = f"qg-{gateway['id'][:11]}"
    report = Report(rounds)
    sampler = Sampler(lab, router_id, gateway_ip, device).start()
    try:
        active = _settled(lab, sampler, router_id, 60) or NODES[0]
        for round_ in range(1, rounds + 1):
            for kind in faults:
                one = _one(lab, sampler, router_id, vm_ns, address, kind, active)
                report.runs.append(one)
                out(f"round {round_} {kind} on {one.node}: ping gap {one.ping_gap:.2f} s, "
                    f"TCP {'survived' if one.tcp_survived else 'broke'}, settled "
                    + (f"{one.settle:.2f} s after the heal" if one.settle is not None
                       else "never"))
                active = _active(sampler) or active
    finally:
        report.samples = sampler.stop()
    return report


def _one(lab: Lab, sampler: Sampler, router_id: str, vm_ns: str, address: str, kind: str,
         active: str) -> FaultRun:
    deadline = time.monotonic() + 15
    while not probes.ping(lab.outside, address, wait=0.5) and time.monotonic() < deadline:
        time.sleep(0.2)
    flows = probes.Flows(vm_ns, lab.outside, address).start()
    time.sleep(1)
    injected_at = sampler.now()
    healing = inject(lab, kind, active)
    time.sleep(HOLD)
    healed_at, sampled_heal = time.monotonic(), sampler.now()
    with contextlib.suppress(Exception):
        healing()
    settle = _settled(lab, sampler, router_id, SETTLE_LIMIT * 3, since=healed_at)
    time.sleep(1)
    report = flows.stop()
    return FaultRun(kind, active, report.ping_gap, report.tcp_survived, settle,
                    injected_at, sampled_heal)


def _settled(lab: Lab, sampler: Sampler, router_id: str, timeout: float,
             since: float | None = None) -> Any:
    """Seconds from `since` until one API active (the other standby, both agents running
    keepalived) and one serving node, the same; None if not within `timeout`. Without
    `since`: the active node."""
    began = time.monotonic() if since is None else since
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = sampler.samples[-1] if sampler.samples else None
        if last is not None and last.api is not None \
                and sorted(last.api.values()) == ["active", "standby"] \
                and last.serving == last.api_actives \
                and all(lab.keepalived_pids(h).get(router_id) for h in NODES):
            return last.serving[0] if since is None else time.monotonic() - began
        time.sleep(PERIOD)
    return None


def _active(sampler: Sampler) -> str | None:
    last = sampler.samples[-1] if sampler.samples else None
    return last.serving[0] if last is not None and len(last.serving) == 1 else None
