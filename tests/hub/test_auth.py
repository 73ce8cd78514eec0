"""Tokens on the wire: public reads untouched, private mode on every surface, clear 401s, and rate limits."""

import dataclasses
import html
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from hub.app import create_app
from hub.config import Settings
from hub.tokens import create_token, revoke_token
from hub.wsgi.ratelimit import Rate, TokenBuckets
from tests.hub.test_tekton_api import assert_goa_error


def issue(app, name, *scopes, expires="1d", now=None):
    """A token created in the app's database as `taskhub token create` does; returns its text."""
    with Session(app.extensions["taskhub.engine"]) as s, s.begin():
        return create_token(s, name, scopes, expires, now=now).token


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def private_app(settings, indexed):
    return create_app(dataclasses.replace(settings, private=True, token_cache_seconds=0))


# -- public mode ------------------------------------------------------------------------------------------


def test_public_reads_need_no_token(client):
    assert client.get("/v1/query?name=git-clone").status_code == 200
    assert client.get("/", headers={"Accept": "text/html"}).status_code == 200
    assert client.get("/tekton/task/git-clone").status_code == 200
    cached = client.get("/v1/query?name=git-clone")
    assert cached.status_code == 200 and cached.headers["Cache-Control"] == "public, max-age=60"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "empty Authorization header"),
        ("Bearer", "Authorization: Bearer without a token"),
        ("Bearer  ", "Authorization: Bearer without a token"),
        ("Bearer a b", "a token has no spaces"),
        ("Bearer thub_" + "A" * 43, "unknown API token"),
        ("thub_\xe9\xff", "unknown API token"),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "not a taskhub API token"),
        ("Bearer thub_" + "x" * 5000, "not a taskhub API token"),
    ],
)
def test_a_bad_authorization_header_is_a_clear_401(client, header, message):
    response = client.get("/v1/query?name=git", headers={"Authorization": header})
    assert_goa_error(response, 401, "invalid-token", message)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="taskhub"'


def test_other_schemes_are_left_to_a_proxy_in_public_mode_and_refused_in_private_mode(client, private_app):
    basic = {"Authorization": "Basic YWxpY2U6czNjcmV0"}  # e.g. a proxy's basic auth, forwarded
    assert client.get("/v1/query?name=git", headers=basic).status_code == 200
    refused = private_app.test_client().get("/v1/query?name=git", headers=basic)
    assert_goa_error(refused, 401, "invalid-token", "unsupported Authorization scheme 'Basic'")


def test_expired_and_revoked_tokens_are_refused_in_every_family(app, indexed):
    client = app.test_client()
    expired = issue(app, "old", "read", expires="1h", now=datetime.now(UTC) - timedelta(hours=2))
    assert_goa_error(client.get("/v1/catalogs", headers=bearer(expired)), 401, "expired-token", "'old' expired")
    api = client.get("/api/v1/packages/search", headers=bearer(expired))
    assert api.status_code == 401 and "'old' expired" in api.get_json()["message"]
    page = client.get("/catalogs", headers=bearer(expired))
    assert page.status_code == 401 and "text/html" in page.content_type and b"&#39;old&#39; expired" in page.data

    revoked = issue(app, "gone", "read")
    with Session(app.extensions["taskhub.engine"]) as s, s.begin():
        revoke_token(s, "gone")
    assert_goa_error(client.get("/v1/catalogs", headers=bearer(revoked)), 401, "revoked-token", "'gone' was revoked")


def test_settings_read_booleans_from_the_environment():
    assert Settings.from_env({"TASKHUB_PRIVATE": "true"}).private is True
    assert Settings.from_env({"TASKHUB_PRIVATE": "0"}).private is False
    assert Settings.from_env({}).private is False
    with pytest.raises(ValueError, match="TASKHUB_PRIVATE='maybe' is not a boolean"):
        Settings.from_env({"TASKHUB_PRIVATE": "maybe"})


# -- private mode -----------------------------------------------------------------------------------------

SURFACES = [
    ("/v1/query?name=git-clone", {}),
    ("/v1/resource/tekton/task/git-clone/0.9/raw", {}),
    ("/v1", {}),
    ("/", {"Accept": "application/json"}),
    ("/", {"Accept": "text/html"}),
    ("/tekton/task/git-clone", {}),
    ("/catalogs", {}),
    ("/catalog/tekton/error", {}),
    ("/api/v1/packages/search?ts_query_web=git", {}),
]


@pytest.mark.parametrize(("path", "headers"), SURFACES)
def test_private_mode_needs_a_read_token_everywhere(private_app, path, headers):
    client = private_app.test_client()
    # With a token first, so a cached answer exists that must not leak to the next client.
    token = issue(private_app, "reader", "read")
    allowed = client.get(path, headers={**headers, **bearer(token)})
    assert allowed.status_code == 200
    assert "public" not in allowed.headers.get("Cache-Control", "")
    again = client.get(path, headers={**headers, "Authorization": token})  # bare, as tkn sends it
    assert again.status_code == 200 and again.data == allowed.data

    refused = client.get(path, headers=headers)
    assert refused.status_code == 401
    assert "this hub is private" in refused.text
    assert refused.data != allowed.data

    writer = issue(private_app, "writer", "catalog:refresh")
    no_read = client.get(path, headers={**headers, **bearer(writer)})
    assert no_read.status_code == 403 and "token 'writer' lacks the 'read' scope" in html.unescape(no_read.text)


def test_private_web_pages_offer_a_login_form_that_sets_a_read_only_cookie(private_app):
    client = private_app.test_client()
    page = client.get("/tekton/task/git-clone")
    assert page.status_code == 401 and b'<form method="post" action="/login">' in page.data
    assert b'name="next" value="/tekton/task/git-clone"' in page.data

    bad = client.post("/login", data={"token": "thub_nope", "next": "/"})
    assert bad.status_code == 401 and b"unknown API token" in bad.data
    token = issue(private_app, "browser", "read", "catalog:refresh")
    signed_in = client.post("/login", data={"token": token, "next": "//evil.example/"})
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == "/"  # no open redirect
    cookie = signed_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/tekton/task/git-clone").status_code == 200
    # A cookie is sent by cross-site forms too, so it never authorizes a write.
    assert_goa_error(client.post("/v1/catalog/tekton/refresh"), 401, "missing-token")
    client.post("/logout")
    assert client.get("/tekton/task/git-clone").status_code == 401


def test_a_token_is_verified_once_per_cache_window_not_on_every_request(settings, indexed):
    app = create_app(dataclasses.replace(settings, private=True, token_cache_seconds=30))
    token = issue(app, "reader", "read")
    lookups = []

    @event.listens_for(app.extensions["taskhub.engine"], "before_cursor_execute")
    def count(conn, cursor, statement, *args):
        if "api_tokens" in statement:
            lookups.append(statement)

    client = app.test_client()
    for _ in range(5):
        assert client.get("/v1/categories", headers=bearer(token)).status_code == 200
    assert len([s for s in lookups if s.lstrip().upper().startswith("SELECT")]) == 1


# -- rate limits ------------------------------------------------------------------------------------------


def limited_app(settings, **limits):
    app = create_app(dataclasses.replace(settings, **limits))
    clock = [1000.0]
    for buckets in app.extensions["taskhub.access_gate"].wsgi.buckets.values():
        buckets.clock = lambda: clock[0]
    return app, clock


def test_search_is_rate_limited_per_client_then_recovers(settings, indexed):
    app, clock = limited_app(settings, rate_limit_search="2/minute")
    client = app.test_client()
    assert client.get("/v1/query?name=git").status_code == 200
    assert client.get("/v1/query?name=git").status_code == 200  # a cached answer counts too
    over = client.get("/v1/query?name=git")
    assert_goa_error(over, 429, "rate-limited", "rate limit of 2 search requests per minute exceeded")
    assert over.headers["Retry-After"] == "30"
    web = client.get("/?q=git", headers={"Accept": "text/html"})
    assert web.status_code == 429 and b"rate limit of 2 search requests" in web.data
    api = client.get("/api/v1/packages/search?ts_query_web=git")
    assert api.status_code == 429 and api.get_json()["message"].startswith("rate limit of 2 search")
    # Other clients and other endpoints are not affected.
    elsewhere = client.get("/v1/query?name=git", environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert elsewhere.status_code == 200
    assert client.get("/v1/resources").status_code == 200
    assert client.get("/", headers={"Accept": "text/html"}).status_code == 200
    token = issue(app, "ci", "read")
    assert client.get("/v1/query?name=git", headers=bearer(token)).status_code == 200  # its own bucket

    clock[0] += 30
    assert client.get("/v1/query?name=git").status_code == 200
    assert client.get("/v1/query?name=git").status_code == 429


def test_resolve_is_limited_and_zero_disables(settings, indexed):
    app, _ = limited_app(settings, rate_limit_resolve="1/hour", rate_limit_search="0")
    client = app.test_client()
    assert client.get("/v1/resolve/anything").status_code != 429
    assert_goa_error(client.get("/v1/resolve/anything"), 429, "rate-limited", "1 resolve requests per hour")
    assert all(client.get("/v1/query?name=git").status_code == 200 for _ in range(5))
    with pytest.raises(ValueError, match="TASKHUB_RATE_LIMIT_SEARCH='fast': expected N/second"):
        create_app(dataclasses.replace(settings, rate_limit_search="fast"))


def test_buckets_forget_the_least_recent_clients_beyond_the_bound():
    buckets = TokenBuckets(Rate(1, 60), max_clients=3, clock=lambda: 0.0)
    for client in ("a", "b", "c", "d"):
        assert buckets.take(client) == 0
    assert buckets.take("d") == 60  # d's bucket is remembered
    assert buckets.take("a") == 0  # a was forgotten: a full bucket again
    assert len(buckets._buckets) == 3


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "/ /evil.example"])
def test_login_never_redirects_off_the_hub(private_app, target):
    token = issue(private_app, "reader", "read")
    signed_in = private_app.test_client().post("/login", data={"token": token, "next": target})
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == "/"


def test_reads_do_not_depend_on_a_write(private_app, database_url):
    """A token's last use is a hint written beside the request: a database that takes no writes (a held SQLite
    write lock, a read-only PostgreSQL) still serves every authenticated read."""
    token = issue(private_app, "reader", "read")
    engine = private_app.extensions["taskhub.engine"]
    client = private_app.test_client()
    if database_url.startswith("sqlite"):
        holder = engine.raw_connection()
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held until the end of the test
        try:
            answer = client.get("/v1/catalogs", headers=bearer(token))
        finally:
            holder.rollback()
            holder.close()
    else:
        with engine.begin() as conn:
            name = conn.exec_driver_sql("SELECT current_database()").scalar()
            conn.exec_driver_sql(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
        engine.dispose()
        try:
            answer = client.get("/v1/catalogs", headers=bearer(token))
        finally:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("SET default_transaction_read_only = off")
                conn.exec_driver_sql(f"ALTER DATABASE {name} SET default_transaction_read_only = off")
            engine.dispose()
    assert answer.status_code == 200, answer.data


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(settings, indexed):
    app, _ = limited_app(settings, rate_limit_search="2/minute", trusted_proxies="192.0.2.10/32")
    client = app.test_client()

    def search(peer, forwarded=None):
        headers = {"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"} if forwarded else {}
        return client.get("/v1/query?name=git", environ_base={"REMOTE_ADDR": peer}, headers=headers)

    for _ in range(2):
        assert search("192.0.2.10", "198.51.100.1").status_code == 200
    assert search("192.0.2.10", "198.51.100.1").status_code == 429
    assert search("192.0.2.10", "198.51.100.2").status_code == 200  # another client behind the same proxy
    # From a peer that is not a trusted proxy the header is the client's own claim: ignored.
    assert search("203.0.113.5", "198.51.100.3").status_code == 200
    assert search("203.0.113.5", "198.51.100.4").status_code == 200
    assert search("203.0.113.5", "198.51.100.5").status_code == 429


def test_the_forwarded_scheme_is_taken_from_trusted_proxies_only(settings, indexed):
    app = create_app(dataclasses.replace(settings, trusted_proxies="192.0.2.10/32"))
    client = app.test_client()
    trusted = client.get("/v1/resource/tekton/task/git-clone/0.9", environ_base={"REMOTE_ADDR": "192.0.2.10"},
                         headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1"})  # fmt: skip
    other = client.get("/v1/resource/tekton/task/git-clone/0.9", environ_base={"REMOTE_ADDR": "203.0.113.5"},
                       headers={"X-Forwarded-Proto": "https"})  # fmt: skip
    assert "https://localhost/" in trusted.text and "https://" not in other.text
