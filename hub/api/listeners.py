"""EventListener sinks on the hub: `/v1/listeners/{namespace}/{name}` answers as upstream's sink does
(tektoncd/triggers: pkg/sink/sink.go, pkg/adapter/adapter.go): any method is an event, 202 with the event's ids
before any interceptor runs, 400 for a body that is not a JSON object unless payload validation is off, and
`.../live` is 200 `ok`. Unlike upstream, bodies over TASKHUB_TRIGGERS_MAX_BODY_BYTES (10 MiB) are a 413, a
listener that does not exist is a 404, and every request is recorded (GET /v1/events).

Whatever follows the listener's name is the event's path: a provider posting to `/v1/listeners/ns/el/p?q=1` is
seen by interceptors and CEL as `/p?q=1`, as the listener's own Service would see it. The sink takes no API token:
providers cannot send one, and it answers in private mode too; the listener's interceptors authenticate events.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.utils import get_content_type

from hub.config import Settings
from hub.triggers_service import TriggersService, incoming_request
from hub.wsgi.server import ROUTE_KEY, Environ, StartResponse, WSGIApp
from triggers.events import Incoming
from triggers.models import CATALOG
from triggers.sink import live

bp = Blueprint("listeners", __name__)

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Where the receivers live: EventListener sinks and catalogs' push webhooks.
LISTENERS = "/v1/listeners/"
RECEIVER_PREFIXES = (LISTENERS, "/v1/webhooks/")
LISTENER_RULE = "/v1/listeners/<namespace>/<name>"


def service() -> TriggersService:
    return current_app.extensions["taskhub.triggers"]


@bp.route(LISTENER_RULE, defaults={"path": ""}, methods=METHODS)
@bp.route("/v1/listeners/<namespace>/<name>/<path:path>", methods=METHODS)
def sink(namespace: str, name: str, path: str) -> Response:
    if path == "live":
        answer = live()
        return Response(answer.body, answer.status, content_type=answer.content_type)
    too_large, body, size = _body()
    url = "/" + path + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
    headers = list(request.headers.items())
    incoming = incoming_request(namespace[:63], name[:253], request.method, url, headers, body, size)
    answer = service().receive(incoming, too_large=too_large)
    response = Response(answer.body, answer.status, content_type=answer.content_type)
    response.headers.extend(answer.headers)
    response.headers["Cache-Control"] = "no-store"
    if too_large:
        response.headers["Connection"] = "close"  # the rest of the body is not read
    return response


def _body() -> tuple[bool, bytes, int]:
    """(over the limit, the body, its size) of the request, read once, at most the sink's limit."""
    settings: Settings = current_app.config["TASKHUB"]
    request.max_content_length = settings.triggers_max_body_bytes
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return True, b"", request.content_length or 0
    return False, body, len(body)


@bp.post("/v1/webhooks/catalogs/<name>")
def catalog_webhook(name: str) -> tuple[Response, int]:
    """A catalog's push webhook (`taskhub catalog webhook NAME`): a signed push to its branch queues its sync."""
    too_large, body, size = _body()
    headers = list(request.headers.items())
    incoming = Incoming(CATALOG, "", name[:253], request.method, request.full_path.rstrip("?"), headers, body, size)
    if too_large:
        return jsonify(message="request body over the limit"), 413
    answer = service().catalog_webhooks.receive(incoming)
    response = jsonify(answer.body)
    response.headers["Cache-Control"] = "no-store"
    return response, answer.status


def sink_app(settings: Settings, triggers: TriggersService) -> Flask:
    """A WSGI app serving only these receivers: the hub's own (`webhooks_apart`), and `taskhub triggers serve`'s
    for the listeners of a cluster."""
    from hub import errors
    from hub.wsgi.response_cache import HubRequest

    app = Flask(__name__)
    app.request_class = HubRequest  # it notes the route for the metrics layer
    app.config["TASKHUB"] = settings
    app.extensions["taskhub.triggers"] = triggers
    app.register_blueprint(bp)
    errors.register(app)
    return app


def receivers_app(settings: Settings, triggers: TriggersService) -> WSGIApp:
    """The hub's webhook receivers (`sink_app`), with events to a listener's own URL answered before Flask.

    A provider's event is the one request the hub answers in bulk, and Flask's request context, routing and
    response cost as much as everything the sink does (bench/events.py); so an event POSTed (or PUT...) to
    `/v1/listeners/NS/NAME` with a Content-Length within the limit is answered here, from the same
    TriggersService.receive, with the same answer Flask would give. Everything else (`/live`, a path after the
    name, a name beyond ASCII, a chunked or oversized body, a NUL) goes to Flask, which has the rest of the rules;
    an error while answering goes to Flask's error handlers."""
    flask = sink_app(settings, triggers)
    limit = settings.triggers_max_body_bytes

    def answer(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        event = _plain_event(environ, limit)
        if event is None:
            return flask.wsgi_app(environ, start_response)
        namespace, name, length = event
        body = _read(environ["wsgi.input"], length)
        if len(body) < length:  # the client went away: nobody reads an answer
            start_response("400 BAD REQUEST", [("Content-Length", "0")])
            return [b""]
        environ[ROUTE_KEY] = LISTENER_RULE
        query = environ.get("QUERY_STRING", "")
        url, headers = "/" + (f"?{query}" if query else ""), list(EnvironHeaders(environ).items())
        incoming = incoming_request(namespace[:63], name[:253], environ["REQUEST_METHOD"], url, headers, body, length)
        try:
            sunk = triggers.receive(incoming)
        except Exception as exc:  # Flask's error handlers answer it and log it (not the event again: it may be kept)
            with flask.request_context(environ):
                response = flask.make_response(flask.handle_user_exception(exc))
            return response(environ, start_response)
        out = [("Content-Type", get_content_type(sunk.content_type, "utf-8")), ("Content-Length", str(len(sunk.body))),
               *sunk.headers, ("Cache-Control", "no-store")]  # fmt: skip
        start_response(f"{sunk.status} {HTTP_STATUS_CODES[sunk.status].upper()}", out)
        return [sunk.body]

    return answer


def _plain_event(environ: Environ, limit: int) -> tuple[str, str, int] | None:
    """(namespace, name, body length) of an event the sink answers before Flask (see receivers_app), else None."""
    path = environ.get("PATH_INFO", "")
    if not path.startswith(LISTENERS) or not path.isascii() or environ.get("REQUEST_METHOD") not in METHODS:
        return None  # a name beyond ASCII: Flask decodes the path's UTF-8
    namespace, _, name = path[len(LISTENERS) :].partition("/")
    query = environ.get("QUERY_STRING", "")
    if not namespace or not name or "/" in name or "\x00" in path or "\x00" in query or "%00" in query:
        return None
    length = environ.get("CONTENT_LENGTH", "")
    if not length.isascii() or not length.isdigit() or len(length) > 18 or int(length) > limit:
        return None
    if "HTTP_TRANSFER_ENCODING" in environ:
        return None
    return namespace, name, int(length)


def _read(stream: io.RawIOBase, length: int) -> bytes:
    """`length` bytes of a request body, or fewer when the client went away."""
    parts, left = [], length
    while left:
        part = stream.read(left)
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def webhooks_apart(hub: WSGIApp, receivers: WSGIApp) -> WSGIApp:
    """The hub with its webhook receivers (`receivers_app`) served apart from its other routes, as upstream serves
    each listener's sink on its own: providers send no API token (an Authorization header there is the provider's,
    for interceptors to check), so the access gate, rate limits, CORS and the response cache have nothing to do
    for them, and they answer in private mode too, authenticated by the listener's interceptors or the catalog's
    webhook secret."""

    def route(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(RECEIVER_PREFIXES):
            return receivers(environ, start_response)
        return hub(environ, start_response)

    return route
