"""API tokens: created with scopes and an expiry, stored hashed, verified, listed and revoked by name.

A token is ``thub_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is stored. A slow
password hash (bcrypt, argon2) exists to make guessing low-entropy passwords expensive; a 256-bit random token
cannot be guessed at any speed, and a fast deterministic hash lets a request find its row with one indexed
lookup. A copy of the database therefore holds nothing that can be sent as a token.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from catalog.errors import Conflict, InvalidRequest, NotFound, TaskhubError
from hub.models import ApiToken

TOKEN_PREFIX = "thub_"
MAX_TOKEN_LENGTH = 256
# Every scope there is; ``admin`` implies all of them.
SCOPES: dict[str, str] = {
    "read": "read the catalog when the hub is private (TASKHUB_PRIVATE=true)",
    "catalog:refresh": "sync catalogs (POST /v1/catalog/NAME/refresh)",
    "registry:sync": "index registries (POST /v1/registries/NAME/sync)",
    "catalog:publish": "publish catalogs to a registry (POST /v1/catalog/NAME/publish)",
    "tokens:create": "create tokens holding no more than its own scopes nor outliving it; list and revoke those",
    "runs:read": "read run records (params, results, logs) when they are not public (TASKHUB_PUBLIC_RUNS=false)",
    "runs:write": "start and cancel runs (and read them)",
    "objects:read": "read the hub's objects: Triggers resources, Tasks, ConfigMaps, Secrets (never their values)",
    "objects:write": "apply and delete the hub's objects, Secrets included (GET/POST/DELETE /v1/objects)",
    "admin": "everything above, and tokens with any scope",
}
ADMIN = "admin"
DEFAULT_EXPIRY = "90d"
# last_used_at is a hint for people cleaning up tokens, not an audit log: writing it at most this often
# keeps verification from being a write on every request.
LAST_USED_RESOLUTION = timedelta(minutes=5)
_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class InvalidToken(TaskhubError):
    """A request carried a token that is malformed, unknown, expired or revoked (HTTP 401)."""

    def __init__(self, message: str, *, reason: str = "invalid-token") -> None:
        super().__init__(message)
        self.reason = reason


class MissingScope(TaskhubError):
    """A valid token without the scope an operation needs (HTTP 403)."""

    def __init__(self, scope: str, token_name: str | None) -> None:
        who = f"token {token_name!r}" if token_name else "this request"
        super().__init__(f"{who} lacks the {scope!r} scope")
        self.scope = scope


@dataclass(frozen=True)
class TokenIdentity:
    """Who a verified token is: its name, its scopes and when it stops being valid."""

    name: str
    scopes: frozenset[str]
    expires_at: datetime | None
    id: int | None = None

    def allows(self, scope: str) -> bool:
        """Whether the token holds scope, directly or through ``admin``."""
        return ADMIN in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class CreatedToken:
    """A new token: the only moment its text exists outside the client."""

    name: str
    scopes: list[str]
    expires_at: datetime | None
    token: str


def hash_token(token: str) -> str:
    """The stored form of a token (hex SHA-256; see the module docstring for why a fast hash is right)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, sorted and deduplicated; InvalidRequest naming any unknown one."""
    wanted = sorted(set(scopes))
    if not wanted:
        raise InvalidRequest("a token needs at least one scope; known scopes: " + ", ".join(SCOPES))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise InvalidRequest(
            f"unknown scope {', '.join(map(repr, unknown))}; known scopes: {', '.join(SCOPES)}", reason="invalid-scopes"
        )
    return wanted


def parse_expiry(text: str, now: datetime) -> datetime | None:
    """``never``, a duration (``30d``, ``12h``, ``2w``) or an ISO date/time (UTC unless it says otherwise)."""
    text = text.strip()
    if text == "never":
        return None
    duration = _DURATION.match(text)
    if duration:
        amount = int(duration.group(1))
        if amount == 0:
            raise InvalidRequest(f"expiry {text!r} is zero; give a positive duration", reason="invalid-expiry")
        try:
            return now + timedelta(**{_UNITS[duration.group(2)]: amount})
        except OverflowError:
            raise InvalidRequest(f"expiry {text!r} is too far away", reason="invalid-expiry") from None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            moment = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"invalid expiry {text!r}: expected a duration like 30d or 12h, an ISO date like 2027-01-31, or never",
            reason="invalid-expiry",
        ) from None
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        raise InvalidRequest(f"expiry {text!r} is too far away", reason="invalid-expiry") from None
    if moment <= now:
        raise InvalidRequest(f"expiry {text!r} is in the past", reason="invalid-expiry")
    return moment


def _live(now: datetime) -> ColumnElement[bool]:
    return and_(ApiToken.revoked_at.is_(None), or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))


def create_token(
    session: Session,
    name: str,
    scopes: Iterable[str],
    expires: str | None = None,
    *,
    created_by: str = "cli",
    creator: TokenIdentity | None = None,
    now: datetime | None = None,
) -> CreatedToken:
    """Create a token and return its text, which is never stored; Conflict if a live token has the name. A token
    made by `creator` (through the API) holds none of the scopes it lacks and does not outlive it. `expires`:
    see parse_expiry; None is DEFAULT_EXPIRY, or the creator's own expiry when that comes first."""
    now = now or datetime.now(UTC)
    if not _NAME.match(name):
        raise InvalidRequest(
            f"invalid token name {name!r}: 1-63 lower-case letters, digits, '.', '_' or '-'", reason="invalid-name"
        )
    granted = check_scopes(scopes)
    expires_at = parse_expiry(expires or DEFAULT_EXPIRY, now)
    if creator is not None:
        check_grant(creator, granted)
        if expires is None and creator.expires_at is not None and expires_at is not None:
            expires_at = min(expires_at, creator.expires_at)  # the default: no later than the creator
        if creator.expires_at is not None and (expires_at is None or expires_at > creator.expires_at):
            raise InvalidRequest(
                f"expiry {expires!r} would outlive token {creator.name!r}, which expires at "
                f"{creator.expires_at.isoformat()}",
                reason="invalid-expiry",
            )
    existing = session.scalar(select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None)))
    if existing is not None:
        if existing.expires_at is None or existing.expires_at > now:
            raise Conflict(f"a live token named {name!r} exists; revoke it first")
        existing.revoked_at = now  # retire the expired one so the live-name index admits the new token
        session.flush()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            name=name,
            token_hash=hash_token(token),
            scopes=granted,
            created_by=creator.name if creator is not None else created_by,
            creator_id=creator.id if creator is not None else None,
            created_at=now.replace(microsecond=0),
            expires_at=expires_at,
        )
    )
    session.flush()
    return CreatedToken(name=name, scopes=granted, expires_at=expires_at, token=token)


def verify_token(session: Session, token: str, *, now: datetime | None = None) -> TokenIdentity:
    """The identity of a token; InvalidToken saying why when it is malformed, unknown, expired or revoked."""
    now = now or datetime.now(UTC)
    if not token.startswith(TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken(f"not a taskhub API token (they start with {TOKEN_PREFIX!r})")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise InvalidToken("unknown API token")
    if row.revoked_at is not None:
        raise InvalidToken(f"API token {row.name!r} was revoked", reason="revoked-token")
    if row.expires_at is not None and row.expires_at <= now:
        raise InvalidToken(f"API token {row.name!r} expired at {row.expires_at.isoformat()}", reason="expired-token")
    return TokenIdentity(name=row.name, scopes=frozenset(row.scopes), expires_at=row.expires_at, id=row.id)


def note_token_use(session: Session, digest: str, *, now: datetime | None = None) -> None:
    """Set the last use of the token whose hash is digest, unless it was set less than LAST_USED_RESOLUTION ago.
    A write of its own, apart from verification: reads must not depend on it."""
    now = now or datetime.now(UTC)
    stale = or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_RESOLUTION)
    session.execute(
        update(ApiToken).where(ApiToken.token_hash == digest, stale).values(last_used_at=now.replace(microsecond=0))
    )


def list_tokens(session: Session, viewer: TokenIdentity | None = None) -> list[ApiToken]:
    """Every token, live or not, newest first; for a viewer that is not admin, only the tokens it made."""
    query = select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    if viewer is not None and ADMIN not in viewer.scopes:
        query = query.where(ApiToken.creator_id == viewer.id)
    return list(session.scalars(query))


def token_state(token: ApiToken, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    now = now or datetime.now(UTC)
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def live_token(
    session: Session, name: str, *, now: datetime | None = None, viewer: TokenIdentity | None = None
) -> ApiToken:
    """The live token named name (one the viewer made, unless it is admin); NotFound otherwise."""
    query = select(ApiToken).where(ApiToken.name == name, _live(now or datetime.now(UTC)))
    if viewer is not None and ADMIN not in viewer.scopes:
        query = query.where(ApiToken.creator_id == viewer.id)
    row = session.scalar(query)
    if row is None:
        made = f" that token {viewer.name!r} made" if viewer is not None and ADMIN not in viewer.scopes else ""
        raise NotFound(f"no live token named {name!r}{made}")
    return row


def revoke_token(
    session: Session, name: str, *, now: datetime | None = None, viewer: TokenIdentity | None = None
) -> ApiToken:
    """Revoke the live token named name (one the viewer made, unless it is admin); NotFound if there is none."""
    now = now or datetime.now(UTC)
    row = live_token(session, name, now=now, viewer=viewer)
    row.revoked_at = now.replace(microsecond=0)
    session.flush()
    return row


def check_grant(creator: TokenIdentity, scopes: Iterable[str]) -> None:
    """MissingScope unless creator may hand out (or take back) every scope in scopes: its own, or any if admin."""
    for scope in sorted(set(scopes)):
        if not creator.allows(scope):
            raise MissingScope(scope, creator.name)
