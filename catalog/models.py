"""The index: catalogs, resources, versions and what was reported while syncing them (SQLAlchemy 2.0)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


def _links(name: str, owner: tuple[str, str], named: tuple[str, str], *, indexed: bool = False) -> Table:
    """A table linking rows of an owner (resource versions or resources) to tags, categories or platforms; each
    pair is (column, table it refers to)."""
    (owner_column, owner_table), (named_column, named_table) = owner, named
    return Table(
        name,
        Base.metadata,
        Column(owner_column, ForeignKey(f"{owner_table}.id", ondelete="CASCADE"), primary_key=True),
        Column(named_column, ForeignKey(f"{named_table}.id", ondelete="CASCADE"), primary_key=True, index=indexed),
    )


_VERSION = ("version_id", "resource_versions")
_RESOURCE = ("resource_id", "resources")
version_tags = _links("version_tags", _VERSION, ("tag_id", "tags"))
version_categories = _links("version_categories", _VERSION, ("category_id", "categories"))
version_platforms = _links("version_platforms", _VERSION, ("platform_id", "platforms"))
# The union over a resource's live versions, kept by every sync: what the search filters test.
resource_tags = _links("resource_tags", _RESOURCE, ("tag_id", "tags"), indexed=True)
resource_categories = _links("resource_categories", _RESOURCE, ("category_id", "categories"), indexed=True)
resource_platforms = _links("resource_platforms", _RESOURCE, ("platform_id", "platforms"), indexed=True)
# The text a search matches, one row per listed resource: the name, the latest version's display name and
# description, and the tags of every live version. SQLite indexes it with an FTS5 trigram table (resource_fts),
# PostgreSQL with a pg_trgm index of search_text and a full-text index of its words, which PostgreSQL keeps in a
# stored column search_words (migrations 0011 and 0014).
resource_search = Table(
    "resource_search",
    Base.metadata,
    Column("resource_id", ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True),
    Column("name", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("tags", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("search_text", Text, nullable=False),  # all of the above, lower case
)


CATALOG_TYPES = ("official", "community", "verified", "enterprise", "private")
# Names a catalog cannot have: its web pages (/<catalog>/<kind>/<name>) would be API paths.
RESERVED_CATALOG_NAMES = frozenset({"v1", "api"})
OCI = "oci"  # the provider of catalogs read from a registry
DEFAULT_REFRESH_SECONDS = 30 * 60  # as Tekton Hub refreshed its catalogs


class Catalog(Base):
    __tablename__ = "catalogs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    source: Mapped[str] = mapped_column(Text)
    revision: Mapped[str | None] = mapped_column(String(255))
    context_dir: Mapped[str | None] = mapped_column(String(1024))
    type: Mapped[str] = mapped_column(String(32), default="community")
    # Who publishes it (Tekton Hub's catalog `org`; Artifact Hub's organization_name); unset: the owner in the
    # git URL of a GitHub, GitLab or Bitbucket source.
    org: Mapped[str | None] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(32), default="local")  # local, git hosts, or "oci" (a registry)
    # For a registry: the repositories to read when it does not list them (/v2/_catalog).
    repositories: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The commit (git) or content fingerprint (directory) of the last successful sync.
    synced_revision: Mapped[str | None] = mapped_column(String(128))
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # How often the scheduler syncs it (seconds; 0: never), when it will next, and when a sync of it last ended.
    refresh_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_REFRESH_SECONDS)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The secret of its push webhook (git sources), sealed with the hub's secrets key; made on first use.
    webhook_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    resources: Mapped[list[Resource]] = relationship(back_populates="catalog", cascade="all, delete-orphan")
    errors: Mapped[list[CatalogError]] = relationship(
        back_populates="catalog", cascade="all, delete-orphan", order_by="CatalogError.id"
    )


class Resource(Base):
    __tablename__ = "resources"
    __table_args__ = (
        UniqueConstraint("catalog_id", "kind", "name"),
        # Listings page through these in order: by name, and by the latest version's time.
        Index("ix_resources_listing", "name", "kind", "catalog_id"),
        Index("ix_resources_updated", "updated_at", "name", "kind", "catalog_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    catalog_id: Mapped[int] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # "Task", "Pipeline" or "StepAction"
    name: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Kept by every sync (catalog/summaries.py) so that a read is one indexed query: the highest live version
    # (NULL: none, the resource is not listed), the highest that is not a prerelease (Artifact Hub's default),
    # the latest's time, and what the API shows of every live version and of their union (see ResourceSummary).
    latest_version_id: Mapped[int | None] = mapped_column(Integer, index=True)
    latest_release_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    catalog: Mapped[Catalog] = relationship(back_populates="resources")
    versions: Mapped[list[ResourceVersion]] = relationship(back_populates="resource", cascade="all, delete-orphan")


class ResourceVersion(Base):
    __tablename__ = "resource_versions"
    __table_args__ = (UniqueConstraint("resource_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(128))
    api_version: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    deprecated: Mapped[bool] = mapped_column(Boolean, default=False)
    min_pipelines_version: Mapped[str | None] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1024))
    web_url: Mapped[str | None] = mapped_column(Text)
    # The Tekton bundle holding this version, pinned: "host/repo@sha256:..." (read from or published to a registry).
    bundle_ref: Mapped[str | None] = mapped_column(Text)
    raw_url: Mapped[str | None] = mapped_column(Text)
    manifest: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    # Digest of everything indexed for this version: a sync compares it instead of every column.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # Digest of the version folder's files when last read (a git tree id, or the digest of the files a sync
    # reads): a sync finding the same again neither reads nor parses the folder (catalog/tree.py, Known).
    source_key: Mapped[str | None] = mapped_column(String(64))
    readme: Mapped[str | None] = mapped_column(Text)
    samples: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # This version's tags, categories and platforms as [[id, name], ...] by name: read with the row, not joined.
    facets: Mapped[dict[str, list[list[Any]]]] = mapped_column(JSON, default=dict)
    modified_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when the version disappeared upstream: kept for pinned references, hidden from listings.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    resource: Mapped[Resource] = relationship(back_populates="versions")
    tags: Mapped[list[Tag]] = relationship(secondary=version_tags, order_by="Tag.name")
    categories: Mapped[list[Category]] = relationship(secondary=version_categories, order_by="Category.name")
    platforms: Mapped[list[Platform]] = relationship(secondary=version_platforms, order_by="Platform.name")


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class Platform(Base):
    __tablename__ = "platforms"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)


class CatalogError(Base):
    """A problem recorded by the last sync of a catalog."""

    __tablename__ = "catalog_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    catalog_id: Mapped[int] = mapped_column(ForeignKey("catalogs.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)

    catalog: Mapped[Catalog] = relationship(back_populates="errors")


class IndexState(Base):
    """One row whose generation grows with every change to the index: the key of every HTTP cache."""

    __tablename__ = "index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
