"""The hub's own URL, as the links in its answers spell it."""

from __future__ import annotations

from flask import current_app, request


def base_url() -> str:
    """TASKHUB_PUBLIC_URL, else the scheme, host and root path the request came to, ending in "/". Built from
    those parts rather than werkzeug's host_url, which also decodes them to an IRI: three times the cost on every
    uncached read, for a host name or root path that is ASCII already."""
    public = current_app.config["TASKHUB"].public_url
    if public:
        return str(public)
    asked = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup for its three parts
    return f"{asked.scheme}://{asked.host}{asked.root_path.rstrip('/')}/"
