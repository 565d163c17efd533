"""Turning request bodies and query strings into validated, typed values.

Nothing here touches the database: a body becomes a dict of converted values with defaults
applied, a query string becomes a `Query`. Errors are `BadRequest`s that name the attribute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from neutrino import exceptions as exc
from neutrino.schema import validators as v
from neutrino.schema.resources import MISSING, Resource

# Every backend stores integers in 64 bits; a limit above this means "all of them".
MAX_INT = 2**63 - 1
MAX_LIMIT = 2**31 - 1
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def _bad(resource: Resource, msg: str) -> exc.BadRequest:
    return exc.BadRequest(resource=resource.name, msg=msg)


def _shape(msg: str) -> exc.HTTPBadRequest:
    """A body of the wrong shape, in Neutron's words (clients and tempest match them)."""
    return exc.HTTPBadRequest(msg=msg)


def _invalid(attr: str, reason: str) -> exc.InvalidInput:
    return exc.InvalidInput(error_message=f"Invalid input for {attr}. Reason: {reason}")


def unwrap(resource: Resource, body: Any, *, bulk: bool) -> list[dict[str, Any]]:
    """Take the items out of a `{"network": {...}}` or (bulk) `{"networks": [...]}` body."""
    if not isinstance(body, dict):
        raise _shape("Resource body required")
    if bulk and resource.collection in body:
        items = body[resource.collection]
        if not isinstance(items, list) or not items:
            raise _bad(resource, f"Resources required: '{resource.collection}' must be a "
                                 "non-empty list")
        # Neutron takes a bulk item bare or wrapped as `{"network": {...}}` (tempest wraps).
        items = [item[resource.name] if isinstance(item, dict) and list(item) == [resource.name]
                 else item for item in items]
    elif resource.name in body:
        items = [body[resource.name]]
    else:
        raise _shape(f"Unable to find '{resource.name}' in request body")
    for item in items:
        if not isinstance(item, dict):
            raise _bad(resource, f"'{resource.name}' must be an object")
    return list(items)


def parse_item(resource: Resource, item: dict[str, Any], *, create: bool) -> dict[str, Any]:
    """Validate one resource body for a POST (create) or PUT; apply POST defaults.

    Attributes with a computed default that the body leaves out stay absent: the service
    computes them. `tenant_id` folds into `project_id`.
    """
    unknown = sorted(k for k in item if k not in resource.attr_map)
    if unknown:
        raise _shape(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
    out: dict[str, Any] = {}
    for key, value in item.items():
        attr = resource.attr_map[key]
        allowed = attr.post if create else attr.put
        if not allowed or attr.validator is None:
            raise _shape(f"Attribute '{key}' not allowed in POST" if create
                         else f"Cannot update read-only attribute {key}")
        try:
            out[key] = attr.validator(value)
        except v.Invalid as err:
            raise _invalid(key, str(err)) from None
    if "tenant_id" in out:
        tenant = out.pop("tenant_id")
        if out.setdefault("project_id", tenant) != tenant:
            raise _bad(resource, "'project_id' and 'tenant_id' do not match")
    if create:
        for attr in resource.attrs:
            if not attr.post or attr.name in out or attr.name == "tenant_id":
                continue
            if attr.required:
                raise _shape(f"Failed to parse request. Required attribute "
                             f"'{attr.name}' not specified")
            if attr.default is not MISSING:
                default = attr.default
                out[attr.name] = list(default) if isinstance(default, list) else (
                    dict(default) if isinstance(default, dict) else default)
    return out


@dataclass
class Query:
    """A list request: filters, field selection, sorting and paging."""

    filters: dict[str, list[Any]] = field(default_factory=dict)
    tag_filters: dict[str, list[str]] = field(default_factory=dict)
    extra_filters: dict[str, list[str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (attr, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False


def _filter_value(resource: Resource, name: str, raw: str) -> Any:
    attr = resource.attr_map[name]
    validator = attr.validator
    if validator is None:
        return raw
    kind = validator.schema.get("type")
    try:
        if kind == "boolean":
            return v.to_bool(raw)
        if kind == "integer":
            number = int(raw)
            if not -MAX_INT - 1 <= number <= MAX_INT:
                raise v.Invalid(f"'{raw}' is out of range")
            return number
        if "enum" in validator.schema:
            for choice in validator.schema["enum"]:
                if str(choice) == raw:
                    return choice
            raise v.Invalid(f"'{raw}' is not in {validator.schema['enum']}")
    except (v.Invalid, ValueError):
        raise _invalid(name, f"'{raw}' is not a valid value for filtering") from None
    return raw


def parse_query(resource: Resource, params: Iterable[tuple[str, str]],
                extra_filters: Iterable[str] = (), max_limit: int = -1) -> Query:
    """Parse a list request's query string (repeated keys are ORed, different keys ANDed)."""
    query = Query()
    sort_keys: list[str] = []
    sort_dirs: list[str] = []
    extra = set(extra_filters)
    for key, raw in params:
        if key == "fields":
            query.fields.extend(f for f in raw.split(",") if f)
        elif key == "sort_key":
            sort_keys.append(raw)
        elif key == "sort_dir":
            sort_dirs.append(raw)
        elif key == "limit":
            try:
                query.limit = int(raw)
            except ValueError:
                raise _bad(resource, f"Limit must be an integer, not '{raw}'") from None
            if query.limit < 0:
                raise _bad(resource, f"Limit must be an integer 0 or greater and not '{raw}'")
        elif key == "marker":
            query.marker = raw
        elif key == "page_reverse":
            try:
                query.page_reverse = v.to_bool(raw)
            except v.Invalid:
                raise _invalid("page_reverse", str(raw)) from None
        elif key in TAG_FILTERS and resource.tags:
            query.tag_filters.setdefault(key, []).extend(t for t in raw.split(",") if t)
        elif key in extra:
            query.extra_filters.setdefault(key, []).append(raw)
        elif key in resource.attr_map and resource.attr_map[key].filter:
            name = "project_id" if key == "tenant_id" else key
            query.filters.setdefault(name, []).append(_filter_value(resource, key, raw))
        else:
            raise _bad(resource, f"{key} is invalid attribute for filtering")
    if len(sort_keys) != len(sort_dirs):
        raise _bad(resource, "The number of sort_keys and sort_dirs must be same")
    for key, direction in zip(sort_keys, sort_dirs, strict=True):
        attr = resource.attr_map.get(key)
        if attr is None or attr.column is None or not attr.sort:
            raise _bad(resource, f"{key} is an invalid attribute for sort_keys")
        if direction not in ("asc", "desc"):
            raise _bad(resource, f"{direction} is an invalid value for sort_dir, valid values "
                                 "are 'asc' and 'desc'")
        query.sorts.append(("project_id" if key == "tenant_id" else key, direction == "asc"))
    if query.limit == 0:
        query.limit = None
    elif query.limit is not None:
        query.limit = min(query.limit, MAX_LIMIT)
    if max_limit > 0 and (query.limit is None or query.limit > max_limit):
        query.limit = max_limit
    return query


def refuse_hidden(resource: Resource, query: Query, hidden: frozenset[str]) -> None:
    """Refuse filters and sort keys on attributes the caller may not read.

    Filtering by an attribute one cannot see tells its value all the same (a shared
    network's segmentation id, one's port's host). Neutron passes such filters to the
    database; ignoring them would widen what a script acts on. They are answered as an
    attribute that does not exist is, so the answer says nothing of the attribute either.
    """
    for name in query.filters:
        if name in hidden:
            raise _bad(resource, f"{name} is invalid attribute for filtering")
    for name, _ascending in query.sorts:
        if name in hidden:
            raise _bad(resource, f"{name} is an invalid attribute for sort_keys")


def revision_if_match(header: str | None) -> int | None:
    """The revision an `If-Match` header constrains a write to (`revision_number=N` among
    its entity tags, quoted or not), or None. Other entity tags are not ours: ignored."""
    revision = None
    for tag in (header or "").split(","):
        tag = tag.strip().removeprefix("W/").strip('"')
        if not tag.startswith("revision_number="):
            continue
        if revision is not None:
            raise exc.BadRequest(resource="if-match",
                                 msg="Multiple revision_number etags are not supported.")
        try:
            revision = int(tag.removeprefix("revision_number="), 10)
        except ValueError:
            raise exc.BadRequest(resource="if-match", msg="Revision number etag must be in "
                                 "the format of revision_number=<int>") from None
    return revision
