"""GET /metrics: every taskhub metric in Prometheus' text format (hub/metrics.py). Behind the access gate like any
page (a private hub's scraper sends a token with the `read` scope), never rate limited or cached."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from hub import db
from hub.metrics import exposition

bp = Blueprint("metrics_api", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    return Response(exposition(db.engine()), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
