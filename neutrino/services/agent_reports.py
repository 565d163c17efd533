"""Agent channel bodies, validated as strictly as API bodies.

An agent speaks with a service user's credentials, but what it says still lands in columns
(255-character strings, a 64-bit revision) and in every admin's agent list, so a report is
held to the same rules as a request: the known keys only, each of its type and size, and a
400 `InvalidInput` naming the key otherwise. Messages never echo the value (it may be
100,000 characters long).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from neutrino import exceptions as exc
from neutrino.registry import BY_TYPE
from neutrino.schema import validators as v
from neutrino.services.agents import Report

MAX_TEXT = 255  # the columns' size
MAX_REVISION = 2**63 - 1  # a BIGINT
MAX_CONFIGURATIONS_DEPTH = 8
MAX_CONFIGURATIONS_BYTES = 65_536
MAX_STATUS_ENTRIES = 100_000
PORT_STATES = ("ACTIVE", "DOWN")
REPORT_KEYS = frozenset({"agent_type", "host", "binary", "topic", "configurations",
                         "availability_zone", "start_flag", "applied_revision",
                         "resources_synced"})
# `routers` (HA states) is part of every status body; nothing takes it yet.
STATUS_KEYS = frozenset({"host", "ports", "dhcp_ready", "routers"})


def _invalid(key: str, reason: str) -> exc.InvalidInput:
    return exc.InvalidInput(error_message=f"Invalid input for {key}. Reason: {reason}")


def _text(body: dict[str, Any], key: str, *, required: bool = False, nullable: bool = False,
          default: str = "") -> Any:
    """A printable string of at most MAX_TEXT characters."""
    if key not in body:
        if required:
            raise exc.BadRequest(resource="agent", msg=f"Missing '{key}' in report")
        return None if nullable else default
    value = body[key]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _invalid(key, "not a string")
    if len(value) > MAX_TEXT:
        raise _invalid(key, f"longer than {MAX_TEXT} characters")
    if not value.isprintable():
        raise _invalid(key, "contains control characters")
    return value


def host_name(value: Any, key: str = "host") -> str:
    """An agent's host: a non-empty printable string of at most MAX_TEXT characters."""
    host = _text({key: value}, key)
    if not host or host != host.strip():
        raise _invalid(key, "empty, or with leading or trailing spaces")
    return str(host)


def _boolean(body: dict[str, Any], key: str, default: bool | None) -> bool | None:
    if key not in body or (body[key] is None and default is None):
        return default
    try:
        return v.to_bool(body[key])
    except v.Invalid:
        raise _invalid(key, "not a boolean") from None


def _revision(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid("applied_revision", "not an integer")
    if not 0 <= value <= MAX_REVISION:
        raise _invalid("applied_revision", f"not between 0 and {MAX_REVISION}")
    return value


def _configurations(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid("configurations", "not an object")
    try:
        text: bytes | None = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        text = None  # not JSON, or nested past orjson's own limit
    # Walked only when it has enough brackets to nest too deep (a heartbeat's few do not).
    if (text is None or text.count(b"{") + text.count(b"[") > MAX_CONFIGURATIONS_DEPTH) \
            and v.nesting(value, MAX_CONFIGURATIONS_DEPTH) > MAX_CONFIGURATIONS_DEPTH:
        raise _invalid("configurations", f"nests deeper than {MAX_CONFIGURATIONS_DEPTH} levels")
    if text is None:
        raise _invalid("configurations", "not JSON")
    size = len(text)
    if size > MAX_CONFIGURATIONS_BYTES:
        raise _invalid("configurations", f"longer than {MAX_CONFIGURATIONS_BYTES} bytes")
    return value


def parse_report(body: dict[str, Any]) -> Report:
    """An agent's report (`{"agent": {...}}`'s inside), or a 400."""
    unknown = sorted(k for k in body if k not in REPORT_KEYS)
    if unknown:
        raise exc.BadRequest(resource="agent",
                             msg=f"Unrecognized attribute(s) '{', '.join(unknown)[:200]}'")
    agent_type = _text(body, "agent_type", required=True)
    if agent_type not in BY_TYPE:
        raise _invalid("agent_type", f"not one of {sorted(BY_TYPE)}")
    if "host" not in body:
        raise exc.BadRequest(resource="agent", msg="Missing 'host' in report")
    return Report(
        agent_type=agent_type, host=host_name(body["host"]),
        binary=_text(body, "binary"), topic=_text(body, "topic"),
        configurations=_configurations(body.get("configurations")),
        availability_zone=_text(body, "availability_zone", nullable=True),
        start_flag=bool(_boolean(body, "start_flag", False)),
        applied_revision=_revision(body.get("applied_revision", 0)),
        resources_synced=_boolean(body, "resources_synced", None))


def _entries(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid(key, "not a list")
    if len(value) > MAX_STATUS_ENTRIES:
        raise _invalid(key, f"more than {MAX_STATUS_ENTRIES} entries")
    return value


def _resource_id(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise _invalid(key, "ids are strings of 1 to 255 characters")
    return value


def parse_status(body: dict[str, Any], kinds: Iterable[str],
                 ) -> tuple[str, dict[str, str], set[str], dict[str, list[Any]]]:
    """A status body: the host, port states, ports DHCP answers for, and the entries of
    every other kind (validated by their handlers)."""
    others = list(kinds)
    unknown = sorted(k for k in body if k not in STATUS_KEYS and k not in others)
    if unknown:
        raise exc.BadRequest(resource="status",
                             msg=f"Unrecognized attribute(s) '{', '.join(unknown)[:200]}'")
    if "host" not in body:
        raise exc.BadRequest(resource="status", msg="Missing 'host' in status")
    host = host_name(body["host"])
    updates: dict[str, str] = {}
    for entry in _entries(body, "ports"):
        if not isinstance(entry, dict) or not isinstance(entry.get("status"), str):
            raise _invalid("ports", "entries are {id, status}")
        state = entry["status"].upper()
        if state not in PORT_STATES:
            raise exc.BadRequest(resource="status", msg="status must be ACTIVE or DOWN")
        updates[_resource_id(entry.get("id"), "ports")] = state
    ready = {_resource_id(p, "dhcp_ready") for p in _entries(body, "dhcp_ready")}
    _entries(body, "routers")
    return host, updates, ready, {name: _entries(body, name) for name in others}
