"""The agent's side of the channel: report, watch and status over HTTP, as a service user."""

from __future__ import annotations

from typing import Any

import httpx
import orjson


class ChannelError(Exception):
    """The server could not be reached or refused a call."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServerClient:
    """Calls to neutrino-server's agent channel."""

    def __init__(self, url: str, username: str, password: str) -> None:
        self.base = url.rstrip("/") + "/agent-channel/v1"
        self._http = httpx.Client(auth=(username, password), timeout=httpx.Timeout(10.0))

    def _call(self, method: str, path: str, *, body: Any = None,
              params: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
        try:
            resp = self._http.request(
                method, self.base + path, params=params, timeout=timeout,
                content=orjson.dumps(body) if body is not None else None,
                headers={"content-type": "application/json"} if body is not None else None)
        except httpx.HTTPError as err:
            raise ChannelError(f"{method} {path}: {err}") from None
        if resp.status_code >= 400:
            try:
                message = resp.json()["NeutronError"]["message"]
            except (ValueError, KeyError, TypeError):
                message = resp.text[:200]
            raise ChannelError(f"{method} {path}: {resp.status_code} {message}",
                               resp.status_code)
        return orjson.loads(resp.content)

    def report(self, agent: dict[str, Any]) -> dict[str, Any]:
        """Register or refresh this agent; returns its id and the server's revision."""
        result: dict[str, Any] = self._call("POST", "/report", body={"agent": agent})
        return result

    def watch(self, agent_type: str, host: str, since: int, timeout: float) -> dict[str, Any]:
        """What changed for this agent since `since` (waits up to `timeout` for something)."""
        result: dict[str, Any] = self._call(
            "GET", "/watch", timeout=timeout + 10,
            params={"agent_type": agent_type, "host": host, "since": since,
                    "timeout": timeout})
        return result

    def status(self, body: dict[str, Any]) -> dict[str, Any]:
        """Report ports up or down, or ready for DHCP."""
        result: dict[str, Any] = self._call("POST", "/status", body=body)
        return result

    def close(self) -> None:
        """Close the connection."""
        self._http.close()
