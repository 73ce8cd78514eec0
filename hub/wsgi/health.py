"""/livez and /readyz: what a kubelet, a load balancer or a person asks before sending the hub traffic.

They are answered by a WSGI layer outside the access gate, the rate limits and the response cache: a probe carries
no token, must never be limited away, and must not be answered from a cache. Kubernetes' own API server names its
probes the same way (kubernetes/kubernetes: staging/src/k8s.io/apiserver/pkg/server/healthz).

- /livez: the process answers requests. It touches nothing else, so a database outage does not get every hub
  restarted at once.
- /readyz: the database answers and its schema is at the revision this hub's migrations end at, or at a later one
  made by a newer release (an upgrade migrates first, and the old hubs keep serving until they are replaced); 503
  with the failing check otherwise (a hub started before `taskhub db upgrade` ran: an empty database, or one at
  an older revision).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping

from sqlalchemy import Engine

from hub.wsgi.server import Environ, StartResponse, WSGIApp

LIVE_PATH = "/livez"
READY_PATH = "/readyz"
PROBE_METHODS = frozenset({"GET", "HEAD"})


@functools.cache
def _revisions() -> tuple[str, frozenset[str]]:
    """This release's migration head and every revision before it (read once per process)."""
    from alembic.script import ScriptDirectory

    from catalog.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    return script.get_current_head() or "", frozenset(r.revision for r in script.walk_revisions())


def head_revision() -> str:
    """The revision this release's migrations end at."""
    return _revisions()[0]


def readiness(engine: Engine) -> tuple[bool, dict[str, str]]:
    """Whether the hub can serve, and each check's outcome: "ok" or why not, in one line."""
    from catalog.db import current_revision

    try:
        revision = current_revision(engine)
    except Exception as exc:  # any driver error: the database cannot be reached or read
        return False, {"database": " ".join(str(exc).split())[:300]}
    checks = {"database": "ok"}
    expected, known = _revisions()
    if revision == expected or (revision is not None and revision not in known):
        # A revision this release does not know was made by a newer one, whose migrations keep the schema usable
        # by the release before it: during a rolling upgrade (migrations first) the old hubs keep serving.
        checks["migrations"] = "ok"
    elif revision is None:
        checks["migrations"] = f"the database is empty: run `taskhub db upgrade` (to {expected})"
    else:
        needs = f"this hub needs {expected}: run `taskhub db upgrade`"
        checks["migrations"] = f"the database is at revision {revision}, {needs}"
    return all(value == "ok" for value in checks.values()), checks


def health_checks(app: WSGIApp, engine: Engine) -> WSGIApp:
    """A WSGI layer answering /livez and /readyz itself and passing every other request to app."""

    def answer(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in (LIVE_PATH, READY_PATH):
            return app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "")
        if method not in PROBE_METHODS:
            body = {"status": "method not allowed"}
            return _json(start_response, "405 Method Not Allowed", body, method, [("Allow", "GET, HEAD")])
        if path == LIVE_PATH:
            return _json(start_response, "200 OK", {"status": "ok"}, method)
        ready, checks = readiness(engine)
        status = "200 OK" if ready else "503 Service Unavailable"
        return _json(start_response, status, {"status": "ok" if ready else "unavailable", "checks": checks}, method)

    return answer


def _json(
    start_response: StartResponse, status: str, body: Mapping[str, object], method: str,
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:  # fmt: skip
    data = json.dumps(body).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("Cache-Control", "no-store")]
    start_response(status, headers + (extra or []))
    return [] if method == "HEAD" else [data]
