"""One query interface for searching the index, run in SQL on SQLite (FTS5) and PostgreSQL (pg_trgm, full text).

A search's text is split into terms; a resource matches when every term occurs, ignoring case, in its name,
display name, description or tags (``match=exact``: the name equals the text). Matches are ranked: the exact name,
then names starting with the text, then names containing it, then by relevance (SQLite's bm25 over the FTS5 columns,
name first; PostgreSQL's ts_rank of the English words), then by name. Filters (kinds, catalogs, categories, tags,
platforms) and paging are in the same statement, so a search reads only the page it answers with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.engine import Dialect

from catalog.errors import InvalidRequest
from catalog.models import (
    Catalog,
    Category,
    Platform,
    Resource,
    ResourceVersion,
    Tag,
    resource_categories,
    resource_platforms,
    resource_search,
    resource_tags,
)

SORTS = ("relevance", "name", "updated")
MATCHES = ("contains", "exact")
MAX_OFFSET = 2**62  # any more is past every result; a database integer must hold it
_TRIGRAM = 3  # SQLite's trigram index finds terms of 3 characters or more; shorter ones are matched by LIKE
_FTS = table("resource_fts", column("rowid"))
_FTS_WEIGHTS = (10.0, 5.0, 3.0, 1.0)  # name, display name, tags, description (the FTS5 column order)


@dataclass
class SearchQuery:
    """A search, with Tekton Hub's /v1/query parameters plus paging and sort."""

    text: str = ""
    kinds: tuple[str, ...] = ()  # canonical kinds ("Task")
    catalogs: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    match: str = "contains"
    sort: str = "relevance"
    limit: int = 1000
    offset: int = 0
    # The version each result shows: the highest live one, or the highest release (Artifact Hub's default).
    release: bool = False
    # Artifact Hub's filters: official catalogs only, no resource whose shown version is deprecated, any of these
    # (catalog, kind or None) repositories, only these catalogs (None: any).
    official: bool = False
    hide_deprecated: bool = False
    repositories: tuple[tuple[str, str | None], ...] = ()
    catalog_ids: tuple[int, ...] | None = None

    def check(self) -> None:
        if self.match not in MATCHES:
            raise InvalidRequest(f"match must be 'contains' or 'exact', not {self.match!r}")
        if self.sort not in SORTS:
            raise InvalidRequest(f"sort must be one of {', '.join(SORTS)}")


def _like(term: str) -> str:
    """``%term%`` with LIKE's wildcards escaped (the escape character is backslash)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


@dataclass
class TextMatch:
    """The join, condition and relevance score of a search text on one database."""

    condition: ColumnElement[bool]
    score: ColumnElement[Any]  # lower is better
    fts: bool = False  # the statement joins resource_fts
    search_table: bool = False  # the statement joins resource_search


def text_match(dialect: Dialect, text: str) -> TextMatch:
    terms = text.split()
    search_text = resource_search.c.search_text
    if dialect.name == "sqlite":
        long_terms = [t for t in terms if len(t) >= _TRIGRAM]
        short = [search_text.like(_like(t), escape="\\") for t in terms if len(t) < _TRIGRAM]
        if not long_terms:
            return TextMatch(and_(*short), literal(0), search_table=True)
        fts: ColumnElement[Any] = literal_column("resource_fts")
        condition = and_(fts.op("MATCH")(" ".join(_fts_phrase(t) for t in long_terms)), *short)
        return TextMatch(condition, func.bm25(fts, *_FTS_WEIGHTS), fts=True, search_table=bool(short))
    words: ColumnElement[Any] = literal_column(
        "resource_search.search_words"
    )  # to_tsvector('english', search_text), stored
    query = func.plainto_tsquery("english", text)
    substrings = and_(*(search_text.like(_like(t), escape="\\") for t in terms))
    return TextMatch(or_(substrings, words.op("@@")(query)), -func.ts_rank(words, query), search_table=True)


def _linked(link: Any, id_column: str, model: Any, values: tuple[str, ...]) -> ColumnElement[bool]:
    """Resources carrying any of these names (ignoring case) in any live version."""
    ids = select(link.c.resource_id).join(model, model.id == link.c[id_column])
    return Resource.id.in_(ids.where(func.lower(model.name).in_([v.lower() for v in values])))


def filtered(query: SearchQuery, stmt: Select[Any], dialect: Dialect) -> tuple[Select[Any], tuple[Any, ...]]:
    """stmt (selecting from resources joined to catalogs) with the query's filters and text; returns it with the
    relevance order of the text (empty without one)."""
    stmt = stmt.where(Resource.latest_version_id.is_not(None))
    if query.kinds:
        stmt = stmt.where(Resource.kind.in_(query.kinds))
    if query.catalogs:
        stmt = stmt.where(Catalog.name.in_([c.lower() for c in query.catalogs]))
    if query.official:
        stmt = stmt.where(Catalog.type == "official")
    if query.hide_deprecated:
        stmt = stmt.where(ResourceVersion.deprecated.is_(False))
    if query.repositories:
        stmt = stmt.where(
            or_(
                *(
                    and_(Catalog.name == name.lower(), Resource.kind == kind if kind else true())
                    for name, kind in query.repositories
                )
            )
        )
    if query.catalog_ids is not None:
        stmt = stmt.where(Resource.catalog_id.in_(query.catalog_ids))
    for values, link, id_column, model in (
        (query.categories, resource_categories, "category_id", Category),
        (query.tags, resource_tags, "tag_id", Tag),
        (query.platforms, resource_platforms, "platform_id", Platform),
    ):
        if values:
            stmt = stmt.where(_linked(link, id_column, model, values))
    text = query.text.strip().lower()
    if not text:
        return stmt, ()
    if query.match == "exact":
        return stmt.where(Resource.name == text), ()
    match = text_match(dialect, text)
    if match.fts:
        stmt = stmt.join(_FTS, _FTS.c.rowid == Resource.id)
    if match.search_table:
        stmt = stmt.join(resource_search, resource_search.c.resource_id == Resource.id)
    tier = case(
        (Resource.name == text, 0),
        (Resource.name.like(_like(text)[1:], escape="\\"), 1),
        (Resource.name.like(_like(text), escape="\\"), 2),
        else_=3,
    )
    return stmt.where(match.condition), (tier, match.score)


def ordered(query: SearchQuery, stmt: Select[Any], dialect: Dialect) -> Select[Any]:
    """The page of results: filters, text, order, limit and offset in one statement."""
    stmt, relevance = filtered(query, stmt, dialect)
    by_name = (Resource.name, Resource.kind, Resource.catalog_id)
    if query.sort == "updated":
        order: tuple[Any, ...] = (Resource.updated_at.desc(), *by_name)
    elif query.sort == "relevance":
        order = (*relevance, *by_name)
    else:
        order = by_name
    return stmt.order_by(*order).limit(query.limit).offset(min(query.offset, MAX_OFFSET))


def shown(query: SearchQuery) -> ColumnElement[bool]:
    """The join condition of the version each result shows."""
    return ResourceVersion.id == (Resource.latest_release_id if query.release else Resource.latest_version_id)


def counted(query: SearchQuery, dialect: Dialect, *group_by: Any) -> Select[Any]:
    """How many resources match the query (no paging); with group_by columns, how many in each group."""
    stmt = select(*group_by, func.count()).select_from(Resource).join(Catalog, Catalog.id == Resource.catalog_id)
    if query.hide_deprecated:
        stmt = stmt.join(ResourceVersion, shown(query))
    stmt, _ = filtered(query, stmt, dialect)
    return stmt.group_by(*group_by) if group_by else stmt
