"""Response bodies as Neutron renders them: JSON, NeutronError, selected fields."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from starlette.responses import Response

from neutrino import exceptions as exc

GENERIC_500 = "Request Failed: internal server error while processing your request."


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON response (orjson: several times faster than json for large lists)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(error: exc.NeutronException) -> Response:
    """A NeutronException as Neutron renders it."""
    response = json_response(
        {"NeutronError": {"type": error.type, "message": error.msg, "detail": ""}},
        error.status)
    if isinstance(error, exc.Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Basic realm="neutrino"'
    elif isinstance(error, exc.TooManyRequests):
        response.headers["Retry-After"] = str(error.kwargs["retry_after"])
    return response


def select_fields(item: dict[str, Any], fields: list[str],
                  hidden: frozenset[str]) -> dict[str, Any]:
    """The attributes asked for with `fields=` (all when none), less the hidden ones."""
    if fields:
        return {k: item[k] for k in fields if k in item and k not in hidden}
    if hidden:
        return {k: val for k, val in item.items() if k not in hidden}
    return item


def simple_list_query(params: Any, resource: str, filters: Iterable[str],
                      ignored: Iterable[str] = ()) -> tuple[dict[str, list[str]], list[str]]:
    """The filters and `fields` of a list that is not in the resource table (agents, IP
    availability); an unknown key is a BadRequest, `ignored` keys are dropped."""
    allowed, skipped = set(filters), set(ignored)
    found: dict[str, list[str]] = {}
    fields: list[str] = []
    for key, value in params.multi_items():
        if key == "fields":
            fields.extend(f for f in value.split(",") if f)
        elif key in allowed:
            found.setdefault(key, []).append(value)
        elif key not in skipped:
            raise exc.BadRequest(resource=resource, msg=f"{key} is invalid attribute for filtering")
    return found, fields
