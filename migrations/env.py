"""Alembic environment: target metadata from the models; the engine from the caller or taskhub's config."""

from __future__ import annotations

from alembic import context

from catalog.db import make_engine
from catalog.models import Base
from hub import models as _hub_models  # noqa: F401  (API tokens are part of the schema)
from jobs import models as _job_models  # noqa: F401  (jobs and leases are part of the schema)
from runner import models as _run_models  # noqa: F401  (run records are part of the schema)
from runner.objects import models as _object_models  # noqa: F401  (the object store is part of the schema)
from triggers import models as _trigger_models  # noqa: F401  (events are part of the schema)

target_metadata = Base.metadata
# Made by migration 0011 for one dialect, outside the models: the full-text indexes of resource_search.
UNMANAGED_TABLES = ("resource_fts",)  # and FTS5's shadow tables resource_fts_data, _idx, _content, ...
UNMANAGED_INDEXES = ("ix_resource_search_trgm", "ix_resource_search_words")


UNMANAGED_COLUMNS = ("search_words",)  # PostgreSQL's stored words of resource_search (migration 0014)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    if type_ == "table":
        return not (name or "").startswith(UNMANAGED_TABLES)
    if type_ == "index":
        return name not in UNMANAGED_INDEXES
    if type_ == "column":
        return name not in UNMANAGED_COLUMNS
    return True


def _engine():  # type: ignore[no-untyped-def]
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url is None:
        from hub.config import Settings

        url = Settings.from_env().database_url
    return make_engine(url)


def run_migrations_offline() -> None:
    context.configure(url=str(_engine().url), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
