"""Search and listings run in SQL on both databases: what they match, how they rank, and that each read is one
bounded query whatever the catalog's size."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from alembic import command
from sqlalchemy import event
from sqlalchemy.orm import Session

from catalog.db import alembic_config, make_engine, upgrade
from catalog.queries import CatalogIndex, SearchQuery
from catalog.sync import add_catalog, sync_by_name
from tests.catalog.factories import write_version


def names(engine, **query) -> list[str]:
    with Session(engine) as s:
        return [v.resource.name for v in CatalogIndex(s).search(SearchQuery(**query)).views]


def test_terms_match_anywhere_in_any_field_and_names_rank_first(engine, indexed):
    assert names(engine, text="lone")[:2] == ["git-clone", "git-clone"]  # a substring of a name
    assert names(engine, text="clone git")[:2] == ["git-clone", "git-clone"]  # every term, in any order
    assert names(engine, text="GIT CLONE")[:2] == ["git-clone", "git-clone"]  # any case
    # Short terms match too (SQLite's trigram index needs three characters; LIKE takes the rest).
    assert "yq" in names(engine, text="yq")
    assert names(engine, text="yq helm") == ["yq"]  # a short term and a word of the description
    ranked = names(engine, text="git")
    assert ranked[:2] == ["git-clone", "git-clone"]
    starts = [n for n in ranked if n.startswith("git")]
    assert ranked[: len(starts)] == starts  # names starting with the text come before other matches
    assert names(engine, text="nothing-like-this") == []
    assert names(engine, text="50%") == [] and names(engine, text="a_b") == []  # LIKE's wildcards are text


def test_postgresql_also_matches_other_forms_of_english_words(engine, indexed):
    """ "cloning" is in no text of the test catalog; PostgreSQL's full-text search also finds "clones"."""
    found = names(engine, text="cloning")
    assert found[:2] == (["git-clone", "git-clone"] if engine.dialect.name == "postgresql" else [])


def test_exact_match_and_filters_in_sql(engine, indexed):
    assert names(engine, text="git-clone", match="exact") == ["git-clone", "git-clone"]
    assert names(engine, text="git-clon", match="exact") == []
    assert names(engine, text="git", kinds=("StepAction",)) == ["git-clone"]
    assert names(engine, categories=("GIT",), kinds=("Task",)) == ["git-clone", "pull-request"]
    assert set(names(engine, tags=("image-build", "nonexistent"))) >= {"buildah"}
    assert names(engine, platforms=("linux/s390x",), text="clone", kinds=("Task",)) == ["git-clone"]
    assert names(engine, catalogs=("nope",)) == []


def test_paging_totals(engine, indexed):
    with Session(engine) as s:
        index = CatalogIndex(s)
        everything = index.search(SearchQuery(sort="name", limit=1000))
        total = everything.total
        assert total == len(everything.views) == len({(v.resource.kind, v.resource.name) for v in everything.views})
        page = index.search(SearchQuery(sort="name", limit=5, offset=10))
        assert page.total == total and page.views == everything.views[10:15]
        past = index.search(SearchQuery(sort="name", limit=5, offset=2**80))
        assert past.views == [] and past.total == total


@contextmanager
def index_statements(app):
    """The SQL statements the app runs against the index (resources) while the block runs."""
    engine, seen = app.extensions["taskhub.engine"], []

    def record(conn, cursor, statement, parameters, context, executemany):
        if re.search(r"\bresources\b", statement):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/resource/tekton/task/git-clone?n={n}",
        "/v1/query?name=clone&n={n}",
        "/v1/resource/tekton/task/git-clone/0.9/yaml?n={n}",
        "/api/v1/packages/tekton-task/tekton/git-clone?n={n}",
        "/api/v1/packages/search?ts_query_web=git&n={n}",
    ],
)
def test_each_api_read_is_one_query(app, indexed, path):
    client = app.test_client()
    assert client.get(path.format(n=0)).status_code == 200
    app.extensions["taskhub.response_cache"].clear()  # a parameter no view reads (n) no longer makes a new entry
    with index_statements(app) as seen:
        assert client.get(path.format(n=1)).status_code == 200
    assert len(seen) == 1, seen


def result_count(client, path: str) -> str:
    page = client.get(path, headers={"Accept": "text/html"}).get_data(as_text=True)
    return re.search(r'id="result-count">([^<]*)<', page).group(1)


def test_the_home_page_reads_a_page_not_the_catalog(app, engine, settings, indexed, tmp_path):
    """Filter choices and the number of results (when the page does not tell it) are computed once per index
    generation: counting reads every resource. A sync that changes the index shows the new number."""
    client = app.test_client()
    past_the_end = "/?page=9"  # the test catalog fills one page: this one counts
    assert result_count(client, past_the_end) == f"{indexed.resources} results"
    with index_statements(app) as seen:
        assert client.get(past_the_end, headers={"Accept": "text/html"}).status_code == 200
    assert len(seen) == 1 and "LIMIT" in seen[0], seen

    write_version(tmp_path / "more", "one-more", "0.1")
    with Session(engine) as s, s.begin():
        add_catalog(s, "more", str(tmp_path / "more"))
    sync_by_name(engine, "more", settings.catalogs_dir, registries=lambda host: None)  # type: ignore[arg-type,return-value]
    assert result_count(client, past_the_end) == f"{indexed.resources + 1} results"


def test_migration_0011_fills_in_what_reads_need_for_an_index_made_before_it(app, indexed, database_url):
    """Upgrading a hub with indexed catalogs: summaries and search text are built from what was there."""
    paths = ("/v1/resource/tekton/task/git-clone?n={n}", "/v1/query?name=clone&n={n}", "/?q=git&n={n}")
    client = app.test_client()
    before = [client.get(p.format(n=0), headers={"Accept": "text/html"}).data for p in paths]
    engine = make_engine(database_url)
    command.downgrade(alembic_config(engine), "0010")
    upgrade(engine)
    engine.dispose()
    app.extensions["taskhub.response_cache"].clear()
    after = [client.get(p.format(n=1), headers={"Accept": "text/html"}).data for p in paths]
    assert after == before


def test_the_tag_filter_offers_the_most_used_tags_and_any_chosen_one(app, indexed, monkeypatch):
    monkeypatch.setattr("catalog.queries.TOP_TAGS", 3)
    monkeypatch.setattr("catalog.queries._FACETS.values", {})
    client = app.test_client()
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    offered = re.findall(r'name="tag" value="([^"]+)"', page)
    assert len(offered) == 3 and "yq" not in offered
    chosen = client.get("/?tag=yq", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert 'name="tag" value="yq" checked' in chosen  # still offered, so it can be unchecked
    assert 'data-name="yq"' in chosen
