"""The agent loop: register, heartbeat, watch, reconcile.

Three threads share one desired state, keyed by network id:
- heartbeats report the agent every `report_interval`, with the revision it has applied;
- the watch long-polls the server for what changed since the revision it holds, stores the
  new desired states and marks their keys dirty (a snapshot replaces everything);
- the reconciler takes dirty keys and asks the driver to make the host match, on a few
  threads (networks are independent), changes that arrive meanwhile first, retrying
  failures with backoff; every `polling_interval` it asks the driver which
  networks drifted (a VM's tap appeared, a dnsmasq died) and sends changed port statuses; a
  periodic full pass marks every key dirty, and must find nothing to do when all is well.
A missed or repeated event therefore never leaves the host wrong for longer than one pass.
The watch resumes from its revision after a lost connection; the server decides when that
revision is too old and answers with a snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from neutrino.agent.client import ChannelError, ServerClient

LOG = logging.getLogger(__name__)
MAX_BACKOFF = 10.0


class Driver(Protocol):
    """What an agent does on its host, one network at a time."""

    agent_type: str
    binary: str
    topic: str

    def configurations(self) -> dict[str, Any]:
        """The `configurations` the agent reports."""

    def apply(self, network_id: str, state: dict[str, Any] | None) -> None:
        """Make the host match `state` for a network (None: remove it). Idempotent."""

    def present(self) -> set[str]:
        """Networks the host has now (found on the host, so leftovers can be removed)."""

    def status(self) -> tuple[dict[str, str], set[str]]:
        """Ports on the host with their status (ACTIVE/DOWN), and ports DHCP answers for."""

    def drifted(self) -> set[str]:
        """Networks whose host state went wrong since they were applied (a cheap look)."""


@dataclass
class Backoff:
    """Exponential backoff, reset on success."""

    delay: float = 0.0
    initial: float = 0.2

    def failed(self) -> float:
        """The wait before the next try."""
        self.delay = min(MAX_BACKOFF, self.delay * 2 if self.delay else self.initial)
        return self.delay

    def succeeded(self) -> None:
        """Back to no wait."""
        self.delay = 0.0


@dataclass
class State:
    """The desired state the watch delivers and the reconciler applies."""

    desired: dict[str, dict[str, Any]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    revision: int = 0  # the newest revision received
    applied: int = 0  # every change up to here is on the host


class AgentRunner:
    """Runs one agent until stopped."""

    def __init__(self, host: str, driver: Driver, client: ServerClient, *,
                 report_interval: float, availability_zone: str | None,
                 watch_timeout: float = 30.0, resync_interval: float = 30.0,
                 polling_interval: float = 1.0, workers: int = 4) -> None:
        self.host = host
        self.driver = driver
        self.client = client
        self.report_interval = report_interval
        self.availability_zone = availability_zone
        self.watch_timeout = watch_timeout
        self.resync_interval = resync_interval
        self.polling_interval = polling_interval
        # Networks are independent: a full pass over a thousand of them runs on a few
        # threads, so that one slow network (a dnsmasq starting) does not hold the others.
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="apply")
        self.state = State()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._registered = threading.Event()
        self._start_flag = True
        self._threads: list[threading.Thread] = []
        # What the server was last told, so that only changes are sent.
        self._sent_ports: dict[str, str] = {}
        self._sent_ready: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat, watch and reconcile threads."""
        for name, target in (("heartbeat", self._heartbeat_loop), ("watch", self._watch_loop),
                             ("reconcile", self._reconcile_loop)):
            thread = threading.Thread(target=target, name=f"{self.driver.binary}-{name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """Ask the threads to stop (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop the threads; what the driver made on the host stays as it is."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            # A watch may sit in a long poll; its daemon thread ends with the process.
            thread.join(timeout=2 if thread.name.endswith("-watch") else 15)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def wait(self) -> None:
        """Block until stopped."""
        while not self._stop.wait(1.0):
            pass

    # -- heartbeats -----------------------------------------------------------------------

    def report(self) -> None:
        """One report to the server (registers the agent the first time)."""
        with self._cond:
            applied = self.state.applied
        self.client.report({
            "agent_type": self.driver.agent_type, "host": self.host,
            "binary": self.driver.binary, "topic": self.driver.topic,
            "configurations": self.driver.configurations(),
            "availability_zone": self.availability_zone, "start_flag": self._start_flag,
            "applied_revision": applied})
        if self._start_flag:
            LOG.info("Registered %s on %s with the server", self.driver.agent_type, self.host)
        self._start_flag = False
        self._registered.set()

    def _heartbeat_loop(self) -> None:
        backoff = Backoff(initial=self.report_interval / 4)
        while not self._stop.is_set():
            try:
                self.report()
                backoff.succeeded()
                wait = self.report_interval
            except ChannelError as err:
                wait = backoff.failed()
                LOG.warning("Report failed (%s); next try in %.1f s", err, wait)
            self._stop.wait(wait)

    # -- watch ----------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            if not self._registered.wait(0.5):
                continue
            with self._cond:
                since = self.state.revision
            try:
                answer = self.client.watch(self.driver.agent_type, self.host, since,
                                           self.watch_timeout)
                backoff.succeeded()
            except ChannelError as err:
                if err.status == 404:
                    # The server does not know us (deleted, or a new database): register
                    # again, then start over from a snapshot.
                    LOG.warning("The server does not know this agent; registering again")
                    self._start_flag = True
                    self._registered.clear()
                    with self._cond:
                        self.state.revision = 0
                    continue
                wait = backoff.failed()
                LOG.warning("Watch failed (%s); resuming from revision %d in %.1f s", err,
                            since, wait)
                self._stop.wait(wait)
                continue
            LOG.debug("Watch answer at revision %s: %d networks changed, %d removed%s",
                      answer.get("revision"), len(answer.get("networks", [])),
                      len(answer.get("removed", [])),
                      " (snapshot)" if answer.get("snapshot") else "")
            self.absorb(answer)

    def absorb(self, answer: dict[str, Any]) -> None:
        """Take a watch answer into the desired state and mark what it touches dirty."""
        with self._cond:
            state = self.state
            if answer.get("snapshot"):
                gone = set(state.desired) | self.driver.present()
                state.desired = {n["id"]: n for n in answer["networks"]}
                state.dirty |= gone | set(state.desired)
                LOG.info("Snapshot at revision %d: %d networks", answer["revision"],
                         len(state.desired))
            else:
                for network in answer["networks"]:
                    state.desired[network["id"]] = network
                    state.dirty.add(network["id"])
                for network_id in answer["removed"]:
                    state.desired.pop(network_id, None)
                    state.dirty.add(network_id)
            state.revision = max(int(answer["revision"]), 0)
            if not state.dirty:
                state.applied = state.revision
            self._cond.notify_all()

    # -- reconcile ------------------------------------------------------------------------

    def mark_all_dirty(self) -> None:
        """Queue every key, wanted or present, and resend every status (the full pass)."""
        with self._cond:
            self.state.dirty |= set(self.state.desired) | self.driver.present()
            self._sent_ports, self._sent_ready = {}, set()
            self._cond.notify_all()

    def reconcile_once(self) -> int:
        """Apply every dirty key once; returns how many failed (and stay dirty).

        Keys go in batches; what turns dirty meanwhile (a port just created) jumps ahead of
        the rest of the pass, so a full pass over a thousand networks does not delay it."""
        with self._cond:
            pending, self.state.dirty = sorted(self.state.dirty), set()
            revision = self.state.revision
        failed: list[str] = []
        batch_size = 4 * self.workers
        while pending:
            batch, pending = pending[:batch_size], pending[batch_size:]
            failed += self._apply(batch)
            with self._cond:
                fresh = self.state.dirty
                if fresh:
                    self.state.dirty = set()
                    revision = self.state.revision
            if fresh:
                pending = sorted(fresh) + [k for k in pending if k not in fresh]
                self._send_status()
        with self._cond:
            self.state.dirty |= set(failed)
            if not self.state.dirty:
                self.state.applied = max(self.state.applied, revision)
        self._send_status()
        return len(failed)

    def _apply_one(self, key: str) -> bool:
        with self._cond:
            state = self.state.desired.get(key)  # the newest, even mid-pass
        try:
            self.driver.apply(key, state)
        except Exception:  # one network's failure must not stop the others
            LOG.exception("Could not apply network %s; will retry", key)
            return False
        return True

    def _apply(self, keys: list[str]) -> list[str]:
        if len(keys) == 1:
            return [] if self._apply_one(keys[0]) else keys
        done = self._pool.map(self._apply_one, keys)
        return [key for key, ok in zip(keys, done, strict=True) if not ok]

    def _send_status(self) -> None:
        ports, ready = self.driver.status()
        changed = {p: s for p, s in ports.items() if self._sent_ports.get(p) != s}
        new_ready = ready - self._sent_ready
        if not changed and not new_ready:
            return
        started = time.monotonic()
        try:
            self.client.status({"host": self.host, "dhcp_ready": sorted(new_ready),
                                "ports": [{"id": p, "status": s}
                                          for p, s in sorted(changed.items())]})
            LOG.debug("Status of %d ports sent in %.3f s", len(changed) + len(new_ready),
                      time.monotonic() - started)
        except ChannelError as err:
            LOG.warning("Status report failed (%s); the next full pass sends it again", err)
            return
        self._sent_ports.update(changed)
        self._sent_ready |= new_ready

    def poll(self) -> None:
        """Queue the networks the driver finds drifted, and send changed port statuses."""
        drifted = self.driver.drifted()
        if drifted:
            LOG.info("Drift on %d network(s): %s", len(drifted), ", ".join(sorted(drifted)))
            with self._cond:
                self.state.dirty |= drifted
        else:
            self._send_status()

    def _reconcile_loop(self) -> None:
        backoff = Backoff()
        next_full = time.monotonic() + self.resync_interval
        next_poll = time.monotonic() + self.polling_interval
        while not self._stop.is_set():
            with self._cond:
                timeout = max(0.0, min(next_full, next_poll) - time.monotonic())
                if not self.state.dirty:
                    self._cond.wait(timeout=min(timeout, 1.0) if timeout else 0.01)
            if self._stop.is_set():
                break
            now = time.monotonic()
            full = now >= next_full
            if full:
                self.mark_all_dirty()
            elif now >= next_poll:
                next_poll = now + self.polling_interval
                try:
                    if self._registered.is_set():
                        self.poll()
                except Exception:  # a failed look is retried at the next one
                    LOG.exception("Looking for drift failed")
            with self._cond:
                pending = bool(self.state.dirty)
            if not pending:
                if full:
                    next_full = time.monotonic() + self.resync_interval
                continue
            started = time.monotonic()
            failures = self.reconcile_once()
            if full:  # counted from the end of the pass: a long pass never runs back to back
                ended = time.monotonic()
                next_full = ended + self.resync_interval
                LOG.info("Full pass over %d networks in %.1f s (%d failed)",
                         len(self.state.desired), ended - started, failures)
            if failures:
                self._stop.wait(backoff.failed())
            else:
                backoff.succeeded()
