"""The HTTP API: routes generated from the resource table, handlers that parse, call a
service in a worker thread, and render.

Every error leaves as a Neutron `NeutronError` body; anything unexpected is logged with its
traceback and answered with a generic 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import urlencode

import orjson
from oslo_config import cfg
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from neutrino import exceptions as exc
from neutrino.api import auth, extensions, middleware, openapi
from neutrino.api.agents_api import agent_routes
from neutrino.api.ip_availability_api import ip_availability_routes
from neutrino.api.quotas_api import quota_routes
from neutrino.api.responses import GENERIC_500, error_response, json_response, select_fields
from neutrino.api.service_providers_api import service_provider_routes
from neutrino.api.subresources import all_subcollection_routes
from neutrino.db.api import RevisionConstraint, constrained
from neutrino.schema.policy import Context
from neutrino.schema.request import (
    parse_item,
    parse_query,
    refuse_hidden,
    revision_if_match,
    unwrap,
)
from neutrino.schema.resources import CORE_RESOURCES, RESOURCES, Resource
from neutrino.schema.validators import Invalid, list_of_strings, nesting
from neutrino.services import Services, changes
from neutrino.services.tags import ResourceService

LOG = logging.getLogger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
CHANGELOG_KEEP = 200_000
MAX_BODY_DEPTH = 32
# List filters a collection takes besides its attributes.
EXTRA_FILTERS = {"ports": ("fixed_ips", "security_groups"), "subnets": ("shared",)}


class API:
    """The routes and handlers of one server."""

    def __init__(self, conf: cfg.ConfigOpts, services: Services) -> None:
        self.conf = conf
        self.services = services
        # Agents may always log in through this file, whatever auth_strategy says.
        self.channel_users = auth.UserFile(conf.http_basic_auth_user_file)
        self.channel_auth = auth.Authenticator.from_conf(conf, self.channel_users)
        self.users = self.channel_auth if conf.auth_strategy == "http_basic" else None
        self.keystone = auth.KeystoneAuth(conf) if conf.auth_strategy == "keystone" else None
        self.by_collection: dict[str, ResourceService] = {
            "networks": services.networks, "subnets": services.subnets, "ports": services.ports,
            "subnetpools": services.subnetpools, "address_scopes": services.address_scopes,
            "rbac_policies": services.rbac_policies,
            "routers": services.routers, "floatingips": services.floatingips,
            "security_groups": services.security_groups,
            "security_group_rules": services.security_group_rules,
            "address_groups": services.address_groups,
        }

    # -- plumbing ----------------------------------------------------------------------

    @staticmethod
    def resource(collection: str) -> Resource:
        """The definition of a collection."""
        return RESOURCES[collection]

    async def context(self, request: Request) -> Context:
        """Who is calling (a password is verified off the event loop)."""
        if self.keystone is not None:
            return await self.keystone.context(request.method, request.url.path,
                                               request.headers)
        if self.users is None:
            return auth.context_from_headers(request.headers)
        return await self.basic_caller(request, self.users)

    @staticmethod
    async def basic_caller(request: Request, authenticator: auth.Authenticator) -> Context:
        """The HTTP Basic caller of a request, throttled by user and by client address."""
        username, password = auth.basic_credentials(request.headers.get("authorization"))
        source = request.client.host if request.client is not None else "unknown"
        return await authenticator.authenticate(username, password, source)

    async def body(self, request: Request) -> Any:
        """The request's JSON body."""
        raw = await request.body()
        if not raw:
            raise exc.BadRequest(resource="request", msg="Resource body required")
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise exc.BadRequest(resource="request", msg="Malformed request body") from None
        # No API body nests deeply; a hostile one would exhaust the stack of whatever
        # walks it later (rendering an error message, the JSON column). Counting brackets
        # spares the walk for almost every body.
        if raw.count(b"{") + raw.count(b"[") > MAX_BODY_DEPTH and \
                nesting(document, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
            raise exc.BadRequest(resource="request",
                                 msg=f"Request body nests deeper than {MAX_BODY_DEPTH} levels")
        return document

    def hidden(self, ctx: Context, resource: Resource) -> frozenset[str]:
        """Attributes the caller may not read."""
        if ctx.is_admin:
            return frozenset()
        target = {"project_id": ctx.project_id, "tenant_id": ctx.project_id}
        return self.services.core.policy.hidden_attributes(ctx, resource.name, target)

    @staticmethod
    def if_match(request: Request, service: ResourceService) -> AbstractContextManager[None]:
        """The request's `If-Match: revision_number=N`, as a constraint on its write."""
        revision = revision_if_match(request.headers.get("if-match"))
        if revision is None:
            return contextlib.nullcontext()
        return constrained(RevisionConstraint(service.table, request.path_params["id"],
                                              revision))

    @staticmethod
    def guarded(handler: Handler) -> Handler:
        """Turn errors into NeutronError responses."""

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except exc.NeutronException as error:
                if error.status >= 500:
                    LOG.warning("%s %s: %s", request.method, request.url.path, error.msg)
                else:  # as Neutron logs them: an operator finds why a user was refused
                    LOG.info("%s %s failed (client error): %s", request.method,
                             request.url.path, error.msg)
                return error_response(error)
            except (OperationalError, InterfaceError) as error:
                # A lost or refused database connection: the caller may retry.
                LOG.warning("%s %s: database unavailable: %s", request.method,
                            request.url.path, error.orig)
                return error_response(exc.DatabaseUnavailable())
            except Exception:
                LOG.exception("Unexpected error in %s %s", request.method, request.url.path)
                return json_response({"NeutronError": {
                    "type": "HTTPInternalServerError", "message": GENERIC_500, "detail": ""}},
                    500)

        return run

    # -- discovery ---------------------------------------------------------------------

    @staticmethod
    async def not_found(request: Request) -> Response:
        """Neutron's 404 for a path it does not route."""
        return await _http_error(request, HTTPException(status_code=404))

    async def versions(self, request: Request) -> Response:
        """`GET /`: the version document clients discover the API with."""
        base = str(request.base_url).rstrip("/")
        return json_response({"versions": [{
            "id": "v2.0", "status": "CURRENT",
            "links": [{"rel": "self", "href": f"{base}/v2.0/"}]}]})

    async def resources(self, request: Request) -> Response:
        """`GET /v2.0/`: the core collections, as Neutron lists them."""
        await self.context(request)
        base = str(request.base_url).rstrip("/")
        return json_response({
            "resources": [{"name": r.name, "collection": r.collection,
                           "links": [{"rel": "self", "href": f"{base}/v2.0/{r.path}"}]}
                          for r in CORE_RESOURCES],
            "version": {"id": "v2.0", "status": "CURRENT",
                        "links": [{"rel": "self", "href": f"{base}/v2.0/"}]},
        })

    async def list_extensions(self, request: Request) -> Response:
        """`GET /v2.0/extensions`."""
        await self.context(request)
        return json_response({"extensions": extensions.all_extensions()})

    async def show_extension(self, request: Request) -> Response:
        """`GET /v2.0/extensions/{alias}`."""
        await self.context(request)
        alias = request.path_params["alias"]
        record = extensions.extension(alias)
        if record is None:
            raise exc.ExtensionNotFound(alias=alias)
        return json_response({"extension": record})

    async def openapi(self, request: Request) -> Response:
        """`GET /openapi.json`."""
        return json_response(openapi.document())

    # -- resources ---------------------------------------------------------------------

    def collection_routes(self, resource: Resource) -> list[Route]:
        """The routes of one resource and its tags."""
        service = self.by_collection[resource.collection]
        extra = EXTRA_FILTERS.get(resource.collection, ())
        base = f"/v2.0/{resource.path}"

        async def list_(request: Request) -> Response:
            ctx = await self.context(request)
            query = parse_query(resource, request.query_params.multi_items(), extra,
                                self.conf.pagination_max_limit)
            hidden = self.hidden(ctx, resource)
            refuse_hidden(resource, query, hidden)
            items, _more = await run_in_threadpool(service.list_page, ctx, query)
            body: dict[str, Any] = {resource.collection: [
                select_fields(item, query.fields, hidden) for item in items]}
            if query.limit is not None:
                body[f"{resource.collection}_links"] = self.links(request, items, query.limit,
                                                                  query.page_reverse)
            return json_response(body)

        async def create(request: Request) -> Response:
            ctx = await self.context(request)
            raw = await self.body(request)
            bulk = isinstance(raw, dict) and resource.collection in raw
            items = [parse_item(resource, item, create=True)
                     for item in unwrap(resource, raw, bulk=True)]
            created = await run_in_threadpool(service.create, ctx, items)
            hidden = self.hidden(ctx, resource)
            if bulk:
                return json_response({resource.collection: [
                    select_fields(i, [], hidden) for i in created]}, 201)
            return json_response({resource.name: select_fields(created[0], [], hidden)}, 201)

        async def show(request: Request) -> Response:
            ctx = await self.context(request)
            fields = [f for raw in request.query_params.getlist("fields")
                      for f in raw.split(",") if f]
            item = await run_in_threadpool(service.get, ctx, request.path_params["id"])
            return json_response({resource.name: select_fields(item, fields,
                                                               self.hidden(ctx, resource))})

        async def update(request: Request) -> Response:
            ctx = await self.context(request)
            item = unwrap(resource, await self.body(request), bulk=False)[0]
            changes = parse_item(resource, item, create=False)
            if not resource.updatable:
                raise exc.HTTPMethodNotAllowed()
            with self.if_match(request, service):
                updated = await run_in_threadpool(service.update, ctx,
                                                  request.path_params["id"], changes)
            return json_response({resource.name: select_fields(updated, [],
                                                               self.hidden(ctx, resource))})

        async def delete(request: Request) -> Response:
            ctx = await self.context(request)
            with self.if_match(request, service):
                await run_in_threadpool(service.delete, ctx, request.path_params["id"])
            return Response(status_code=204)

        return [
            *self.action_routes(resource),
            Route(base, self.guarded(list_), methods=["GET"]),
            Route(base, self.guarded(create), methods=["POST"]),
            Route(base + "/{id}", self.guarded(show), methods=["GET"]),
            Route(base + "/{id}", self.guarded(update), methods=["PUT"]),
            Route(base + "/{id}", self.guarded(delete), methods=["DELETE"]),
            *(self.tag_routes(base, service) if resource.tags else []),
        ]

    def action_routes(self, resource: Resource) -> list[Route]:
        """Member actions (`PUT /v2.0/routers/{id}/add_router_interface`): the body goes to
        the provider as it came; a `{"<resource>": {...}}` answer is filtered like a show."""
        routes = []
        for action in resource.actions:
            provider = self.services.actions[(resource.collection, action.name)]
            method = getattr(provider, action.handler)

            async def run(request: Request, method: Any = method) -> Response:
                ctx = await self.context(request)
                body = await self.body(request)
                result = await run_in_threadpool(method, ctx, request.path_params["id"], body)
                if isinstance(result, dict) and isinstance(result.get(resource.name), dict):
                    result = {resource.name: select_fields(result[resource.name], [],
                                                           self.hidden(ctx, resource))}
                return json_response(result)

            routes.append(Route(f"/v2.0/{resource.path}/{{id}}/{action.name}",
                                self.guarded(run), methods=[action.method]))
        return routes

    def tag_routes(self, base: str, owner: ResourceService) -> list[Route]:
        """The tags API of one collection."""
        tags = self.services.tags
        tag_list = list_of_strings(255)

        async def get_all(request: Request) -> Response:
            ctx = await self.context(request)
            found = await run_in_threadpool(tags.get_all, ctx, owner, request.path_params["id"])
            return json_response({"tags": found})

        async def tags_body(request: Request) -> list[str]:
            body = await self.body(request)
            if not isinstance(body, dict) or "tags" not in body:
                raise exc.BadRequest(resource="tags", msg="Body must contain 'tags'")
            try:
                return tag_list(body["tags"])
            except Invalid as err:
                raise exc.InvalidInput(error_message=f"Invalid input for tags. Reason: {err}") \
                    from None

        async def replace(request: Request) -> Response:
            ctx = await self.context(request)
            wanted = await tags_body(request)
            found = await run_in_threadpool(tags.replace, ctx, owner, request.path_params["id"],
                                            wanted)
            return json_response({"tags": found})

        async def create(request: Request) -> Response:
            ctx = await self.context(request)
            wanted = await tags_body(request)
            found = await run_in_threadpool(tags.add_many, ctx, owner,
                                            request.path_params["id"], wanted)
            return json_response({"tags": found}, 201)

        async def clear(request: Request) -> Response:
            ctx = await self.context(request)
            await run_in_threadpool(tags.clear, ctx, owner, request.path_params["id"])
            return Response(status_code=204)

        def one_tag(request: Request) -> str:
            tag = request.path_params["tag"]
            if not tag or len(tag) > 255:
                raise exc.InvalidInput(error_message=f"Invalid input for tag. Reason: '{tag}' "
                                                     "must be 1 to 255 characters")
            return tag

        async def check(request: Request) -> Response:
            ctx = await self.context(request)
            await run_in_threadpool(tags.has, ctx, owner, request.path_params["id"],
                                    one_tag(request))
            return Response(status_code=204)

        async def add(request: Request) -> Response:
            ctx = await self.context(request)
            await run_in_threadpool(tags.add, ctx, owner, request.path_params["id"],
                                    one_tag(request))
            return Response(status_code=201)

        async def remove(request: Request) -> Response:
            ctx = await self.context(request)
            await run_in_threadpool(tags.remove, ctx, owner, request.path_params["id"],
                                    one_tag(request))
            return Response(status_code=204)

        return [
            Route(base + "/{id}/tags", self.guarded(get_all), methods=["GET"]),
            Route(base + "/{id}/tags", self.guarded(replace), methods=["PUT"]),
            Route(base + "/{id}/tags", self.guarded(create), methods=["POST"]),
            Route(base + "/{id}/tags", self.guarded(clear), methods=["DELETE"]),
            Route(base + "/{id}/tags/{tag}", self.guarded(check), methods=["GET"]),
            Route(base + "/{id}/tags/{tag}", self.guarded(add), methods=["PUT"]),
            Route(base + "/{id}/tags/{tag}", self.guarded(remove), methods=["DELETE"]),
        ]

    @staticmethod
    def links(request: Request, items: list[dict[str, Any]], limit: int,
              page_reverse: bool) -> list[dict[str, str]]:
        """Neutron's paging links: `next` unless a short page going forward ends the list,
        `previous` unless a short page going backward began it (a first page has one)."""
        kept = [(k, val) for k, val in request.query_params.multi_items()
                if k not in ("marker", "page_reverse")]
        url = str(request.url.replace(query=""))
        short = len(items) < limit
        links = []
        if not (short and not page_reverse):
            marker = [("marker", items[-1]["id"])] if items else []
            links.append({"rel": "next", "href": f"{url}?{urlencode([*kept, *marker])}"})
        if not (short and page_reverse):
            marker = [("marker", items[0]["id"])] if items else []
            query = urlencode([*kept, *marker, ("page_reverse", "True")])
            links.append({"rel": "previous", "href": f"{url}?{query}"})
        return links

    def routes(self) -> list[Route]:
        """Every route of the API."""
        routes = [
            Route("/", self.guarded(self.versions), methods=["GET"]),
            # Neutron has no `/v2.0` without the slash: a 404, not a redirect to it.
            Route("/v2.0", self.not_found),
            Route("/v2.0/", self.guarded(self.resources), methods=["GET"]),
            Route("/v2.0/extensions", self.guarded(self.list_extensions), methods=["GET"]),
            Route("/v2.0/extensions/{alias}", self.guarded(self.show_extension),
                  methods=["GET"]),
            Route("/openapi.json", self.guarded(self.openapi), methods=["GET"]),
        ]
        routes.extend(agent_routes(self))
        routes.extend(quota_routes(self))
        routes.extend(ip_availability_routes(self))
        routes.extend(service_provider_routes(self))
        routes.extend(all_subcollection_routes(self))
        for resource in RESOURCES.values():
            routes.extend(self.collection_routes(resource))
        return routes


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own 404 and 405, in Neutron's shape."""
    status = getattr(error, "status_code", 500)
    kind = {404: "HTTPNotFound", 405: "HTTPMethodNotAllowed"}.get(status, "HTTPError")
    message = {404: "The resource could not be found.",
               405: "The method is not allowed for this resource."}.get(status, GENERIC_500)
    return json_response({"NeutronError": {"type": kind, "message": message, "detail": ""}},
                         status)


async def _periodic(conf: cfg.ConfigOpts, services: Services) -> None:
    """Failover and auto-scheduling every failover_check_interval; log pruning now and then.

    A new DHCP agent wakes it early (once, however many register at the same time).
    """
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    services.channel.wake_scheduler = lambda: loop.call_soon_threadsafe(wake.set)
    passes = 0
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), conf.failover_check_interval)
        wake.clear()
        passes += 1
        try:
            await run_in_threadpool(services.periodic.run, time.time())
            if passes % 600 == 0:
                await run_in_threadpool(services.core.db.write,
                                        lambda conn: changes.prune(conn, CHANGELOG_KEEP))
        except Exception:  # the next pass tries again
            LOG.exception("Periodic scheduling pass failed")


def create_app(conf: cfg.ConfigOpts, services: Services) -> Starlette:
    """The ASGI application of a server, with its background tasks."""
    api = API(conf, services)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        services.feed.start(asyncio.get_running_loop())
        services.agents.start_flusher()
        tasks = [asyncio.create_task(services.feed.poll_forever()),
                 asyncio.create_task(_periodic(conf, services))]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await run_in_threadpool(services.agents.stop)

    middleware.install_log_records()
    app = Starlette(routes=api.routes(), exception_handlers={HTTPException: _http_error},
                    middleware=[Middleware(middleware.RequestMiddleware)],
                    lifespan=lifespan)
    app.state.api = api
    return app
