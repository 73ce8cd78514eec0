"""Cross-origin access to the Tekton Hub API, answered as tektoncd/hub's goa CORS plugin answers it.

Upstream allows every origin: a request with an ``Origin`` gets it echoed back in ``Access-Control-Allow-Origin``
with ``Vary: Origin``, and every ``OPTIONS`` on an API path is answered 204, a preflight (one with
``Access-Control-Request-Method``) with the allowed methods too. The v1 API allows GET
(tektoncd/hub: api/v1/design/api.go, api/v1/gen/http/resource/server/server.go HandleResourceOrigin); the
unversioned one, whose category and status services also answer ``/v1/categories`` and ``/v1``, allows GET, POST
and PUT with the ``Content-Type`` and ``Authorization`` headers (api/design/api.go).

``TASKHUB_CORS_ORIGINS`` narrows the origins (comma-separated, ``*`` for any, empty for none); taskhub's own APIs
(runs, resolve, tokens) are not opened to other origins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hub.wsgi.server import Environ, StartResponse, WSGIApp

ANY = "*"
# Path patterns of each API, with the methods and request headers its preflight answer allows.
_V1 = re.compile(r"^/v1/(query|resources|catalogs|resource/.+|schema/swagger\.json)$")
_UNVERSIONED = re.compile(
    r"^/(|v1|categories|v1/categories|query|resources|resource/.+|catalog/.+|system/.+|schema/swagger\.json)$"
)
_V1_POLICY = ("GET", None)
_UNVERSIONED_POLICY = ("GET, POST, PUT", "Content-Type, Authorization")


def parse_origins(setting: str) -> frozenset[str] | None:
    """The allowed origins of TASKHUB_CORS_ORIGINS: None for any (``*``), an empty set for none."""
    origins = {o.strip().rstrip("/").lower() for o in setting.split(",") if o.strip()}
    return None if ANY in origins else frozenset(origins)


def policy(path: str) -> tuple[str, str | None] | None:
    """(allowed methods, allowed headers) for a path of the Tekton Hub API, None for other paths."""
    if _V1.match(path):
        return _V1_POLICY
    if _UNVERSIONED.match(path):
        return _UNVERSIONED_POLICY
    return None


def cross_origin(app: WSGIApp, setting: str) -> WSGIApp:
    """A WSGI layer that adds upstream's CORS headers and answers OPTIONS on the Tekton Hub API's paths."""
    allowed = parse_origins(setting)

    def answer(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        origin = environ.get("HTTP_ORIGIN", "")
        if not origin and environ.get("REQUEST_METHOD") != "OPTIONS":
            return app(environ, start_response)  # neither a browser's cross-origin request nor a preflight
        rules = policy(environ.get("PATH_INFO", ""))
        if rules is None:
            return app(environ, start_response)
        headers: list[tuple[str, str]] = []
        if origin and (allowed is None or origin.rstrip("/").lower() in allowed):
            headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
            if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
                methods, request_headers = rules
                headers.append(("Access-Control-Allow-Methods", methods))
                if request_headers:
                    headers.append(("Access-Control-Allow-Headers", request_headers))
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            start_response("204 No Content", headers)
            return []
        if not headers:
            return app(environ, start_response)

        def with_cors(status: str, response_headers: list[tuple[str, str]], exc_info: object = None) -> object:
            vary = [v for k, v in response_headers if k.lower() == "vary"]
            kept = [(k, v) for k, v in response_headers if k.lower() not in ("vary", "access-control-allow-origin")]
            merged = [(k, ", ".join([*vary, v]) if k == "Vary" else v) for k, v in headers]
            return (
                start_response(status, kept + merged, exc_info) if exc_info else start_response(status, kept + merged)
            )

        return app(environ, with_cors)

    return answer
