"""The one place where domain errors become HTTP answers, one body shape per API family."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, Response, jsonify, render_template, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from catalog.errors import Conflict, InvalidRequest, NotFound, TaskhubError

log = logging.getLogger(__name__)

# Path prefixes answered in Tekton Hub's (goa) error shape.
TEKTON_API_PREFIXES = ("/v1/", "/v1", "/catalog/", "/categories", "/query", "/resource", "/resources")


def status_of(error: TaskhubError) -> tuple[int, str]:
    if isinstance(error, NotFound):
        return 404, "not-found"
    if isinstance(error, InvalidRequest):
        return 400, error.reason
    if isinstance(error, Conflict):
        return 409, "conflict"
    return 500, "internal-error"


def goa_error(status: int, name: str, message: str) -> Response:
    """Tekton Hub's error body (goa ErrorResult)."""
    response = jsonify(
        name=name,
        id=secrets.token_urlsafe(6),
        message=message,
        temporary=False,
        timeout=False,
        fault=status >= 500,
    )
    response.status_code = status
    response.content_type = "application/vnd.goa.error"
    return response


def _wants_api_error() -> bool:
    return request.path.startswith(TEKTON_API_PREFIXES)


def register(app: Flask) -> None:
    @app.before_request
    def refuse_nul() -> None:
        # No database stores NUL in text (PostgreSQL refuses it outright): a clear 400 instead of a driver error.
        if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
            raise InvalidRequest("the request contains a NUL character", reason="bad-request")

    @app.errorhandler(TaskhubError)
    def domain_error(error: TaskhubError) -> Response | tuple[str, int]:
        status, name = status_of(error)
        if status >= 500:
            log.error("unexpected %s: %s", type(error).__name__, error)
        if _wants_api_error():
            return goa_error(status, name, str(error))
        return render_template("error.html", status=status, message=str(error)), status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response | tuple[str, int]:
        status = error.code or 500
        if _wants_api_error():
            name = {404: "not-found", 405: "method-not-allowed", 413: "request-too-large"}.get(status, "bad-request")
            return goa_error(status, name, error.description or error.name)
        return render_template("error.html", status=status, message=error.description), status

    @app.errorhandler(OperationalError)
    def database_down(error: OperationalError) -> Response | tuple[str, int]:
        log.error("database unavailable: %s", " ".join(str(error.orig).split()))
        message = "the hub's database is unavailable; try again shortly"
        if _wants_api_error():
            return goa_error(503, "unavailable", message)
        return render_template("error.html", status=503, message=message), 503

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response | tuple[str, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_api_error():
            return goa_error(500, "internal-error", "internal error; the hub's log has the details")
        return render_template("error.html", status=500, message="Internal error."), 500
