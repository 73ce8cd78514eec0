"""In-memory stand-ins for the engine's ports (unit tests of the engine's logic), YAML loading, and signing
as each provider signs."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from catalog.manifests import load_documents
from triggers.admission import CLUSTER_SCOPED, parse_resource
from triggers.engine import EventOutcome, EventRequest, TriggersEngine
from triggers.ports import InterceptorHTTP
from triggers.resources import EventListener
from triggers.sink import SinkAnswer, answer_event


class MemoryStore:
    """A TriggersStore over manifests kept in a dict, admitted on add as `taskhub apply` will."""

    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str | None, str], Mapping[str, Any]] = {}

    def add(self, manifest: Mapping[str, Any], namespace: str = "ns1") -> None:
        parse_resource(manifest, namespace=namespace)  # refuse what admission refuses
        kind = manifest["kind"]
        ns = None if kind in CLUSTER_SCOPED else manifest["metadata"].get("namespace", namespace)
        stored = {**manifest, "metadata": {**manifest["metadata"], **({"namespace": ns} if ns else {})}}
        self.manifests[(kind, ns, manifest["metadata"]["name"])] = stored

    def get(self, kind: str, namespace: str | None, name: str) -> Mapping[str, Any] | None:
        return self.manifests.get((kind, namespace, name))

    def list(self, kind: str, namespace: str | None) -> Iterable[Mapping[str, Any]]:
        return [m for (k, ns, _), m in self.manifests.items() if k == kind and (namespace is None or ns == namespace)]


class MemorySecrets:
    def __init__(self, secrets: dict[tuple[str, str], dict[str, bytes]] | None = None) -> None:
        self.secrets = secrets or {}

    def secret_data(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return self.secrets.get((namespace, name))


# A GitHub push to main, the part of its payload the tests' bindings read.
PUSH = json.dumps({
    "ref": "refs/heads/main", "after": "bffeb74224043ba2feb48d137756c8a9331c449a",
    "repository": {"clone_url": "https://github.com/example/widgets.git"},
}).encode()  # fmt: skip


def github_signature(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    """X-Hub-Signature-256 (sha256) or X-Hub-Signature (sha1) as GitHub, Gitea and Bitbucket send them."""
    return f"{algorithm}=" + hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()


class Setup:
    """Resources applied from YAML, one listener, and an engine with counting UIDs."""

    def __init__(self, yaml_text: str, *, namespace: str = "ns1", secrets: MemorySecrets | None = None,
                 http: InterceptorHTTP | None = None, uid: str = "u1") -> None:  # fmt: skip
        self.store = MemoryStore()
        self.listeners: dict[str, EventListener] = {}
        for document in load_documents(yaml_text):
            if document["kind"] == "EventListener":
                document.setdefault("metadata", {}).setdefault("uid", uid)
                listener = parse_resource(document, namespace=namespace)
                assert isinstance(listener, EventListener)
                self.listeners[listener.meta.name] = listener
            else:
                self.store.add(document, namespace)
        counter = itertools.count(1)
        self.engine = TriggersEngine(
            self.store, secrets or MemorySecrets(), http, new_uid=lambda: f"uid-{next(counter)}"
        )

    def send(
        self, listener: str, body: bytes, headers: list[tuple[str, str]] | None = None, *, url: str = "/",
        event_id: str = "ev-1", method: str = "POST",
    ) -> tuple[SinkAnswer, EventOutcome | None]:  # fmt: skip
        """The sink's answer and, when it accepted the event, what the event did."""
        el = self.listeners[listener]
        answer = answer_event(el, body, event_id)
        if not answer.accepted:
            return answer, None
        request = EventRequest.from_pairs(method, url, headers or [], body)
        return answer, self.engine.process_event(el, request, event_id)


class LocalServer:
    """A real HTTP server on 127.0.0.1 with a free port, serving a handler class on a thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class QuietHandler(BaseHTTPRequestHandler):
    def send_body(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class GitHubAPI(LocalServer):
    """A real HTTP server on 127.0.0.1 answering GETs from a table of path -> (status, JSON, Link header), in the
    shapes of GitHub's REST API; it records the paths and Authorization headers it was asked for."""

    def __init__(self, routes: dict[str, tuple[int, Any, str]]) -> None:
        self.requests: list[tuple[str, str]] = []
        owner = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.path, self.headers.get("Authorization", "")))
                status, document, link = routes.get(self.path, (404, {"message": "Not Found"}, ""))
                self.send_body(status, json.dumps(document).encode(), {"Link": link.replace("{url}", owner.url)})

        super().__init__(Handler)
