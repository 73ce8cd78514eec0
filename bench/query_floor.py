"""The floor of bench/scale.py's uncached reads: the least any Flask hub does for them, served as the hub is.

Two views, each running the one SQL statement taskhub runs for the same request and answering its rows as JSON:
GET /v1/resource/{catalog}/{kind}/{name} (catalog.queries.RESOURCE_BY_NAME) and GET /v1/query?name=TEXT
(catalog.search's ranked search with /v1/query's limit). No access gate, no response cache, no records, no
Tekton Hub shapes: what is left is the server, Flask, the connection pool and the database.
`python bench/query_floor.py DATABASE_URL --port P` serves it with hub.wsgi.server.serve, as `taskhub serve`
serves the hub.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from flask import Flask, Response, abort, request

from catalog.db import make_engine
from catalog.queries import RESOURCE_BY_NAME, parse_kind, resource_statement
from catalog.search import SearchQuery, ordered, shown
from hub.api.tekton import MAX_LIMIT
from hub.wsgi.server import serve


def floor_app(database_url: str) -> Flask:
    app = Flask(__name__)
    engine = make_engine(database_url)

    def rows_json(rows: list[dict[str, object]]) -> Response:
        return Response(json.dumps(rows, default=str), mimetype="application/json")

    @app.get("/v1/resource/<catalog>/<kind>/<name>")
    def resource(catalog: str, kind: str, name: str) -> Response:
        params = {"catalog": catalog.lower(), "kind": parse_kind(kind, path=True), "name": name}
        with engine.connect() as conn:
            row = conn.execute(RESOURCE_BY_NAME, params).first()
        if row is None:
            abort(404)
        return rows_json([row._asdict()])

    @app.get("/v1/query")
    def query() -> Response:
        search = SearchQuery(text=request.args.get("name", ""), limit=MAX_LIMIT)
        stmt = ordered(search, resource_statement(shown(search)), engine.dialect)
        with engine.connect() as conn:
            rows = [row._asdict() for row in conn.execute(stmt)]
        if not rows:
            abort(404)
        return rows_json(rows)

    @app.get("/")
    def up() -> str:
        return "up"

    return app


def from_env() -> Flask:
    """The app for the database in $FLOOR_DATABASE_URL: what each server worker builds."""
    return floor_app(os.environ["FLOOR_DATABASE_URL"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("database_url", help="the hub's database (SQLAlchemy URL)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    os.environ["FLOOR_DATABASE_URL"] = args.database_url
    here = Path(__file__).resolve().parent
    serve("query_floor:from_env", host="127.0.0.1", port=args.port, workers=args.workers, threads=4, working_dir=here)


if __name__ == "__main__":
    main()
