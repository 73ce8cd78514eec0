"""API tokens in the database: hashed at rest, expiring, revocable, with a fixed set of scopes."""

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from catalog.errors import Conflict, InvalidRequest, NotFound
from hub.models import ApiToken
from hub.tokens import (
    InvalidToken,
    MissingScope,
    TokenIdentity,
    check_grant,
    create_token,
    hash_token,
    list_tokens,
    note_token_use,
    parse_expiry,
    revoke_token,
    token_state,
    verify_token,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def create(engine, name, *scopes, expires="30d", now=NOW):
    with Session(engine) as s, s.begin():
        return create_token(s, name, scopes, expires, now=now)


def verify(engine, token, now=NOW):
    with Session(engine) as s, s.begin():
        return verify_token(s, token, now=now)


def test_only_a_hash_of_the_token_is_stored(engine):
    created = create(engine, "ci", "catalog:refresh", "read")
    assert created.token.startswith("thub_") and len(created.token) >= 40
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_tokens")).all()
    assert len(rows) == 1
    assert not any(created.token in str(value) or created.token[5:] in str(value) for value in rows[0])
    assert hashlib.sha256(created.token.encode()).hexdigest() in rows[0]
    identity = verify(engine, created.token)
    assert identity == TokenIdentity(
        "ci", frozenset({"catalog:refresh", "read"}), NOW + timedelta(days=30), id=identity.id
    )


def test_expired_revoked_unknown_and_malformed_tokens_are_refused_with_the_reason(engine):
    created = create(engine, "short", "read", expires="1h")
    assert verify(engine, created.token, NOW + timedelta(minutes=59)).name == "short"
    with pytest.raises(InvalidToken, match="'short' expired") as expired:
        verify(engine, created.token, NOW + timedelta(hours=1))
    assert expired.value.reason == "expired-token"

    kept = create(engine, "kept", "read")
    with Session(engine) as s, s.begin():
        revoke_token(s, "kept", now=NOW)
    with pytest.raises(InvalidToken, match="'kept' was revoked") as revoked:
        verify(engine, kept.token)
    assert revoked.value.reason == "revoked-token"

    with pytest.raises(InvalidToken, match="unknown API token"):
        verify(engine, "thub_" + "A" * 43)
    with pytest.raises(InvalidToken, match="not a taskhub API token"):
        verify(engine, "eyJhbGciOiJIUzI1NiJ9.e30.x")  # an upstream Tekton Hub JWT


def test_names_are_unique_among_live_tokens_only(engine):
    create(engine, "deploy", "read")
    with pytest.raises(Conflict, match="a live token named 'deploy' exists"):
        create(engine, "deploy", "read")
    with Session(engine) as s, s.begin():
        revoke_token(s, "deploy", now=NOW)
    second = create(engine, "deploy", "catalog:publish")
    # An expired token's name is free again; the expired token stays refused.
    create(engine, "nightly", "read", expires="1d", now=NOW - timedelta(days=2))
    create(engine, "nightly", "admin")
    with Session(engine) as s:
        states = [(t.name, t.scopes, token_state(t, NOW)) for t in list_tokens(s)]
    assert sorted(states) == [
        ("deploy", ["catalog:publish"], "active"),
        ("deploy", ["read"], "revoked"),
        ("nightly", ["admin"], "active"),
        ("nightly", ["read"], "revoked"),
    ]
    assert verify(engine, second.token).scopes == {"catalog:publish"}
    with Session(engine) as s, s.begin(), pytest.raises(NotFound, match="no live token named 'nobody'"):
        revoke_token(s, "nobody", now=NOW)


@pytest.mark.parametrize(
    ("scopes", "expires", "message"),
    [
        (["read", "rating:write"], "30d", "unknown scope 'rating:write'; known scopes: read, catalog:refresh"),
        ([], "30d", "at least one scope"),
        (["read"], "soon", "invalid expiry 'soon': expected a duration like 30d"),
        (["read"], "0d", "is zero"),
        (["read"], "999999w", "too far away"),
        (["read"], "2020-01-01", "is in the past"),
    ],
)
def test_bad_scopes_and_expiries_are_refused_clearly(engine, scopes, expires, message):
    with pytest.raises(InvalidRequest, match=message):
        create(engine, "x", *scopes, expires=expires)
    with Session(engine) as s:
        assert list_tokens(s) == []


def test_expiry_forms():
    assert parse_expiry("12h", NOW) == NOW + timedelta(hours=12)
    assert parse_expiry("2w", NOW) == NOW + timedelta(weeks=2)
    assert parse_expiry("2027-01-31", NOW) == datetime(2027, 1, 31, tzinfo=UTC)
    assert parse_expiry("2027-01-31T10:00:00+02:00", NOW) == datetime(2027, 1, 31, 8, tzinfo=UTC)
    assert parse_expiry("never", NOW) is None


def test_last_used_is_recorded_apart_from_verification_and_not_on_every_request(engine):
    created = create(engine, "ci", "read")

    def last_used():
        with Session(engine) as s:
            return s.query(ApiToken.last_used_at).scalar()

    def use(now):
        with Session(engine) as s, s.begin():
            note_token_use(s, hash_token(created.token), now=now)

    verify(engine, created.token, NOW)
    assert last_used() is None  # verifying writes nothing
    use(NOW)
    assert last_used() == NOW
    use(NOW + timedelta(minutes=1))
    assert last_used() == NOW
    use(NOW + timedelta(minutes=6))
    assert last_used() == NOW + timedelta(minutes=6)


def test_a_token_grants_only_scopes_it_holds_unless_admin():
    creator = TokenIdentity("ops", frozenset({"tokens:create", "read"}), None)
    check_grant(creator, ["read"])
    with pytest.raises(MissingScope, match="token 'ops' lacks the 'admin' scope"):
        check_grant(creator, ["read", "admin"])
    check_grant(TokenIdentity("root", frozenset({"admin"}), None), ["admin", "catalog:refresh"])
