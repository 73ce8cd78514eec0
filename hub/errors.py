"""The one place where domain errors become HTTP answers, one body shape per API family."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, Response, current_app, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from catalog.errors import (
    BackendUnavailable,
    BundleError,
    Conflict,
    InvalidReference,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RegistryError,
    RegistryNotAllowed,
    RegistryNotFound,
    TaskhubError,
)
from runner.objects.sealing import SealingError

log = logging.getLogger(__name__)

# Path prefixes answered in Tekton Hub's (goa) error shape.
TEKTON_API_PREFIXES = ("/v1/", "/v1", "/catalog/", "/categories", "/query", "/resource", "/resources")
# Path prefix answered in Artifact Hub's error shape.
ARTIFACT_HUB_API_PREFIX = "/api/"


def status_of(error: TaskhubError) -> tuple[int, str]:
    if isinstance(error, NotFound | RegistryNotFound):
        return 404, "not-found"
    if isinstance(error, PayloadTooLarge):
        return 413, error.reason
    if isinstance(error, InvalidRequest):
        return 400, error.reason
    if isinstance(error, InvalidReference):
        return 400, "invalid-reference"
    if isinstance(error, RegistryNotAllowed):
        return 403, "registry-not-allowed"
    if isinstance(error, Conflict):
        return 409, "conflict"
    if isinstance(error, BackendUnavailable):
        return 503, "backend-unavailable"
    if isinstance(error, SealingError):  # this process was not given the key the database's secrets were sealed with
        return 503, "secrets-key"
    if isinstance(error, BundleError):
        return 422, "invalid-bundle"
    if isinstance(error, RegistryError):  # the registry is down, refused our credentials, or served bad content
        return 502, "registry-error"
    return 500, "internal-error"


def goa_error(status: int, name: str, message: str) -> Response:
    """Tekton Hub's error body (goa's ErrorResponse), sent as its goa server sends it: as application/json (goa's
    ResponseEncoder), and with a ``Goa-Error`` header naming the error for the errors its design declares
    (``not-found``, ``internal-error``, ``invalid-kind``, ...), not for goa's own request validation errors
    (``invalid_field_type``, ``invalid_enum_value``, ...), which its generic ErrorEncoder writes without one
    (tektoncd/hub: api/v1/gen/http/resource/server/encode_decode.go; goadesign/goa: http/encoding.go)."""
    response = jsonify(
        name=name,
        id=secrets.token_urlsafe(6),  # goa.NewErrorID: 6 random bytes, URL-safe base64, 8 characters
        message=message,
        temporary=False,
        timeout=False,
        fault=status >= 500,
    )
    response.status_code = status
    if "_" not in name:
        response.headers["Goa-Error"] = name
    return response


def page_not_found() -> Response:
    """What Tekton Hub's router (goa's chi muxer, with Go's http.NotFound) answers for a path it does not serve."""
    response = Response("404 page not found\n", status=404, content_type="text/plain; charset=utf-8")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def artifacthub_error(status: int, message: str) -> Response:
    """Artifact Hub's error body ({"message": ...}, as its RenderErrorJSON writes it)."""
    response = jsonify(message=message)
    response.status_code = status
    return response


def api_error(status: int, name: str, message: str) -> Response:
    """The error body of the API family the request belongs to."""
    if request.path.startswith(ARTIFACT_HUB_API_PREFIX):
        return artifacthub_error(status, message)
    return goa_error(status, name, message)


def _wants_api_error() -> bool:
    return request.path.startswith((*TEKTON_API_PREFIXES, ARTIFACT_HUB_API_PREFIX))


# The error names of the API families' JSON bodies for HTTP errors Flask raises itself.
HTTP_ERROR_NAMES = {
    404: "not-found",
    405: "method-not-allowed",
    413: "request-too-large",
    415: "unsupported-media-type",
}


# Blueprints of the web UI, whose routes may share a path's shape with an API route but are not the API's.
WEB_BLUEPRINTS = frozenset({"web", "events_web", "runs_web"})
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _api_methods() -> list[str]:
    """The methods an API route takes at the request's path (a web page matching it too does not count)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in _METHODS:
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        if str(endpoint).split(".", 1)[0] not in WEB_BLUEPRINTS:
            allowed.append(method)
    return allowed


def register(app: Flask) -> None:
    @app.before_request
    def refuse_nul() -> None:
        # No database stores NUL in text (PostgreSQL refuses it outright): a clear 400 instead of a driver error.
        environ = request.environ
        query = environ.get("QUERY_STRING", "")
        if "\x00" not in environ.get("PATH_INFO", "") and "%00" not in query and "\x00" not in query:
            return  # nothing decodes to NUL: the decoded path and arguments need not be looked at
        if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
            raise InvalidRequest("the request contains a NUL character", reason="bad-request")

    @app.errorhandler(TaskhubError)
    def domain_error(error: TaskhubError) -> Response | tuple[str, int]:
        status, name = status_of(error)
        if isinstance(error, RegistryError) and status >= 500:
            # A registry failed, refused or misled us: the reason is the news, there is no bug to chase.
            log.warning("%s %s: %s: %s", request.method, request.path, type(error).__name__, error)
        elif status >= 500 and not isinstance(error, BackendUnavailable):  # that one is the operator's choice
            log.error("unexpected %s: %s", type(error).__name__, error)
        if _wants_api_error():
            return api_error(status, name, str(error))
        return render_template("error.html", status=status, message=str(error)), status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response | tuple[str, int]:
        status = error.code or 500
        # No web page lives under the APIs: a path only a web route (or none) matches is not an API operation.
        routed = request.url_rule is not None and request.blueprint not in WEB_BLUEPRINTS
        if _wants_api_error() and status in (404, 405) and not routed:
            allowed = _api_methods()
            if allowed:  # an API operation lives here, under other methods
                response = api_error(405, "method-not-allowed", "The method is not allowed for the requested URL.")
                response.headers["Allow"] = ", ".join(allowed)
                return response
            if request.path.startswith(TEKTON_API_PREFIXES):
                return page_not_found()  # no route: what upstream's router says, not a resource that was not found
            status = 404
        if _wants_api_error():
            name = HTTP_ERROR_NAMES.get(status, "bad-request")
            return api_error(status, name, (error.description or error.name) if status == error.code else "not found")
        page = Response(render_template("error.html", status=status, message=error.description), status)
        if status == 405:
            page.headers["Allow"] = ", ".join(getattr(error, "valid_methods", None) or [])
        return page

    @app.errorhandler(OperationalError)
    def database_down(error: OperationalError) -> Response | tuple[str, int]:
        log.error("database unavailable: %s", " ".join(str(error.orig).split()))
        message = "the hub's database is unavailable; try again shortly"
        if _wants_api_error():
            return api_error(503, "unavailable", message)
        return render_template("error.html", status=503, message=message), 503

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response | tuple[str, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_api_error():
            return api_error(500, "internal-error", "internal error; the hub's log has the details")
        return render_template("error.html", status=500, message="Internal error."), 500
