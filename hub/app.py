"""create_app, the hub's one composition root: settings, database engine, caches, blueprints and WSGI layers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.config import Settings
from hub.logs import configure_logging

if TYPE_CHECKING:  # Flask is imported by create_app, so the command line starts without it.
    from flask import Flask

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _template_folder() -> str:
    """templates/ of a source checkout, or hub/templates of an installed wheel."""
    installed = Path(__file__).resolve().parent / "templates"
    return str(TEMPLATES if TEMPLATES.is_dir() else installed)


def create_app(config: Mapping[str, Any] | Settings | None = None) -> Flask:
    """Build the hub: settings, database engine, response cache and blueprints."""
    from flask import Flask

    from catalog.db import make_engine
    from hub import db, errors
    from hub.api import admin as admin_api
    from hub.api import artifacthub as artifacthub_api
    from hub.api import events as events_api
    from hub.api import jobs as jobs_api
    from hub.api import listeners as listeners_api
    from hub.api import metrics as metrics_api
    from hub.api import objects as objects_api
    from hub.api import openapi as openapi_api
    from hub.api import resolve as resolve_api
    from hub.api import runs as runs_api
    from hub.api import tekton as tekton_api
    from hub.metrics import RouteNames, count_requests
    from hub.services import Services
    from hub.web import events as events_web
    from hub.web import jobs as jobs_web
    from hub.web import pages as web_pages
    from hub.web import run_stats as run_stats_web
    from hub.web import runs as runs_web
    from hub.wsgi import auth
    from hub.wsgi.cors import cross_origin
    from hub.wsgi.health import health_checks
    from hub.wsgi.response_cache import HubRequest, ResponseCache
    from hub.wsgi.server import behind_proxies

    if isinstance(config, Settings):
        settings = config
    elif config is None:
        settings = Settings.from_env()
    else:
        settings = Settings.from_mapping(config)
    configure_logging(settings.log_format, settings.log_level)

    app = Flask(__name__, template_folder=_template_folder())
    app.request_class = HubRequest
    app.config["TASKHUB"] = settings
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app.json.sort_keys = False  # type: ignore[attr-defined]
    engine = make_engine(settings.database_url)
    db.init_app(app, engine)
    services = Services(settings, engine)
    app.extensions["taskhub.services"] = services
    cache = ResponseCache(
        engine, settings.generation_check_interval, settings.cache_max_age, settings.response_cache_bytes
    )
    app.extensions["taskhub.response_cache"] = cache
    app.wsgi_app = cache.wrap(app.wsgi_app)  # type: ignore[method-assign,assignment]
    app.register_blueprint(tekton_api.bp)
    app.register_blueprint(artifacthub_api.bp)
    app.extensions["taskhub.resolvers"] = services.resolvers
    app.register_blueprint(resolve_api.bp)
    app.register_blueprint(web_pages.bp)
    app.extensions["taskhub.runs"] = services.runs.records
    app.register_blueprint(runs_api.bp)
    app.register_blueprint(runs_web.bp)
    app.register_blueprint(run_stats_web.bp)
    app.register_blueprint(jobs_web.bp)
    app.extensions["taskhub.objects"] = services.objects
    app.register_blueprint(objects_api.bp)
    app.extensions["taskhub.triggers"] = services.triggers
    app.register_blueprint(events_api.bp)
    app.register_blueprint(events_web.bp)
    errors.register(app)
    app.register_blueprint(admin_api.bp)
    app.register_blueprint(jobs_api.bp)
    app.register_blueprint(openapi_api.bp)
    app.register_blueprint(metrics_api.bp)
    auth.init_app(app)  # it wraps the whole app, response cache included
    # Outside the access gate and the rate limits: probes carry no token and are never limited.
    app.wsgi_app = health_checks(app.wsgi_app, engine)  # type: ignore[method-assign,assignment]
    # Outside the access gate: a browser's preflight carries no token, and refusals need the headers too.
    app.wsgi_app = cross_origin(app.wsgi_app, settings.cors_origins)  # type: ignore[method-assign,assignment]
    receivers = listeners_api.receivers_app(settings, services.triggers)
    app.wsgi_app = listeners_api.webhooks_apart(app.wsgi_app, receivers)  # type: ignore[method-assign,assignment]
    # Last, so outermost: the client's address and scheme are settled before anything reads them.
    app.wsgi_app = behind_proxies(app.wsgi_app, settings.trusted_proxies)  # type: ignore[method-assign,assignment]
    # Outermost: every request is counted, refused, cached and probed ones too.
    app.wsgi_app = count_requests(app.wsgi_app, RouteNames(app.url_map))  # type: ignore[method-assign,assignment]
    return app
