"""Routes of the agent API, availability zones, and the channel agents talk to the server
through (`/agent-channel/v1/...`); the schedulers' sub-collections are in `subresources`.

The channel's callers need the `service` (or admin) role: a forged DHCP agent could otherwise
take over a network's DHCP. They log in with HTTP Basic against the users file whatever
`auth_strategy` the API uses, or, with `auth_strategy = keystone`, with a Keystone token of a
service user.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neutrino import exceptions as exc
from neutrino.api.responses import json_response, select_fields, simple_list_query
from neutrino.registry import DHCP, L3
from neutrino.schema import validators as v
from neutrino.schema.policy import Context
from neutrino.services.agent_reports import MAX_REVISION, host_name
from neutrino.services.agents import FILTERS

if TYPE_CHECKING:
    from neutrino.api.app import API

MAX_WATCH_TIMEOUT = 3600.0  # an agent waits at most watch_timeout; an hour is plenty


def watch_params(request: Request) -> tuple[str, str, int, float]:
    """A watch's agent type, host, revision and timeout (finite, 0 to MAX_WATCH_TIMEOUT s)."""
    params = request.query_params
    for key in ("agent_type", "host"):
        if key not in params:
            raise exc.BadRequest(resource="watch", msg=f"Missing '{key}' in watch")
    agent_type, host = params["agent_type"], host_name(params["host"])
    try:
        cursor = int(params.get("since", "0"))
        timeout = float(params.get("timeout", "30"))
    except ValueError:
        raise exc.BadRequest(resource="watch", msg="since is an integer and timeout a "
                                                   "number of seconds") from None
    if not 0 <= cursor <= MAX_REVISION:
        raise exc.BadRequest(resource="watch", msg=f"since must be 0 to {MAX_REVISION}")
    if not (math.isfinite(timeout) and 0 <= timeout <= MAX_WATCH_TIMEOUT):
        raise exc.BadRequest(resource="watch",
                             msg=f"timeout must be 0 to {MAX_WATCH_TIMEOUT} seconds")
    return agent_type, host, cursor, timeout


def agent_routes(api: API) -> list[Route]:
    """Every route of the agent API and the channel."""
    svc = api.services
    agents, channel = svc.agents, svc.channel

    async def list_agents(request: Request) -> Response:
        ctx = await api.context(request)
        filters, fields = simple_list_query(request.query_params, "agent", FILTERS)
        found = await run_in_threadpool(agents.list_agents, ctx, filters)
        return json_response({"agents": [select_fields(a, fields, frozenset())
                                          for a in found]})

    async def show_agent(request: Request) -> Response:
        ctx = await api.context(request)
        found = await run_in_threadpool(agents.get, ctx, request.path_params["id"])
        return json_response({"agent": found})

    async def create_agent(request: Request) -> Response:
        await api.context(request)
        raise exc.AgentCreationNotSupported()

    async def update_agent(request: Request) -> Response:
        ctx = await api.context(request)
        body = await api.body(request)
        item = body.get("agent") if isinstance(body, dict) else None
        if not isinstance(item, dict):
            raise exc.BadRequest(resource="agent", msg="Unable to find 'agent' in request body")
        changes: dict[str, Any] = {}
        for key, value in item.items():
            try:
                if key == "admin_state_up":
                    changes[key] = v.to_bool(value)
                elif key == "description":
                    changes[key] = v.string(255)(value)
                else:
                    raise exc.BadRequest(resource="agent",
                                         msg=f"Cannot update read-only attribute {key}")
            except v.Invalid as err:
                raise exc.InvalidInput(
                    error_message=f"Invalid input for {key}. Reason: {err}") from None
        updated = await run_in_threadpool(agents.update, ctx, request.path_params["id"],
                                          changes)
        return json_response({"agent": updated})

    async def delete_agent(request: Request) -> Response:
        ctx = await api.context(request)
        await run_in_threadpool(agents.delete, ctx, request.path_params["id"],
                                svc.placements)
        svc.core.notify()
        return Response(status_code=204)

    async def availability_zones(request: Request) -> Response:
        ctx = await api.context(request)
        if not svc.core.policy.check(ctx, "get_availability_zone", {}):
            return json_response({"availability_zones": []})  # as Neutron filters a list
        listed = await run_in_threadpool(agents.list_agents, Context.admin(), {})
        zones: dict[tuple[str, str], bool] = {}
        resources = {DHCP.agent_type: "network", L3.agent_type: "router"}
        for agent in listed:
            if agent["availability_zone"] and agent["agent_type"] in resources:
                key = (agent["availability_zone"], resources[agent["agent_type"]])
                up = agent["alive"] and agent["admin_state_up"]
                zones[key] = zones.get(key, False) or up
        return json_response({"availability_zones": [
            {"name": name, "resource": resource,
             "state": "available" if up else "unavailable"}
            for (name, resource), up in sorted(zones.items())]})

    # -- the channel ---------------------------------------------------------------------

    async def agent_caller(request: Request) -> Context:
        if api.keystone is not None and "x-auth-token" in request.headers:
            ctx = await api.keystone.context(request.method, request.url.path,
                                             request.headers)
        else:
            ctx = await api.basic_caller(request, api.channel_auth)
        svc.core.policy.enforce(ctx, "agent_channel", {})
        return ctx

    async def report(request: Request) -> Response:
        await agent_caller(request)
        body = await api.body(request)
        if not isinstance(body, dict) or not isinstance(body.get("agent"), dict):
            raise exc.BadRequest(resource="agent", msg="Unable to find 'agent' in request body")
        parsed = channel.parse_report(body["agent"])
        # Most reports only refresh a heartbeat: answered here, without a thread hop.
        answer = channel.report_fast(parsed)
        if answer is None:
            answer = await run_in_threadpool(channel.report, parsed)
        return json_response(answer)

    async def status(request: Request) -> Response:
        await agent_caller(request)
        body = await api.body(request)
        if not isinstance(body, dict):
            raise exc.BadRequest(resource="status", msg="Body must be an object")
        return json_response(await run_in_threadpool(channel.status, body))

    async def watch(request: Request) -> Response:
        await agent_caller(request)
        agent_type, host, cursor, timeout = watch_params(request)
        return json_response(await svc.watch.watch(agent_type, host, cursor, timeout))

    return [
        Route("/v2.0/agents", api.guarded(list_agents), methods=["GET"]),
        Route("/v2.0/agents", api.guarded(create_agent), methods=["POST"]),
        Route("/v2.0/agents/{id}", api.guarded(show_agent), methods=["GET"]),
        Route("/v2.0/agents/{id}", api.guarded(update_agent), methods=["PUT"]),
        Route("/v2.0/agents/{id}", api.guarded(delete_agent), methods=["DELETE"]),
        Route("/v2.0/availability_zones", api.guarded(availability_zones), methods=["GET"]),
        Route("/agent-channel/v1/report", api.guarded(report), methods=["POST"]),
        Route("/agent-channel/v1/status", api.guarded(status), methods=["POST"]),
        Route("/agent-channel/v1/watch", api.guarded(watch), methods=["GET"]),
    ]
