"""The API's ASGI middleware: request ids and the `.json` format suffix.

Request ids: every response carries `X-OpenStack-Request-Id: req-<uuid>`, as Neutron's
(oslo.middleware's) does, and every log line written while the request is served names it.

The id lives in a context variable, which the worker threads serving a request inherit
(Starlette's thread pool copies the context); a log record made meanwhile carries an
oslo.context `RequestContext` with the id, which oslo.log's context format prints.
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar
from typing import Any

from oslo_context import context as oslo_context
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-openstack-request-id"
CURRENT: ContextVar[str | None] = ContextVar("neutrino_request_id", default=None)


def new_id() -> str:
    """A request id in Neutron's form."""
    return f"req-{uuid.uuid4()}"


class RequestIdMiddleware:
    """Give each HTTP request an id, in the response's headers and in the logs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_id()
        token = CURRENT.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            CURRENT.reset(token)


_installed = False


def install_log_records() -> None:
    """Make log records carry the current request's id (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        request_id = CURRENT.get()
        if request_id is not None and "context" not in record.__dict__:
            record.context = oslo_context.RequestContext(request_id=request_id,
                                                         overwrite=False)
        return record

    logging.setLogRecordFactory(factory)


class FormatSuffixMiddleware:
    """`GET /v2.0/networks/{id}.json` is `GET /v2.0/networks/{id}`, as in Neutron (JSON is
    the only format; a tag whose name ends in `.json` meets the same corner case there)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/v2.0/") and path.endswith(".json"):
            raw = scope.get("raw_path")
            scope = {**scope, "path": path.removesuffix(".json"),
                     "raw_path": raw.removesuffix(b".json") if raw else raw}
        await self.app(scope, receive, send)
