"""The health probes: /livez and /readyz answer without a token, past private mode and rate limits, and /readyz
says which check fails."""

import dataclasses

import pytest
from sqlalchemy import text

from catalog.db import make_engine, upgrade
from hub.app import create_app
from hub.config import Settings
from hub.wsgi.health import head_revision
from tests.conftest import free_port


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_probes_answer_a_private_rate_limited_hub_without_a_token(settings, path):
    app = create_app(dataclasses.replace(settings, private=True, rate_limit_search="1/hour"))
    client = app.test_client()
    assert client.get("/v1/query?name=git").status_code == 401  # the gate is on for everything else
    for _ in range(3):
        response = client.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert response.status_code == 200
        assert response.get_json()["status"] == "ok"
        assert response.headers["Cache-Control"] == "no-store"
    assert client.head(path).status_code == 200
    assert client.post(path).status_code == 405


def test_readyz_lists_its_checks(client):
    body = client.get("/readyz").get_json()
    assert body == {"status": "ok", "checks": {"database": "ok", "migrations": "ok"}}


def test_readyz_is_503_until_the_database_is_migrated(empty_database_url, tmp_path):
    app = create_app(Settings(data_dir=tmp_path, database_url=empty_database_url))
    client = app.test_client()
    assert client.get("/livez").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] == (
        f"the database is empty: run `taskhub db upgrade` (to {head_revision()})"
    )
    upgrade(make_engine(empty_database_url), "0001")
    behind = client.get("/readyz").get_json()["checks"]["migrations"]
    assert behind.startswith("the database is at revision 0001, this hub needs ")
    upgrade(make_engine(empty_database_url))
    assert client.get("/readyz").status_code == 200
    with make_engine(empty_database_url).begin() as conn:  # a newer release migrated it further
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_newer'"))
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_with_the_reason_when_the_database_is_unreachable(tmp_path):
    url = f"postgresql+psycopg://taskhub@127.0.0.1:{free_port()}/taskhub"
    client = create_app(Settings(data_dir=tmp_path, database_url=url)).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert "connection" in body["checks"]["database"].lower()
    assert client.get("/livez").status_code == 200


def test_the_probes_are_in_the_openapi_document(client):
    paths = client.get("/v1/openapi.json").get_json()["paths"]
    assert set(paths["/livez"]) == {"get"} and set(paths["/readyz"]["get"]["responses"]) == {"200", "503"}
