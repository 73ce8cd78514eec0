"""The per-worker cache of API answers, on SQLite and PostgreSQL: bounded by bytes, keyed only by what a view
reads, and never storing an answer under a generation it was not computed at."""

import dataclasses

from sqlalchemy import event, update
from sqlalchemy.orm import Session

import catalog.queries
from catalog.models import IndexState
from hub.app import create_app


def counted_queries(app) -> list[str]:
    statements: list[str] = []
    event.listen(app.extensions["taskhub.engine"], "before_cursor_execute", lambda *a: statements.append(a[2]))
    return statements


def test_unknown_parameters_share_one_cached_answer(settings, indexed):
    app = create_app(dataclasses.replace(settings, generation_check_interval=3600, rate_limit_search="0"))
    client = app.test_client()
    first = client.get("/v1/query?name=git")
    assert first.status_code == 200
    statements = counted_queries(app)
    for n in range(390):
        again = client.get(f"/v1/query?name=git&dummy={n}")
        assert again.status_code == 200 and again.data == first.data
    assert statements == []  # every one an answer from memory
    cache = app.extensions["taskhub.response_cache"]
    assert cache.entries == 1
    assert client.get("/v1/query?name=clone").data != first.data  # a parameter the view reads is in the key


def test_the_cache_is_bounded_by_bytes(settings, indexed):
    app = create_app(dataclasses.replace(settings, generation_check_interval=3600, response_cache_bytes=40_000))
    client = app.test_client()
    cache = app.extensions["taskhub.response_cache"]
    sizes = []
    for limit in range(1, 31):
        answer = client.get(f"/v1/resources?limit={limit}")
        assert answer.status_code == 200
        sizes.append(len(answer.data))
        assert cache.bytes <= 40_000
    assert sum(sizes) > 40_000 and 0 < cache.entries < 30


def test_an_answer_computed_while_the_index_changed_is_not_kept_for_the_new_index(settings, indexed, monkeypatch):
    app = create_app(dataclasses.replace(settings, generation_check_interval=0))
    engine = app.extensions["taskhub.engine"]
    calls = []
    real = catalog.queries.CatalogIndex.catalogs

    def catalogs_while_a_sync_commits(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            with Session(engine) as s, s.begin():  # a sync commits in the middle of this request
                s.execute(update(IndexState).values(generation=IndexState.generation + 1))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(catalog.queries.CatalogIndex, "catalogs", catalogs_while_a_sync_commits)
    client = app.test_client()
    assert client.get("/v1/catalogs").status_code == 200
    assert client.get("/v1/catalogs").status_code == 200
    assert len(calls) == 2  # the first answer was computed under the old index: not served for the new one
