"""Routes of `network-ip-availability`: `GET /v2.0/network-ip-availabilities[/{id}]`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neutrino import exceptions as exc
from neutrino.api.responses import json_response, select_fields
from neutrino.services.ip_availability import FILTERS

if TYPE_CHECKING:
    from neutrino.api.app import API


def ip_availability_routes(api: API) -> list[Route]:
    """The list (with Neutron's filters and `fields`) and one network's figures."""
    service = api.services.ip_availability

    async def list_all(request: Request) -> Response:
        ctx = await api.context(request)
        filters: dict[str, list[str]] = {}
        fields: list[str] = []
        for key, value in request.query_params.multi_items():
            if key == "fields":
                fields.extend(f for f in value.split(",") if f)
            elif key in FILTERS:
                filters.setdefault(key, []).append(value)
            elif key not in ("limit", "marker", "sort_key", "sort_dir", "page_reverse"):
                raise exc.BadRequest(resource="network_ip_availability",
                                     msg=f"{key} is invalid attribute for filtering")
        found = await run_in_threadpool(service.list_all, ctx, filters)
        return json_response({"network_ip_availabilities": [
            select_fields(item, fields, frozenset()) for item in found]})

    async def show(request: Request) -> Response:
        ctx = await api.context(request)
        found = await run_in_threadpool(service.get, ctx, request.path_params["id"])
        return json_response({"network_ip_availability": found})

    base = "/v2.0/network-ip-availabilities"
    return [Route(base, api.guarded(list_all), methods=["GET"]),
            Route(base + "/{id}", api.guarded(show), methods=["GET"])]
