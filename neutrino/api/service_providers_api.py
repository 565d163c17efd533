"""`service-type`: `GET /v2.0/service-providers`, the drivers behind each service.

Neutron lists its L3 router flavours there (`single_node`, `ha`, `dvr`, `dvrha`); neutrino
lists the ones it has, so a client choosing a router kind sees what it may ask for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neutrino.api.responses import json_response, select_fields, simple_list_query

if TYPE_CHECKING:
    from neutrino.api.app import API

# (service type, provider name): the router kinds neutrino implements. None is the
# default: as in Neutron, a router's kind follows its `ha` and `distributed` flags.
PROVIDERS: tuple[tuple[str, str], ...] = (("L3_ROUTER_NAT", "single_node"),)
FILTERS = ("service_type", "name", "default")


def providers(filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The providers matching Neutron's equality filters (several values: any of them)."""
    rows = [{"service_type": kind, "name": name, "default": False}
            for kind, name in PROVIDERS]
    return [row for row in rows
            if all(str(row[key]).lower() in {v.lower() for v in wanted}
                   for key, wanted in filters.items())]


def service_provider_routes(api: API) -> list[Route]:
    """The list, with filters and `fields`; it reads no database."""

    async def list_all(request: Request) -> Response:
        ctx = await api.context(request)
        api.services.core.policy.enforce(ctx, "get_service_provider", {})
        filters, fields = simple_list_query(
            request.query_params, "service_provider", FILTERS,
            ignored=("limit", "marker", "sort_key", "sort_dir", "page_reverse"))
        return json_response({"service_providers": [
            select_fields(row, fields, frozenset()) for row in providers(filters)]})

    return [Route("/v2.0/service-providers", api.guarded(list_all), methods=["GET"])]
