"""Routes of sub-collections (`/v2.0/agents/{id}/dhcp-networks`), made from the resource
table: list, add (POST `{"<key>": id}`, 201 `null` as Neutron answers) and remove (DELETE
`.../{target_id}`, 204). A provider answers them with `list_<name>`, `add_<name>` and
`remove_<name>` (dashes as underscores)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neutrino import exceptions as exc
from neutrino.api.responses import json_response, select_fields
from neutrino.schema.resources import ALL_RESOURCES, Resource, SubCollection

if TYPE_CHECKING:
    from neutrino.api.app import API


def null_created() -> Response:
    """201 with a `null` body: the SDK reads JSON from it, and Neutron answers that."""
    return Response(b"null", status_code=201, media_type="application/json")


def subcollection_routes(api: API, owner: Resource, sub: SubCollection,
                         provider: Any) -> list[Route]:
    """The routes of one sub-collection."""
    base = f"/v2.0/{owner.path}/{{id}}/{sub.name}"
    listed = ALL_RESOURCES[sub.lists]

    async def list_(request: Request) -> Response:
        ctx = await api.context(request)
        found = await run_in_threadpool(getattr(provider, f"list_{sub.handler}"), ctx,
                                        request.path_params["id"])
        hidden = api.hidden(ctx, listed) if listed.collection in api.by_collection \
            else frozenset()
        return json_response({listed.collection: [select_fields(item, [], hidden)
                                                  for item in found]})

    routes = [Route(base, api.guarded(list_), methods=["GET"])]
    if sub.key is None:
        return routes
    key = sub.key

    async def add(request: Request) -> Response:
        ctx = await api.context(request)
        body = await api.body(request)
        target = body.get(key) if isinstance(body, dict) else None
        if not isinstance(target, str):
            raise exc.BadRequest(resource=owner.name, msg=f"{key} is required")
        await run_in_threadpool(getattr(provider, f"add_{sub.handler}"), ctx,
                                request.path_params["id"], target)
        return null_created()

    async def remove(request: Request) -> Response:
        ctx = await api.context(request)
        await run_in_threadpool(getattr(provider, f"remove_{sub.handler}"), ctx,
                                request.path_params["id"], request.path_params["target"])
        return Response(status_code=204)

    return routes + [Route(base, api.guarded(add), methods=["POST"]),
                     Route(base + "/{target}", api.guarded(remove), methods=["DELETE"])]


def all_subcollection_routes(api: API) -> list[Route]:
    """Every sub-collection route, with its provider from the services."""
    routes = []
    for resource in ALL_RESOURCES.values():
        for sub in resource.subcollections:
            provider = api.services.providers[(resource.collection, sub.name)]
            routes.extend(subcollection_routes(api, resource, sub, provider))
    return routes
