"""A resolver callback over a set of YAML documents, as `kubectl apply -f` of one file would provide them."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from runner.local.errors import ResolutionError
from runner.local.runenv import Resolver

RUNNABLE_KINDS = ("TaskRun", "PipelineRun")


def resolver_from_documents(documents: Iterable[dict[str, Any]], fallback: Resolver | None = None) -> Resolver:
    """A `resolve(ref, kind)` that finds Tasks, Pipelines, StepActions, ConfigMaps and Secrets among `documents`
    by name (references by name only), else asks `fallback`."""
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") not in RUNNABLE_KINDS:
            name = (doc.get("metadata") or {}).get("name")
            if name:
                index[(str(doc.get("kind")), str(name))] = doc

    def resolve(ref: dict[str, Any], kind: str) -> dict[str, Any]:
        # A reference names what its place asks for: a taskRef's `kind`, in any case, still names a namespaced
        # Task (tektoncd/pipeline: pkg/reconciler/taskrun/resources/taskref.go, LocalTaskRefResolver).
        if not ref.get("resolver"):
            found = index.get((kind, str(ref.get("name"))))
            if found is not None:
                return copy.deepcopy(found)
        if fallback is not None:
            return fallback(ref, kind)
        if ref.get("resolver"):
            raise ResolutionError(f'no resolver "{ref["resolver"]}" is available to the local executor')
        raise ResolutionError(f'{kind.lower()} "{ref.get("name")}" not found')

    return resolve


def runnable_documents(documents: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The TaskRuns and PipelineRuns among `documents`, in order."""
    return [d for d in documents if isinstance(d, dict) and d.get("kind") in RUNNABLE_KINDS]
