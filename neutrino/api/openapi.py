"""The OpenAPI document, derived from the resource definitions and their validators."""

from __future__ import annotations

from typing import Any

from neutrino.schema.resources import ALL_RESOURCES, RESOURCES, Attr, Resource

ERROR_CODES = {"400": "Bad request", "401": "Not authenticated", "403": "Forbidden",
               "404": "Not found", "409": "Conflict", "503": "Service unavailable"}


def _attr_schema(attr: Attr) -> dict[str, Any]:
    schema: dict[str, Any] = dict(attr.validator.schema) if attr.validator else {}
    if attr.validator is not None and attr.validator.nullable:
        schema = {"anyOf": [schema, {"type": "null"}]} if schema else {}
    if attr.doc:
        schema["description"] = attr.doc
    return schema


def _body_schema(resource: Resource, create: bool) -> dict[str, Any]:
    attrs = [a for a in resource.attrs if (a.post if create else a.put) and a.validator]
    inner: dict[str, Any] = {
        "type": "object",
        "properties": {a.name: _attr_schema(a) for a in attrs},
        "additionalProperties": False,
    }
    required = [a.name for a in attrs if create and a.required]
    if required:
        inner["required"] = required
    return {"type": "object", "required": [resource.name],
            "properties": {resource.name: inner}, "additionalProperties": False}


def _responses(ok: str, description: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": description}}
    if schema is not None:
        responses[ok]["content"] = {"application/json": {"schema": schema}}
    for code, text in ERROR_CODES.items():
        responses[code] = {"description": text,
                           "content": {"application/json": {
                               "schema": {"$ref": "#/components/schemas/NeutronError"}}}}
    return responses


def _list_params(resource: Resource) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": "fields", "in": "query", "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "marker", "in": "query", "schema": {"type": "string"}},
        {"name": "page_reverse", "in": "query", "schema": {"type": "boolean"}},
    ]
    for attr in resource.attrs:
        if attr.filter and attr.column is not None:
            schema = {"type": "string"}
            params.append({"name": attr.name, "in": "query", "schema": schema})
    return params


def _resource_paths(resource: Resource) -> dict[str, Any]:
    coll, name = resource.path, resource.name
    item_ref = {"type": "object", "properties": {name: {"type": "object"}}}
    list_ref = {"type": "object", "properties": {resource.collection: {"type": "array"}}}
    id_param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    tag_param = [*id_param,
                 {"name": "tag", "in": "path", "required": True, "schema": {"type": "string"}}]
    tags_body = {"type": "object", "required": ["tags"], "properties": {
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}}}}
    paths: dict[str, Any] = {
        f"/v2.0/{coll}": {
            "get": {"operationId": f"list_{resource.collection}",
                    "parameters": _list_params(resource),
                    "responses": _responses("200", f"The {coll}", list_ref)},
            "post": {"operationId": f"create_{name}",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": _body_schema(resource, create=True)}}},
                     "responses": _responses("201", f"The new {name}", item_ref)},
        },
        f"/v2.0/{coll}/{{id}}": {
            "parameters": id_param,
            "get": {"operationId": f"show_{name}",
                    "responses": _responses("200", f"The {name}", item_ref)},
            "put": {"operationId": f"update_{name}",
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": _body_schema(resource, create=False)}}},
                    "responses": _responses("200", f"The updated {name}", item_ref)},
            "delete": {"operationId": f"delete_{name}",
                       "responses": _responses("204", "Deleted", None)},
        },
        f"/v2.0/{coll}/{{id}}/tags": {
            "parameters": id_param,
            "get": {"operationId": f"list_{name}_tags",
                    "responses": _responses("200", "The tags", tags_body)},
            "put": {"operationId": f"replace_{name}_tags",
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": tags_body}}},
                    "responses": _responses("200", "The tags", tags_body)},
            "delete": {"operationId": f"clear_{name}_tags",
                       "responses": _responses("204", "Cleared", None)},
        },
        f"/v2.0/{coll}/{{id}}/tags/{{tag}}": {
            "parameters": tag_param,
            "get": {"operationId": f"check_{name}_tag",
                    "responses": _responses("204", "The tag is set", None)},
            "put": {"operationId": f"add_{name}_tag",
                    "responses": _responses("201", "Added", None)},
            "delete": {"operationId": f"remove_{name}_tag",
                       "responses": _responses("204", "Removed", None)},
        },
    }
    if not resource.updatable:
        del paths[f"/v2.0/{coll}/{{id}}"]["put"]
    if not resource.tags:
        del paths[f"/v2.0/{coll}/{{id}}/tags"]
        del paths[f"/v2.0/{coll}/{{id}}/tags/{{tag}}"]
    return paths


def _agent_paths() -> dict[str, Any]:
    """The agent API, the DHCP scheduler and availability zones."""
    agent_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    agent_body = {"type": "object", "required": ["agent"], "properties": {"agent": {
        "type": "object", "additionalProperties": False,
        "properties": {"admin_state_up": {"type": "boolean"},
                       "description": {"type": "string", "maxLength": 255}}}}}
    return {
        "/v2.0/agents": {"get": {"operationId": "list_agents",
                                 "responses": _responses("200", "Agents", None)}},
        "/v2.0/agents/{id}": {
            "parameters": agent_id,
            "get": {"operationId": "show_agent", "responses": _responses("200", "An agent",
                                                                         None)},
            "put": {"operationId": "update_agent", "requestBody": {
                "required": True, "content": {"application/json": {"schema": agent_body}}},
                "responses": _responses("200", "The agent", None)},
            "delete": {"operationId": "delete_agent",
                       "responses": _responses("204", "Deleted", None)},
        },
        "/v2.0/availability_zones": {"get": {
            "operationId": "list_availability_zones",
            "responses": _responses("200", "Availability zones", None)}},
    }


def _subcollection_paths() -> dict[str, Any]:
    """Every sub-collection (`/v2.0/agents/{id}/l3-routers`), from the resource table."""
    paths: dict[str, Any] = {}
    for resource in ALL_RESOURCES.values():
        for sub in resource.subcollections:
            base = f"/v2.0/{resource.path}/{{id}}/{sub.name}"
            owner_id = [{"name": "id", "in": "path", "required": True,
                         "schema": {"type": "string"}}]
            stem = sub.handler
            paths[base] = {"parameters": owner_id, "get": {
                "operationId": f"list_{stem}_of_{resource.name}",
                "responses": _responses("200", sub.doc or sub.name, None)}}
            if sub.key is None:
                continue
            body = {"type": "object", "required": [sub.key],
                    "properties": {sub.key: {"type": "string", "format": "uuid"}}}
            paths[base]["post"] = {
                "operationId": f"add_{stem}_to_{resource.name}",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": body}}},
                "responses": _responses("201", "Added (body: null)", None)}
            paths[f"{base}/{{target}}"] = {
                "parameters": [*owner_id, {"name": "target", "in": "path", "required": True,
                                           "schema": {"type": "string"}}],
                "delete": {"operationId": f"remove_{stem}_from_{resource.name}",
                           "responses": _responses("204", "Removed", None)}}
    return paths


def _action_paths(resource: Resource) -> dict[str, Any]:
    """Member actions (`PUT /v2.0/routers/{id}/add_router_interface`): bare bodies."""
    return {f"/v2.0/{resource.path}/{{id}}/{action.name}": {
        "parameters": [{"name": "id", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        action.method.lower(): {
            "operationId": f"{action.handler}",
            "description": action.doc,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "object"}}}},
            "responses": _responses("200", action.doc or action.name, None)}}
        for action in resource.actions}


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.0 document."""
    paths: dict[str, Any] = {
        "/": {"get": {"operationId": "list_versions",
                      "responses": {"200": {"description": "API versions"}}}},
        "/v2.0/extensions": {"get": {"operationId": "list_extensions",
                                     "responses": _responses("200", "Extensions", None)}},
        "/v2.0/extensions/{alias}": {"get": {
            "operationId": "show_extension",
            "parameters": [{"name": "alias", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": _responses("200", "One extension", None)}},
    }
    for resource in RESOURCES.values():
        paths.update(_resource_paths(resource))
        paths.update(_action_paths(resource))
    paths.update(_agent_paths())
    paths.update(_subcollection_paths())
    return {
        "openapi": "3.0.3",
        "info": {"title": "neutrino: OpenStack Networking API v2.0", "version": "2.0"},
        "paths": paths,
        "components": {"schemas": {"NeutronError": {
            "type": "object", "required": ["NeutronError"],
            "properties": {"NeutronError": {
                "type": "object", "required": ["type", "message", "detail"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"},
                               "detail": {"type": "string"}}}}}}},
    }
