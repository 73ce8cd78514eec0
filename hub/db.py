"""The request-scoped database session of the web app."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from catalog.queries import CatalogIndex


def init_app(app: Flask, engine: Engine) -> None:
    app.extensions["taskhub.engine"] = engine
    app.teardown_appcontext(_close_session)


def engine() -> Engine:
    return current_app.extensions["taskhub.engine"]


def session() -> Session:
    if "db_session" not in g:
        g.db_session = Session(engine())
    return g.db_session


def index() -> CatalogIndex:
    return CatalogIndex(session())


def _close_session(_exc: BaseException | None) -> None:
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.close()
