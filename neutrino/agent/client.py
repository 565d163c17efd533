"""The agent's side of the channel: report, watch and status over HTTP, as a service user:
HTTP Basic against the server's users file, or a Keystone token (`KeystoneToken`) when the
agent's `[service_auth]` section names a keystoneauth plugin, as Neutron's `[nova]` does."""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import httpx
import orjson
from oslo_config import cfg

SERVICE_AUTH_GROUP = "service_auth"


class ChannelError(Exception):
    """The server could not be reached or refused a call."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KeystoneToken(httpx.Auth):
    """A Keystone token on every call, from a keystoneauth plugin, which keeps it until it
    is about to expire; a 401 (the token was revoked) gets a new token and one retry."""

    def __init__(self, plugin: Any) -> None:
        from keystoneauth1 import session

        self._plugin = plugin
        self._session = session.Session(auth=plugin)
        self._lock = threading.Lock()  # the agent's threads share one token

    def _token(self) -> str:
        with self._lock:
            token: str = self._plugin.get_token(self._session)
            return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send the request with the token; once more with a fresh one after a 401."""
        request.headers["X-Auth-Token"] = self._token()
        response = yield request
        if response.status_code == 401:
            with self._lock:
                self._plugin.invalidate()
            request.headers["X-Auth-Token"] = self._token()
            yield request


def channel_auth(conf: cfg.ConfigOpts) -> httpx.Auth | tuple[str, str]:
    """How an agent logs in: a Keystone token when `[service_auth] auth_type` is set (a
    user with the `service` role), else HTTP Basic as `[AGENT] server_username`."""
    from keystoneauth1 import loading

    plugin = loading.load_auth_from_conf_options(conf, SERVICE_AUTH_GROUP)
    if plugin is not None:
        return KeystoneToken(plugin)
    return (conf.AGENT.server_username, conf.AGENT.server_password)


class ServerClient:
    """Calls to neutrino-server's agent channel."""

    def __init__(self, url: str, auth: httpx.Auth | tuple[str, str]) -> None:
        self.base = url.rstrip("/") + "/agent-channel/v1"
        self._http = httpx.Client(auth=auth, timeout=httpx.Timeout(10.0))

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
