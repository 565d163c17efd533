"""One way to list any resource: filters, tag filters, scope, sorting and keyset paging.

A marker is looked up within the caller's scope, so another project's id can neither serve
as a marker nor reveal where it would sort (it answers 404 like any hidden resource).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    not_,
    or_,
    select,
)

from neutrino import exceptions as exc
from neutrino.db.models import TAGS
from neutrino.schema.request import Query
from neutrino.schema.resources import Resource


def tag_clauses(table: Table, tag_filters: dict[str, list[str]]) -> list[ColumnElement[bool]]:
    """WHERE clauses for Neutron's tags, tags-any, not-tags and not-tags-any filters."""

    def has(tags: Sequence[str]) -> ColumnElement[bool]:
        return exists().where(TAGS.c.resource_id == table.c.id, TAGS.c.tag.in_(tags))

    def has_all(tags: Sequence[str]) -> ColumnElement[bool]:
        distinct = sorted(set(tags))
        count = (select(func.count()).where(TAGS.c.resource_id == table.c.id,
                                            TAGS.c.tag.in_(distinct))
                 .scalar_subquery())
        return count == len(distinct)

    clauses: list[ColumnElement[bool]] = []
    for key, tags in tag_filters.items():
        if not tags:
            continue
        if key == "tags":
            clauses.append(has_all(tags))
        elif key == "tags-any":
            clauses.append(has(tags))
        elif key == "not-tags":
            clauses.append(not_(has_all(tags)))
        elif key == "not-tags-any":
            clauses.append(not_(has(tags)))
    return clauses


def filter_clauses(resource: Resource, table: Table, query: Query) -> list[ColumnElement[bool]]:
    """WHERE clauses for the attribute filters of `query`."""
    clauses: list[ColumnElement[bool]] = []
    for name, values in query.filters.items():
        column_name = resource.attr_map[name].column
        if column_name is None:
            continue
        column = table.c[column_name]
        non_null = [val for val in values if val is not None]
        clause = column.in_(non_null) if non_null else false()
        clauses.append(clause)
    clauses.extend(tag_clauses(table, query.tag_filters))
    return clauses


def _sort_columns(resource: Resource, table: Table, query: Query) -> list[tuple[Any, bool]]:
    sorts = [(table.c[resource.attr_map[name].column or name], asc)
             for name, asc in query.sorts]
    if not any(col.name == "id" for col, _ in sorts):
        sorts.append((table.c.id, sorts[-1][1] if sorts else True))
    if query.page_reverse:
        sorts = [(col, not asc) for col, asc in sorts]
    return sorts


def _order_by(sorts: list[tuple[Any, bool]]) -> list[ColumnElement[Any]]:
    """ORDER BY terms; NULLs sort last ascending and first descending on every backend."""
    terms: list[ColumnElement[Any]] = []
    for column, asc in sorts:
        if column.nullable:
            is_null = case((column.is_(None), 1), else_=0)
            terms.append(is_null.asc() if asc else is_null.desc())
        terms.append(column.asc() if asc else column.desc())
    return terms


def _equal(column: Any, value: Any) -> ColumnElement[bool]:
    if value is None:
        return column.is_(None)
    return column == bindparam(None, value, type_=column.type)


def _beyond(column: Any, value: Any, asc: bool) -> ColumnElement[bool]:
    """Rows whose `column` sorts strictly after `value` (NULLs last when ascending)."""
    if value is None:
        return false() if asc else column.is_not(None)
    bound = bindparam(None, value, type_=column.type)
    if asc:
        beyond = column > bound
        return or_(beyond, column.is_(None)) if column.nullable else beyond
    return column < bound


def _after_marker(sorts: list[tuple[Any, bool]], marker: Row[Any]) -> ColumnElement[bool]:
    """Rows strictly after `marker` in the sort order (a keyset condition)."""
    values = marker._mapping
    alternatives = []
    for i, (column, asc) in enumerate(sorts):
        equal = [_equal(col, values[col.name]) for col, _ in sorts[:i]]
        alternatives.append(and_(*equal, _beyond(column, values[column.name], asc)))
    return or_(*alternatives)


@dataclass
class Page:
    """One page of a list: its rows as dicts, in order, and whether more rows follow."""

    rows: list[dict[str, Any]]
    more: bool
    _id_select: Select[Any] | None = None

    @property
    def ids(self) -> list[str]:
        """The ids of the page's rows."""
        return [row["id"] for row in self.rows]

    def holds(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        """A clause true where `column` names a row of this page.

        An unpaged list selects its children through the list's own WHERE rather than
        thousands of bound ids, which every backend plans better and compiles faster.
        """
        if self._id_select is not None:
            return column.in_(self._id_select)
        return column.in_(self.ids)


def list_rows(conn: Connection, resource: Resource, table: Table, query: Query,
              where: Sequence[ColumnElement[bool]] = ()) -> Page:
    """One page of rows matching the query within `where`."""
    conditions = [*where, *filter_clauses(resource, table, query)]
    stmt: Select[Any] = select(table).where(*conditions)
    sorts = _sort_columns(resource, table, query)
    if query.marker is not None:
        marker = conn.execute(select(table).where(table.c.id == query.marker, *where)).first()
        if marker is None:
            raise exc.not_found(resource.name, query.marker)  # as Neutron's marker lookup
        stmt = stmt.where(_after_marker(sorts, marker))
    if query.sorts or query.limit is not None or query.marker is not None:
        stmt = stmt.order_by(*_order_by(sorts))
    if query.limit is not None:
        stmt = stmt.limit(query.limit + 1)
    result = conn.execute(stmt)
    keys = list(result.keys())
    # Plain dicts: reading them is several times cheaper than Row lookups when rendering.
    rows = [dict(zip(keys, row, strict=True)) for row in result.all()]
    more = query.limit is not None and len(rows) > query.limit
    if more:
        rows = rows[: query.limit]
    if query.page_reverse:
        rows.reverse()
    unpaged = query.limit is None and query.marker is None
    return Page(rows, more, select(table.c.id).where(*conditions) if unpaged else None)
