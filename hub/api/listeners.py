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

from collections.abc import Iterable

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from hub.config import Settings
from hub.triggers_service import TriggersService, incoming_request
from hub.wsgi.server import Environ, StartResponse, WSGIApp
from triggers.events import Incoming
from triggers.models import CATALOG
from triggers.sink import live

bp = Blueprint("listeners", __name__)

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
# Where the receivers live: EventListener sinks and catalogs' push webhooks.
RECEIVER_PREFIXES = ("/v1/listeners/", "/v1/webhooks/")


def service() -> TriggersService:
    return current_app.extensions["taskhub.triggers"]


@bp.route("/v1/listeners/<namespace>/<name>", defaults={"path": ""}, methods=METHODS)
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


def webhooks_apart(hub: WSGIApp, receivers: WSGIApp) -> WSGIApp:
    """The hub with its webhook receivers (`sink_app`) served apart from its other routes, as upstream serves each
    listener's sink on its own: providers send no API token (an Authorization header there is the provider's, for
    interceptors to check), so the access gate, rate limits, CORS and the response cache have nothing to do for
    them, and they answer in private mode too, authenticated by the listener's interceptors or the catalog's
    webhook secret."""

    def route(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(RECEIVER_PREFIXES):
            return receivers(environ, start_response)
        return hub(environ, start_response)

    return route
