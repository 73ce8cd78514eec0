"""The floor of bench/resolve.py's cold resolve: the least any Flask hub does for one, served as the hub is.

One view, GET /pull?repository=...&tag=...&name=...: the manifest by tag, then the object's layer blob, from the
registry over a keep-alive http.client connection per thread, and the blob's bytes as the answer. No checks, no
cache, no JSON: what is left is the hop through the server and Flask. `python bench/proxy_floor.py REGISTRY
--port P` serves it with hub.wsgi.server.serve, as `taskhub serve` serves the hub.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import threading
from pathlib import Path

from flask import Flask, Response, request
from registry_peers import ACCEPT  # what the raw peer asks for

from hub.wsgi.server import serve


def floor_app(registry: str) -> Flask:
    app = Flask(__name__)
    local = threading.local()

    def get(path: str, accept: str | None = None) -> bytes:
        conn = getattr(local, "conn", None)
        if conn is None:
            host, port = registry.rsplit(":", 1)
            conn = local.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", path, headers={"Accept": accept} if accept else {})
        return conn.getresponse().read()

    @app.get("/pull")
    def pull() -> Response:
        repository, tag, name = (request.args[key] for key in ("repository", "tag", "name"))
        manifest = json.loads(get(f"/v2/{repository}/manifests/{tag}", ACCEPT))
        digest = next(
            layer["digest"]
            for layer in manifest["layers"]
            if layer.get("annotations", {}).get("dev.tekton.image.name") == name
        )
        return Response(get(f"/v2/{repository}/blobs/{digest}"), mimetype="application/octet-stream")

    @app.get("/")
    def up() -> str:
        return "up"

    return app


def from_env() -> Flask:
    """The app for the registry in $FLOOR_REGISTRY: what each server worker builds."""
    return floor_app(os.environ["FLOOR_REGISTRY"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("registry", help="HOST:PORT of the registry")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    os.environ["FLOOR_REGISTRY"] = args.registry
    here = Path(__file__).resolve().parent
    serve("proxy_floor:from_env", host="127.0.0.1", port=args.port, workers=args.workers, threads=4, working_dir=here)


if __name__ == "__main__":
    main()
