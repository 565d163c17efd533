"""The API's ASGI middleware: request ids and the `.json` format suffix, in one layer.

Request ids: every response carries `X-OpenStack-Request-Id: req-<uuid>`, as Neutron's
(oslo.middleware's) does, and every log line written while the request is served names it.

The id lives in a context variable, which the worker threads serving a request inherit
(Starlette's thread pool copies the context); a log record made meanwhile carries an
oslo.context `RequestContext` with the id, which oslo.log's context format prints.
"""

from __future__ import annotations

import logging
import random
import uuid
from contextvars import ContextVar
from typing import Any

from oslo_context import context as oslo_context
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-openstack-request-id"
CURRENT: ContextVar[str | None] = ContextVar("neutrino_request_id", default=None)


# Request ids need to be unique, not unpredictable: a generator seeded once from the
# system's randomness makes them without a system call on the event loop (a call that
# gives up the GIL there waits for a busy worker thread to hand it back).
_RANDOM = random.Random()


def new_id() -> str:
    """A request id in Neutron's form (`req-` and a version 4 UUID)."""
    return f"req-{uuid.UUID(int=_RANDOM.getrandbits(128), version=4)}"


class RequestMiddleware:
    """Every HTTP request: an id, in the response's headers and in the logs; and
    `GET /v2.0/networks/{id}.json` is `GET /v2.0/networks/{id}`, as in Neutron (JSON is
    the only format; a tag whose name ends in `.json` meets the same corner case there).
    One layer for both: each ASGI layer costs every request, heartbeats included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.endswith(".json") and path.startswith("/v2.0/"):
            raw = scope.get("raw_path")
            scope = {**scope, "path": path.removesuffix(".json"),
                     "raw_path": raw.removesuffix(b".json") if raw else raw}
        request_id = new_id()
        token = CURRENT.set(request_id)
        header = (HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The app never sets this header itself: appending is enough.
                message = {**message, "headers": [*message.get("headers", ()), header]}
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
