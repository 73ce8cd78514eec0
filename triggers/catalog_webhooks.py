"""Catalogs that refresh on push: a catalog added from a git URL has a webhook secret (made on first use, sealed
with the hub's secrets key); a push event signed with it for the catalog's branch queues its sync, so the new
version is served seconds after the push instead of at the next scheduled refresh. Other branches and other
events are recorded and ignored.

Signatures as each provider sends them: GitHub `X-Hub-Signature-256` (HMAC-SHA256 of the body), Gitea the same or
`X-Gitea-Signature` (bare hex), GitLab `X-Gitlab-Token` (the secret itself), compared in constant time.
"""

from __future__ import annotations

import hmac
import json
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from catalog.errors import InvalidRequest, NotFound
from catalog.models import OCI
from catalog.sources import is_git_url
from catalog.sync import get_catalog
from jobs import CATALOG_SYNC, JobQueue
from runner.objects.sealing import Sealer
from triggers.events import EventLog, Incoming
from triggers.interceptors.common import check_signature

PUSH_EVENTS = {"X-Github-Event": "push", "X-Gitea-Event": "push", "X-Gitlab-Event": "Push Hook"}


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, object]


def webhook_secret(engine: Engine, sealer: Sealer, name: str) -> str:
    """The catalog's webhook secret, made (and sealed) on first use; InvalidRequest for a catalog not from git."""
    with Session(engine) as session, session.begin():
        catalog = get_catalog(session, name)
        if catalog.provider == OCI or not is_git_url(catalog.source):
            raise InvalidRequest(
                f"catalog {catalog.name} is read from {catalog.source}, not a git URL: only git catalogs refresh "
                "on push",
                reason="not-git",
            )
        if catalog.webhook_secret is None:
            catalog.webhook_secret = sealer.seal({"secret": secrets.token_hex(20).encode()})
        return sealer.open(catalog.webhook_secret)["secret"].decode()


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name.lower()), None)


def verified(headers: list[tuple[str, str]], body: bytes, secret: str) -> str | None:
    """None when the request carries the secret's signature (or GitLab's token), else why not."""
    if (token := _header(headers, "X-Gitlab-Token")) is not None:
        return None if hmac.compare_digest(token.encode(), secret.encode()) else "X-Gitlab-Token is not the secret"
    if (signature := _header(headers, "X-Hub-Signature-256")) is not None:
        return check_signature(signature, body, secret.encode())
    if (bare := _header(headers, "X-Gitea-Signature")) is not None:
        return check_signature(f"sha256={bare}", body, secret.encode())
    return "no signature: send X-Hub-Signature-256 (GitHub, Gitea) or X-Gitlab-Token (GitLab)"


@dataclass
class CatalogWebhooks:
    engine: Engine
    sealer: Sealer
    events: EventLog
    queue: JobQueue

    def receive(self, incoming: Incoming) -> WebhookAnswer:
        """Verifies and records one delivery; a push to the catalog's branch queues its sync (202)."""
        event_id = str(uuid.uuid4())
        try:
            secret = webhook_secret(self.engine, self.sealer, incoming.name)
        except (NotFound, InvalidRequest) as exc:
            status = 404 if isinstance(exc, NotFound) else 400
            self.events.refused(incoming, event_id, status, str(exc))
            return WebhookAnswer(status, {"message": str(exc), "eventID": event_id})
        problem = verified(incoming.headers, incoming.body, secret)
        if problem is not None:
            self.events.refused(incoming, event_id, 401, problem)
            return WebhookAnswer(401, {"message": problem, "eventID": event_id})
        kind = next(((h, v) for h, v in incoming.headers if h.title() in PUSH_EVENTS), None)
        reason, job = self._decide(incoming, kind)
        recorded = self.events.accepted(incoming, event_id, status=202)
        if recorded.duplicate_of is None:
            self.events.finish(recorded.id, [], reason=reason)
            if job is not None:
                self.events.set_job(recorded.id, job)
        else:
            reason = f"delivery already received as event {recorded.duplicate_of}: ignored"
        return WebhookAnswer(202, {"message": reason, "eventID": event_id, "job": job})

    def _decide(self, incoming: Incoming, kind: tuple[str, str] | None) -> tuple[str, int | None]:
        if kind is None or kind[1] != PUSH_EVENTS[kind[0].title()]:
            return f"{kind[1] if kind else 'an event'} is not a push: ignored", None
        try:
            payload = json.loads(incoming.body)
        except ValueError:
            return "the push event's body is not JSON: ignored", None
        if not isinstance(payload, dict):
            return "the push event's body is not a JSON object: ignored", None
        ref = str(payload.get("ref") or "")
        with Session(self.engine) as session:
            catalog = get_catalog(session, incoming.name)
            wanted = catalog.revision or _default_branch(payload)
            name = catalog.name
        if not wanted or ref not in (f"refs/heads/{wanted}", wanted):
            return f"push to {ref or '(no ref)'}: the catalog follows {wanted or 'the default branch'}; ignored", None
        job = self.queue.enqueue(CATALOG_SYNC, name, created_by="webhook")
        joined = " (joined the one already queued)" if job.coalesced else ""
        return f"push to {ref}: sync of {name} queued as job {job.id}{joined}", job.id


def _default_branch(payload: dict[str, object]) -> str:
    """The repository's default branch as GitHub and Gitea (repository) or GitLab (project) send it."""
    for key in ("repository", "project"):
        holder = payload.get(key)
        if isinstance(holder, dict) and isinstance(holder.get("default_branch"), str):
            return str(holder["default_branch"])
    return ""
