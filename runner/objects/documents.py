"""The objects of a YAML or JSON text, as `kubectl apply -f` and `kubectl create -f` read a file: several
documents, empty ones skipped, `kind: List` expanded."""

from __future__ import annotations

from typing import Any

from catalog.errors import TaskhubError
from catalog.manifests import ManifestError, load_documents
from runner.objects.store import InvalidObject


def documents_of(text: str) -> list[dict[str, Any]]:
    """The objects of a YAML or JSON text (several documents, `kind: List` expanded); InvalidObject otherwise."""
    try:
        loaded = load_documents(text)
    except (ManifestError, TaskhubError) as exc:
        raise InvalidObject(f"not YAML or JSON: {exc}") from None
    out: list[dict[str, Any]] = []
    for i, doc in enumerate(loaded):
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
        elif isinstance(doc, dict):
            out.append(doc)
        else:
            raise InvalidObject(f"document {i + 1} is not an object (a mapping with apiVersion, kind, metadata)")
    if not out:
        raise InvalidObject("no objects to apply")
    return out
