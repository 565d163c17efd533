"""Who is calling: `noauth` trusted headers, HTTP Basic against a users file, or a Keystone
token (`KeystoneAuth`).

The users file is JSON, managed by `neutrino user add|list|remove`:
`{"users": {"NAME": {"password_hash": "<bcrypt>", "project_id": "...", "roles": [...]}}}`.

bcrypt is deliberately slow (a quarter of a second of CPU), so `Authenticator`:
- verifies in worker threads, at most one fewer than the CPUs at a time, so that the event
  loop (every other request, the agents' heartbeats) always has a CPU;
- remembers a verified (user, password, hash) by its SHA-256 digest until it has not been
  used for `auth_cache_ttl` seconds (a changed password has another hash; a changed file
  forgets everything), and lets concurrent logins with the same credentials share one
  verification;
- throttles failures per user name and per client address (`Throttle`, answered with 429
  and Retry-After), unknown user names included;
- verifies an unknown user's password against a dummy hash of the same cost, so that the
  time taken does not tell which user names exist.
A wrong password is never remembered.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import anyio.to_thread
import bcrypt
from anyio import CapacityLimiter

from neutrino import exceptions as exc
from neutrino.schema.policy import Context

LOG = logging.getLogger(__name__)
BCRYPT_MAX_BYTES = 72  # bcrypt reads no further; longer passwords are refused
DEFAULT_COST = 12
CACHE_SIZE = 10_000
_dummies: dict[int, bytes] = {}
_dummies_lock = threading.Lock()


def _dummy_hash(cost: int) -> bytes:
    """A hash of a random secret at `cost`, made once per cost (in a worker thread)."""
    with _dummies_lock:
        found = _dummies.get(cost)
        if found is None:
            found = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(cost))
            _dummies[cost] = found
        return found


def _cost(hashed: str) -> int:
    """The cost of a bcrypt hash (`$2b$12$...`), or the default if unreadable."""
    parts = hashed.split("$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else DEFAULT_COST


def verify(password: str, hashed: str | None, cost: int = DEFAULT_COST) -> bool:
    """Whether `password` matches a bcrypt hash; with no hash (an unknown user), False,
    after the same work. A password bcrypt cannot take (longer than 72 bytes, or with a NUL)
    is checked in a form it can, then refused, so that it costs as much as any other."""
    secret = password.encode()
    acceptable = len(secret) <= BCRYPT_MAX_BYTES and b"\0" not in secret
    target = hashed.encode() if hashed is not None else _dummy_hash(cost)
    try:
        matched = bcrypt.checkpw(secret[:BCRYPT_MAX_BYTES].replace(b"\0", b""), target)
    except ValueError as err:  # a malformed hash in the users file
        LOG.warning("Could not check a password against a stored hash: %s", err)
        return False
    return matched and hashed is not None and acceptable


def context_from_headers(headers: Mapping[str, str]) -> Context:
    """Neutron's noauth: the project, user and roles headers; no project means admin."""
    project = headers.get("x-project-id") or headers.get("x-tenant-id")
    roles_header = headers.get("x-roles")
    if project is None:
        return Context(user_id=headers.get("x-user-id"), project_id=None,
                       roles=["admin", *(roles_header or "").split(",")])
    roles = roles_header.split(",") if roles_header else ["member"]
    return Context(user_id=headers.get("x-user-id"), project_id=project, roles=roles)


class KeystoneAuth:
    """Keystone tokens, validated by keystonemiddleware's auth_token as Neutron's API does,
    with the `[keystone_authtoken]` section Neutron reads and its token cache (in process,
    or memcached when `memcached_servers` is set).

    The middleware is WSGI: each request's headers go through it in a worker thread (it
    may call Keystone), as a minimal WSGI environ; when it accepts the token it has set
    the identity headers (X-Project-Id, X-User-Id, X-Roles...) from the token, after
    removing any the client sent, and the context is made from those alone.
    """

    ACCEPTED = "neutrino.token_accepted"

    def __init__(self, conf: Any) -> None:
        from keystonemiddleware import auth_token

        self._protocol = auth_token.AuthProtocol(self._accept, {"oslo_config_config": conf})

    @classmethod
    def _accept(cls, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        environ[cls.ACCEPTED] = True
        start_response("204 No Content", [])
        return []

    def _validate(self, method: str, path: str, headers: Mapping[str, str]) -> dict[str, Any]:
        import io

        environ: dict[str, Any] = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "",
            "QUERY_STRING": "", "SERVER_NAME": "neutrino", "SERVER_PORT": "9696",
            "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO(), "wsgi.version": (1, 0),
            "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}
        for key, value in headers.items():
            environ["HTTP_" + key.upper().replace("-", "_")] = value
        status: list[str] = []
        for _chunk in self._protocol(environ, lambda s, _h, _e=None: status.append(s)):
            pass
        if not environ.get(self.ACCEPTED):
            raise exc.Unauthenticated()
        return environ

    async def context(self, method: str, path: str, headers: Mapping[str, str]) -> Context:
        """The caller of a request, from its token (401 when missing, expired or revoked)."""
        environ = await anyio.to_thread.run_sync(self._validate, method, path, headers)
        roles = [r for r in environ.get("HTTP_X_ROLES", "").split(",") if r]
        return Context(user_id=environ.get("HTTP_X_USER_ID"),
                       project_id=environ.get("HTTP_X_PROJECT_ID"), roles=roles)


class UserFile:
    """The users of http_basic auth, read from (and written to) a JSON file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._users: dict[str, dict[str, Any]] = {}
        self._verified: dict[str, float] = {}  # digest -> expiry (monotonic)

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            mtime = os.stat(self.path).st_mtime
        except FileNotFoundError:
            mtime = None
        with self._lock:
            if mtime != self._mtime:
                users: dict[str, dict[str, Any]] = {}
                if mtime is not None:
                    with open(self.path, encoding="utf-8") as f:
                        users = json.load(f).get("users", {})
                self._users, self._mtime, self._verified = users, mtime, {}
            return self._users

    def users(self) -> dict[str, dict[str, Any]]:
        """Every user, by name."""
        return dict(self._load())

    def get(self, username: str) -> dict[str, Any] | None:
        """One user, or None."""
        return self._load().get(username)

    def remembered(self, digest: str, now: float) -> bool:
        """Whether credentials with this digest were verified and have not expired."""
        expires = self._verified.get(digest)
        return expires is not None and expires > now

    def remember(self, digest: str, until: float) -> None:
        """Remember verified credentials until `until`."""
        with self._lock:
            if len(self._verified) >= CACHE_SIZE:
                self._verified.clear()
            self._verified[digest] = until

    def save(self, users: dict[str, dict[str, Any]]) -> None:
        """Write the users atomically, readable by the owner only."""
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"users": users}, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def add(self, username: str, password: str, project_id: str | None,
            roles: list[str]) -> dict[str, Any]:
        """Add or replace a user; a new project id is made up if none is given."""
        users = self.users()
        if len(password.encode()) > BCRYPT_MAX_BYTES:
            raise ValueError(f"a password is at most {BCRYPT_MAX_BYTES} bytes (bcrypt)")
        users[username] = {
            "password_hash": bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode(),
            "project_id": project_id or uuid.uuid4().hex,
            "user_id": users.get(username, {}).get("user_id", uuid.uuid4().hex),
            "roles": roles,
        }
        self.save(users)
        return users[username]

    def remove(self, username: str) -> bool:
        """Remove a user; False if there was none."""
        users = self.users()
        if users.pop(username, None) is None:
            return False
        self.save(users)
        return True


def basic_credentials(header: str | None) -> tuple[str, str]:
    """The user name and password of an `Authorization: Basic` header."""
    if not header or not header.lower().startswith("basic "):
        raise exc.Unauthenticated()
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise exc.Unauthenticated() from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise exc.Unauthenticated()
    return username, password


class Throttle:
    """Failures counted per key until it has been quiet for a window; a key that reaches
    `limit` is refused for a second, then twice as long after each further failure, at most
    the window (so a sustained attack gets one try a window).

    Keys beyond `max_keys` push out the oldest, so memory stays bounded whatever the names.
    Used from the event loop only.
    """

    def __init__(self, limit: int, window: float, max_keys: int = 65_536,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._keys: OrderedDict[str, list[float]] = OrderedDict()  # [count, last, until]

    def retry_after(self, key: str) -> float:
        """Seconds before `key` may try again (0: now)."""
        state = self._keys.get(key)
        return max(0.0, state[2] - self.clock()) if state else 0.0

    def failed(self, key: str) -> bool:
        """Count a failure; True if it locks the key."""
        now = self.clock()
        state = self._keys.get(key)
        if state is None or now - state[1] > self.window:
            state = [0.0, now, 0.0]
            self._keys[key] = state
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
        state[0] += 1
        state[1] = now
        if state[0] < self.limit:
            return False
        state[2] = now + min(self.window, 2.0 ** (state[0] - self.limit))
        return True

    def succeeded(self, key: str) -> None:
        """Forget the key's failures."""
        self._keys.pop(key, None)


class Authenticator:
    """HTTP Basic logins against a users file, off the event loop (see the module)."""

    def __init__(self, users: UserFile, *, cache_ttl: float = 60.0, per_user: int = 5,
                 per_source: int = 20, window: float = 60.0) -> None:
        self.users = users
        self.cache_ttl = cache_ttl
        self.by_user = Throttle(per_user, window)
        self.by_source = Throttle(per_source, window)
        self._limiter: CapacityLimiter | None = None
        self._inflight: dict[str, asyncio.Future[bool]] = {}

    @classmethod
    def from_conf(cls, conf: Any, users: UserFile) -> Authenticator:
        """An authenticator with the configured cache and throttles."""
        return cls(users, cache_ttl=conf.auth_cache_ttl, per_user=conf.auth_failures_per_user,
                   per_source=conf.auth_failures_per_source, window=conf.auth_failure_window)

    def _verify_async(self, digest: str, password: str, hashed: str | None,
                      cost: int) -> asyncio.Future[bool]:
        """One verification in a worker thread, shared by concurrent equal logins."""
        found = self._inflight.get(digest)
        if found is not None:
            return found
        if self._limiter is None:
            self._limiter = CapacityLimiter(max(1, (os.cpu_count() or 2) - 1))
        limiter = self._limiter
        task = asyncio.ensure_future(anyio.to_thread.run_sync(
            verify, password, hashed, cost, limiter=limiter))
        self._inflight[digest] = task
        task.add_done_callback(lambda _done: self._inflight.pop(digest, None))
        return task

    async def authenticate(self, username: str, password: str, source: str) -> Context:
        """The context of a user whose password matches; Unauthenticated, or
        TooManyRequests while the user name or the source is throttled."""
        user = self.users.get(username)
        hashed = str(user["password_hash"]) if user is not None else None
        digest = hashlib.sha256(f"{username}\0{password}\0{hashed}".encode()).hexdigest()
        now = time.monotonic()
        if user is not None and self.users.remembered(digest, now):
            # In use, so kept: agents that report every few seconds never queue behind
            # an attacker's checks. Nothing is lost: a change of the file forgets it.
            self.users.remember(digest, now + self.cache_ttl)
            return _context(username, user)
        user_key, source_key = _key("user", username), _key("source", source)
        wait = max(self.by_user.retry_after(user_key), self.by_source.retry_after(source_key))
        if wait > 0:
            raise exc.TooManyRequests(retry_after=max(1, math.ceil(wait)))
        cost = _cost(hashed) if hashed is not None else self._cost_of_users()
        matched = await asyncio.shield(self._verify_async(digest, password, hashed, cost))
        if matched and user is not None:
            self.users.remember(digest, time.monotonic() + self.cache_ttl)
            self.by_user.succeeded(user_key)
            return _context(username, user)
        for throttle, key, what in ((self.by_user, user_key, f"user {username[:64]!r}"),
                                    (self.by_source, source_key, f"client {source}")):
            if throttle.failed(key):
                LOG.warning("Throttling logins of %s after repeated failures (for %.0f s)",
                            what, throttle.retry_after(key))
        raise exc.Unauthenticated()

    def _cost_of_users(self) -> int:
        """The cost an unknown user's check pays: that of the users' own hashes."""
        for user in self.users.users().values():
            return _cost(str(user.get("password_hash", "")))
        return DEFAULT_COST


def _key(kind: str, name: str) -> str:
    """A throttle key; long names by their digest, so that memory stays bounded."""
    if len(name) <= 64:
        return f"{kind}:{name}"
    return f"{kind}#{hashlib.sha256(name.encode(errors='replace')).hexdigest()}"


def _context(username: str, user: Mapping[str, Any]) -> Context:
    return Context(user_id=user.get("user_id", username), project_id=user["project_id"],
                   roles=list(user.get("roles", [])))
