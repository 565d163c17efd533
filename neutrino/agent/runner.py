"""The agent loop: register, heartbeat, watch, reconcile — each supervised.

Four threads share one desired state, keyed by `(kind, id)` (see `contract`):
- heartbeats report the agent every `report_interval`, with the revision it has applied and
  its progress per kind of key (in `configurations`);
- the watch long-polls the server for what changed since the revision it holds, stores the
  new desired states and marks their keys dirty (a snapshot replaces everything);
- the reconciler applies dirty keys on a few threads, changes that arrive meanwhile first;
  a periodic full pass marks every key dirty and must find nothing to do when all is well —
  a pass that found work is counted and logged;
- the look asks the driver every `polling_interval` which keys drifted (queued for the
  reconciler) and sends changed statuses. It runs beside the reconciler, not in it: a look
  that reads a host of a thousand links takes most of a second under load, and the workers
  sat idle behind it.

Each key has its own status (pending, done, error with the message) and its own backoff: a
failing key is retried later without holding back new work, and `applied` (the revision the
server sees) moves once nothing is pending, failing keys being reported apart.

Supervision: an unexpected error in a loop is logged and the loop goes on after a backoff; a
loop that fails `failure_limit` times in a row, a thread that dies, or a reconciler stuck in
one key (or a look stuck) for `stall_timeout` stops the agent: heartbeats end with it, so the
server declares it dead and fails its resources over, instead of trusting a host that no
longer follows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from neutrino.agent.client import ChannelError, ServerClient
from neutrino.agent.contract import Driver, Key, Status, key_text

LOG = logging.getLogger(__name__)
MAX_BACKOFF = 10.0
PENDING, DONE, ERROR = "pending", "done", "error"
STATUS_EVERY = 4  # keys applied per worker between status reports in a long pass


def backoff(attempts: int, initial: float = 0.2, maximum: float = MAX_BACKOFF) -> float:
    """The wait before try number `attempts + 1` (exponential, capped)."""
    return min(maximum, initial * 2 ** max(0, attempts - 1)) if attempts else 0.0


@dataclass
class KeyStatus:
    """Where one key stands."""

    state: str = PENDING
    message: str = ""
    attempts: int = 0
    retry_at: float = 0.0  # monotonic time before which a failed key is not retried
    served: bool = False  # applied once by this agent


@dataclass
class State:
    """The desired state the watch delivers and the reconciler applies."""

    desired: dict[Key, dict[str, Any]] = field(default_factory=dict)
    dirty: set[Key] = field(default_factory=set)
    keys: dict[Key, KeyStatus] = field(default_factory=dict)
    revision: int = 0  # the newest revision received
    applied: int = 0  # every change up to here was tried: done, or failing and reported

    def status(self, key: Key) -> KeyStatus:
        """A key's status, made pending if new."""
        return self.keys.setdefault(key, KeyStatus())


@dataclass
class PassStats:
    """Full passes: how many ran, and how many found something to change."""

    count: int = 0
    with_changes: int = 0
    last_changed: int = 0
    last_seconds: float = 0.0


class AgentFailed(RuntimeError):
    """The agent cannot go on (a loop that keeps failing, a dead thread, a stall)."""


class AgentRunner:
    """Runs one agent until stopped, or until it cannot go on (`fatal`)."""

    def __init__(self, host: str, driver: Driver, client: ServerClient, *,
                 report_interval: float, availability_zone: str | None,
                 watch_timeout: float = 30.0, resync_interval: float = 30.0,
                 polling_interval: float = 1.0, workers: int = 4, failure_limit: int = 10,
                 stall_timeout: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.driver = driver
        self.client = client
        self.report_interval = report_interval
        self.availability_zone = availability_zone
        self.watch_timeout = watch_timeout
        self.resync_interval = resync_interval
        self.polling_interval = polling_interval
        self.failure_limit = max(1, failure_limit)
        self.stall_timeout = stall_timeout
        self.clock = clock
        # Keys are independent: a full pass over a thousand of them runs on a few threads,
        # so that one slow key (a dnsmasq starting) does not hold the others.
        self.workers = max(1, workers)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="apply")
        self.state = State()
        self.passes = PassStats()
        self.fatal: str | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._registered = threading.Event()
        self._start_flag = True
        self._threads: list[threading.Thread] = []
        # Thread -> what it is in the middle of (a key's apply, a look) and since when.
        self._busy_since: dict[int, tuple[str, float]] = {}
        self._sent = Status()  # what the server was last told
        self._sending = threading.Lock()  # the look and the reconciler both send statuses
        self._urgent: set[Key] = set()  # keys host events asked for, not yet taken
        self._next_full = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat, watch, reconcile and look threads."""
        self._next_full = self.clock() + self.resync_interval
        loops = [("heartbeat", self._heartbeat_step), ("watch", self._watch_step),
                 ("reconcile", self._reconcile_step), ("look", self._look_step)]
        if hasattr(self.driver, "events"):
            loops.append(("events", self._events_step))
        for name, step in loops:
            thread = threading.Thread(target=self._supervise, args=(name, step),
                                      name=f"{self.driver.kind.binary}-{name}", daemon=True)
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
            if thread is threading.current_thread():
                continue
            # A watch may sit in a long poll; its daemon thread ends with the process.
            thread.join(timeout=2 if thread.name.endswith("-watch") else 15)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def wait(self) -> None:
        """Block until stopped (by a signal, or because the agent cannot go on)."""
        while not self._stop.wait(1.0):
            pass

    def fail(self, reason: str) -> None:
        """Stop the agent because it cannot go on: no more heartbeats, so the server fails
        its resources over; the process exits non-zero."""
        if self.fatal is None:
            self.fatal = reason
            LOG.critical("%s on %s cannot go on: %s; stopping (no more heartbeats, so the "
                         "server moves its resources elsewhere)", self.driver.kind.binary,
                         self.host, reason)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def _supervise(self, name: str, step: Callable[[], float]) -> None:
        """Run one loop: `step` does one round and says how long to wait before the next."""
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    wait = step()
                    failures = 0
                except Exception:
                    failures += 1
                    LOG.exception("The %s loop failed (%d in a row)", name, failures)
                    if failures >= self.failure_limit:
                        self.fail(f"the {name} loop failed {failures} times in a row")
                        return
                    wait = backoff(failures)
                if wait > 0:
                    self._stop.wait(wait)
        except BaseException as err:  # not even an Exception: the thread is going away
            self.fail(f"the {name} loop died: {err!r}")
            raise

    def _check_health(self) -> None:
        """Fail the agent if a loop thread died or the reconciler is stuck in one key."""
        for thread in self._threads:
            if not thread.is_alive() and not self._stop.is_set():
                raise AgentFailed(f"thread {thread.name} is dead")
        now = self.clock()
        for doing, since in list(self._busy_since.values()):
            if now - since > self.stall_timeout:
                raise AgentFailed(f"{doing} has not returned for {now - since:.0f} s")

    # -- heartbeats -----------------------------------------------------------------------

    def progress(self) -> dict[str, dict[str, int]]:
        """Per kind of key: how many are done, pending and failing."""
        with self._cond:
            counts: dict[str, Counter[str]] = {}
            for key in set(self.state.desired) | set(self.state.keys):
                status = self.state.keys.get(key)
                state = status.state if status else PENDING
                counts.setdefault(key[0], Counter())[state] += 1
        return {kind: {"done": c[DONE], "pending": c[PENDING], "failing": c[ERROR]}
                for kind, c in sorted(counts.items())}

    def configurations(self) -> dict[str, Any]:
        """The driver's configurations, with the agent's progress and full-pass figures."""
        out = dict(self.driver.configurations())
        out["resources_status"] = self.progress()
        out["full_passes"] = {"count": self.passes.count,
                              "with_changes": self.passes.with_changes,
                              "last_changed": self.passes.last_changed}
        return out

    def report(self) -> None:
        """One report to the server (registers the agent the first time)."""
        with self._cond:
            applied = self.state.applied
        kind = self.driver.kind
        self.client.report({
            "agent_type": kind.agent_type, "host": self.host, "binary": kind.binary,
            "topic": kind.topic, "configurations": self.configurations(),
            "availability_zone": self.availability_zone, "start_flag": self._start_flag,
            "applied_revision": applied})
        if self._start_flag:
            LOG.info("Registered %s on %s with the server", kind.agent_type, self.host)
        self._start_flag = False
        self._registered.set()

    def _heartbeat_step(self) -> float:
        try:
            self._check_health()
        except AgentFailed as err:
            self.fail(str(err))
            return 0.0
        try:
            self.report()
        except ChannelError as err:
            LOG.warning("Report failed (%s); next try in %.1f s", err,
                        self.report_interval / 4)
            return self.report_interval / 4
        return self.report_interval

    # -- host events ----------------------------------------------------------------------

    def notify(self, keys: set[Key]) -> None:
        """Keys the host says need applying now (a tap appeared): queued at once."""
        with self._cond:
            fresh = {k for k in keys if k in self.state.desired}
            if fresh:
                self.state.dirty |= fresh
                self._urgent |= fresh
                self._cond.notify_all()
        if fresh:
            LOG.debug("Host events for %s", ", ".join(key_text(k) for k in sorted(fresh)))

    def _events_step(self) -> float:
        self.driver.events(self.notify, self._stop)  # type: ignore[attr-defined]
        return 0.0

    # -- watch ----------------------------------------------------------------------------

    def _watch_step(self) -> float:
        if not self._registered.wait(0.5):
            return 0.0
        with self._cond:
            since = self.state.revision
        try:
            answer = self.client.watch(self.driver.kind.agent_type, self.host, since,
                                       self.watch_timeout)
        except ChannelError as err:
            if err.status == 404:
                # The server does not know us (deleted, or a new database): register
                # again, then start over from a snapshot.
                LOG.warning("The server does not know this agent; registering again")
                self._start_flag = True
                self._registered.clear()
                with self._cond:
                    self.state.revision = 0
                return 0.0
            LOG.warning("Watch failed (%s); resuming from revision %d", err, since)
            return 1.0
        LOG.debug("Watch answer at revision %s: %d keys changed, %d removed%s",
                  answer.get("revision"), len(answer.get("states", [])),
                  len(answer.get("removed", [])), " (snapshot)" if answer.get("snapshot")
                  else "")
        self.absorb(answer)
        return 0.0

    def absorb(self, answer: dict[str, Any]) -> None:
        """Take a watch answer into the desired state and mark what it touches dirty.

        A key given a new state is served at once, even if it was backing off."""
        states = {(str(s["kind"]), str(s["id"])): s["state"] for s in answer["states"]}
        removed = {(str(k), str(i)) for k, i in answer["removed"]}
        revision = max(int(answer["revision"]), 0)
        present = self.driver.present() if answer.get("snapshot") else set()
        with self._cond:
            state = self.state
            if answer.get("snapshot"):
                gone = (set(state.desired) | present) - set(states)
                state.desired = dict(states)
                touched = gone | set(states)
                LOG.info("Snapshot at revision %d: %d keys", revision, len(states))
            else:
                for key in removed:
                    state.desired.pop(key, None)
                state.desired.update(states)
                touched = removed | set(states)
            for key in touched:
                status = state.status(key)
                status.state, status.retry_at = PENDING, 0.0
            state.dirty |= touched
            state.revision = revision
            if not state.dirty:
                state.applied = revision
            self._cond.notify_all()

    # -- reconcile ------------------------------------------------------------------------

    def mark_all_dirty(self) -> None:
        """Queue every key, wanted or present, and resend every status (the full pass)."""
        present = self.driver.present()
        with self._cond:
            keys = set(self.state.desired) | present
            self.state.dirty |= keys
            for key in keys:
                self.state.status(key)
            self._sent = Status()
            self._cond.notify_all()

    def _take_ready(self, now: float) -> tuple[list[Key], int]:
        """Dirty keys not backing off (taken off the queue), in `_by_urgency` order, and
        the revision they carry."""
        with self._cond:
            ready = {k for k in self.state.dirty
                     if self.state.status(k).retry_at <= now}
            self.state.dirty -= ready
            return self._by_urgency(sorted(ready)), self.state.revision

    def _by_urgency(self, keys: list[Key]) -> list[Key]:
        """The keys in their order, but first those the host asked for (a tap that
        appeared: something on the host waits for it), then those this agent never applied,
        then the rest (locked).

        A host starting with hundreds of keys serves each once before it comes back to any:
        the second passes a start brings (an HA router's keepalived once its port is wired,
        a network whose ports turned ACTIVE) held back the keys not served at all, and the
        daemons they started took the CPU the rest needed."""
        known, urgent = self.state.keys, self._urgent
        return sorted(keys, key=lambda k: (k not in urgent, k in known and known[k].served))

    def reconcile_once(self) -> tuple[int, int]:
        """Apply every dirty key that is due once; returns (changed, failed).

        Each worker takes the next key as soon as it is done with one (a slow key, a daemon
        starting, holds only its own worker); what turns dirty meanwhile (a port just
        created) goes ahead of the rest of the pass, so a full pass over a thousand keys
        does not delay it. A key is never applied by two workers at once."""
        pending, revision = self._take_ready(self.clock())
        changed = failed = done_since_status = 0
        running: dict[Future[tuple[bool, bool]], Key] = {}
        seen: set[Key] = set()
        while pending or running:
            busy = set(running.values())
            for key in [k for k in pending if k not in busy][:self.workers - len(running)]:
                pending.remove(key)
                seen.add(key)
                running[self._pool.submit(self._apply_one, key)] = key
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                del running[future]
                ok, did = future.result()
                changed += did
                failed += not ok
            done_since_status += len(finished)
            # A stream of changes (ports turning ACTIVE, routers changing state as a
            # cold start proceeds) can keep this pass going for minutes: what the look
            # finds meanwhile (keys waiting on the host) joins it here.
            fresh, fresh_revision = self._take_ready(self.clock())
            if fresh:
                revision = fresh_revision
                # Keys applied once already in this pass queue behind the rest: one that
                # keeps changing must not starve the others.
                again = [k for k in fresh if k in seen]
                first = [k for k in fresh if k not in seen]
                with self._cond:
                    pending = self._by_urgency(
                        first + [k for k in pending if k not in set(fresh)] + again)
                if done_since_status >= STATUS_EVERY * self.workers:
                    self._send_status()
                    done_since_status = 0
        with self._cond:
            waiting = [k for k in self.state.dirty if self.state.status(k).state == PENDING]
            if not waiting:
                self.state.applied = max(self.state.applied, revision)
        self._send_status()
        return changed, failed

    def _apply_one(self, key: Key) -> tuple[bool, bool]:
        with self._cond:
            state = self.state.desired.get(key)  # the newest, even mid-pass
            self._urgent.discard(key)
        me = threading.get_ident()
        started = self.clock()
        self._busy_since[me] = (f"applying {key_text(key)}", started)
        try:
            changed = bool(self.driver.apply(key, state))
        except Exception as err:  # one key's failure must not stop the others
            self._failed(key, err)
            return False, False
        finally:
            self._busy_since.pop(me, None)
        LOG.debug("Applied %s in %.3f s%s", key_text(key), self.clock() - started,
                  " (changed)" if changed else "")
        with self._cond:
            status = self.state.status(key)
            if status.state == ERROR:
                LOG.info("%s is applied again after %d failed tries", key_text(key).title(),
                         status.attempts)
            if key not in self.state.desired and state is None:
                self.state.keys.pop(key, None)  # removed from the host: nothing to track
            elif self.state.desired.get(key) is state:
                status.state, status.message, status.attempts = DONE, "", 0
            status.served = True
        return True, changed

    def _failed(self, key: Key, err: Exception) -> None:
        with self._cond:
            status = self.state.status(key)
            status.attempts += 1
            status.state, status.message = ERROR, f"{type(err).__name__}: {err}"
            wait = backoff(status.attempts)
            status.retry_at = self.clock() + wait
            self.state.dirty.add(key)
            self._cond.notify_all()
        LOG.error("Could not apply %s (try %d; next in %.1f s): %s", key_text(key),
                  status.attempts, wait, status.message, exc_info=status.attempts == 1)

    def _send_status(self, *, tolerant: bool = True) -> None:
        """Send what changed in the host's status. A failed read is logged and left to the
        next look, unless not `tolerant` (the look itself: its supervision counts the
        failures, and a read that never works stops the agent)."""
        with self._sending:
            try:
                current = self.driver.status()
            except Exception:
                if not tolerant:
                    raise
                LOG.exception("Reading the host's status failed")
                return
            self._send(current)

    def _send(self, current: Status) -> None:
        changes = current.since(self._sent)
        self._sent = self._sent.within(current)  # gone from the host: sent again if back
        if not changes:
            return
        started = self.clock()
        try:
            self.client.status(changes.body(self.host))
        except ChannelError as err:
            LOG.warning("Status report failed (%s); the next look sends it again", err)
            return
        LOG.debug("Status of %d entries sent in %.3f s", changes.count(),
                  self.clock() - started)
        self._sent = self._sent.merged(changes)

    def poll(self) -> None:
        """Queue the keys the driver finds drifted, and send changed statuses."""
        drifted = self.driver.drifted()
        if drifted:
            LOG.info("Drift on %d key(s): %s", len(drifted),
                     ", ".join(key_text(k) for k in sorted(drifted)))
            with self._cond:
                self.state.dirty |= drifted
                self._cond.notify_all()
        else:
            self._send_status(tolerant=False)

    def _look_step(self) -> float:
        """One look for drift (registered agents only); the wait before the next.

        Looks start `polling_interval` apart, but a slow look is followed by a rest as long
        as itself (up to an interval), so that looking never takes most of the agent's time
        from the workers."""
        if not self._registered.wait(0.5):
            return 0.0
        me, started = threading.get_ident(), self.clock()
        self._busy_since[me] = ("the look for drift", started)
        try:
            self.poll()
        finally:
            self._busy_since.pop(me, None)
        took = self.clock() - started
        return max(self.polling_interval - took, min(took, self.polling_interval))

    def _next_retry(self) -> float | None:
        with self._cond:
            times = [self.state.status(k).retry_at for k in self.state.dirty]
        return min(times) if times else None

    def _reconcile_step(self) -> float:
        """Wait for work (new keys and drift at once, retries when due, full passes on
        their interval), then do it."""
        now = self.clock()
        with self._cond:
            wake = self._next_full
            retry = self._next_retry()
            if retry is not None:
                wake = min(wake, retry)
            ready = any(self.state.status(k).retry_at <= now for k in self.state.dirty)
            if not ready and wake > now:
                self._cond.wait(timeout=min(wake - now, 1.0))
        if self._stop.is_set():
            return 0.0
        now = self.clock()
        full = now >= self._next_full
        if full:
            self.mark_all_dirty()
        started = self.clock()
        changed, failed = self.reconcile_once()
        if full:  # counted from the end of the pass: a long pass never runs back to back
            ended = self.clock()
            self._next_full = ended + self.resync_interval
            self._count_pass(changed, failed, ended - started)
        return 0.0

    def _count_pass(self, changed: int, failed: int, seconds: float) -> None:
        stats = self.passes
        stats.count += 1
        stats.last_changed, stats.last_seconds = changed, seconds
        with self._cond:
            total = len(self.state.desired)
        counts = "; ".join(f"{kind}: {c['done']} done, {c['pending']} pending, "
                           f"{c['failing']} failing" for kind, c in self.progress().items())
        if changed:
            stats.with_changes += 1
            LOG.warning("Full pass over %d keys in %.1f s changed %d (%d failed): the host "
                        "had drifted from its desired state [%s]", total, seconds, changed,
                        failed, counts)
        else:
            LOG.info("Full pass over %d keys in %.1f s: nothing to do [%s]", total, seconds,
                     counts or "no keys")
