"""Who is calling: `noauth` trusted headers, or HTTP Basic against a users file.

The users file is JSON, managed by `neutrino user add|list|remove`:
`{"users": {"NAME": {"password_hash": "<bcrypt>", "project_id": "...", "roles": [...]}}}`.
bcrypt is deliberately slow, so a verified (user, password) pair is remembered by its SHA-256
digest until the file changes; a wrong password is never remembered.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Mapping
from typing import Any

import bcrypt

from neutrino import exceptions as exc
from neutrino.schema.policy import Context


def context_from_headers(headers: Mapping[str, str]) -> Context:
    """Neutron's noauth: the project, user and roles headers; no project means admin."""
    project = headers.get("x-project-id") or headers.get("x-tenant-id")
    roles_header = headers.get("x-roles")
    if project is None:
        return Context(user_id=headers.get("x-user-id"), project_id=None,
                       roles=["admin", *(roles_header or "").split(",")])
    roles = roles_header.split(",") if roles_header else ["member"]
    return Context(user_id=headers.get("x-user-id"), project_id=project, roles=roles)


class UserFile:
    """The users of http_basic auth, read from (and written to) a JSON file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._users: dict[str, dict[str, Any]] = {}
        self._verified: dict[str, str] = {}

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

    def authenticate(self, username: str, password: str) -> Context:
        """The context of a user whose password matches, else Unauthenticated."""
        user = self._load().get(username)
        if user is None:
            raise exc.Unauthenticated()
        digest = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
        if self._verified.get(username) != digest:
            if not bcrypt.checkpw(password.encode(), user["password_hash"].encode()):
                raise exc.Unauthenticated()
            self._verified[username] = digest
        return Context(user_id=user.get("user_id", username), project_id=user["project_id"],
                       roles=list(user.get("roles", [])))

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
