"""Routes of the quotas API (`quotas`, `quota_details`): a project's limits, its defaults
and its usage; admins set and reset them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neutrino.api.responses import json_response
from neutrino.schema.policy import Context

if TYPE_CHECKING:
    from neutrino.api.app import API

Handler = Callable[[Request], Awaitable[Response]]


def quota_routes(api: API) -> list[Route]:
    """`/v2.0/quotas`, `/v2.0/quotas/{project_id}` and its `default` and `details`, and
    `/v2.0/quotas/project` (`tenant`), the caller's own project."""
    quotas = api.services.quotas

    async def list_all(request: Request) -> Response:
        ctx = await api.context(request)
        return json_response({"quotas": await run_in_threadpool(quotas.list_all, ctx)})

    def one_project(read: Callable[[Context, str], Any]) -> Handler:
        """A GET of one project's limits, defaults or usage."""

        async def run(request: Request) -> Response:
            ctx = await api.context(request)
            found = await run_in_threadpool(read, ctx, request.path_params["project_id"])
            return json_response({"quota": found})

        return run

    def own_project(key: str) -> Handler:
        """`GET /v2.0/quotas/project` (and the older `tenant`): the caller's project."""

        async def run(request: Request) -> Response:
            project = quotas.caller_project(await api.context(request))
            return json_response({key: {f"{key}_id": project}})

        return run

    async def update(request: Request) -> Response:
        ctx = await api.context(request)
        body = await api.body(request)
        found = await run_in_threadpool(quotas.update, ctx, request.path_params["project_id"],
                                        body)
        return json_response({"quota": found})

    async def reset(request: Request) -> Response:
        ctx = await api.context(request)
        await run_in_threadpool(quotas.reset, ctx, request.path_params["project_id"])
        return Response(status_code=204)

    base = "/v2.0/quotas"
    return [
        Route(base, api.guarded(list_all), methods=["GET"]),
        Route(base + "/project", api.guarded(own_project("project")), methods=["GET"]),
        Route(base + "/tenant", api.guarded(own_project("tenant")), methods=["GET"]),
        Route(base + "/{project_id}/default", api.guarded(one_project(quotas.show_default)),
              methods=["GET"]),
        Route(base + "/{project_id}/details", api.guarded(one_project(quotas.details)),
              methods=["GET"]),
        Route(base + "/{project_id}", api.guarded(one_project(quotas.show)), methods=["GET"]),
        Route(base + "/{project_id}", api.guarded(update), methods=["PUT"]),
        Route(base + "/{project_id}", api.guarded(reset), methods=["DELETE"]),
    ]
