"""Routes of `network-ip-availability`: `GET /v2.0/network-ip-availabilities[/{id}]`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neutrino.api.responses import json_response, select_fields, simple_list_query
from neutrino.services.ip_availability import FILTERS

if TYPE_CHECKING:
    from neutrino.api.app import API


def ip_availability_routes(api: API) -> list[Route]:
    """The list (with Neutron's filters and `fields`) and one network's figures."""
    service = api.services.ip_availability

    async def list_all(request: Request) -> Response:
        ctx = await api.context(request)
        filters, fields = simple_list_query(
            request.query_params, "network_ip_availability", FILTERS,
            ignored=("limit", "marker", "sort_key", "sort_dir", "page_reverse"))
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
