"""The references a Tekton user pastes into a Pipeline or a Task to run a version from this hub: YAML written by
a YAML library, so that what is pasted is read back as written (``0.10`` stays the string "0.10", not 0.1)."""

from __future__ import annotations

from typing import Any

import yaml

# The field that refers to a resource of each kind: a pipeline task's taskRef, a PipelineRun's pipelineRef, a
# step's ref.
REFERENCE_FIELDS = {"Task": "taskRef", "Pipeline": "pipelineRef", "StepAction": "ref"}


class _IndentedDumper(yaml.SafeDumper):
    """Indents a list under its key, as Tekton's documentation and most hand-written YAML do."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def reference_snippet(kind: str, resolver: str, params: dict[str, str]) -> str:
    """``taskRef`` (or pipelineRef, ref) with a resolver and its params, as multi-line YAML."""
    body = {"resolver": resolver, "params": [{"name": k, "value": v} for k, v in params.items()]}
    return yaml.dump({REFERENCE_FIELDS[kind]: body}, Dumper=_IndentedDumper, sort_keys=False, width=1000)


def hub_snippet(kind: str, catalog: str, name: str, version: str) -> str:
    """The reference through Tekton's hub resolver (type tekton, with TEKTON_HUB_API pointing at this hub)."""
    params = {"catalog": catalog, "type": "tekton", "kind": kind.lower(), "name": name, "version": version}
    return reference_snippet(kind, "hub", params)


def bundle_snippet(kind: str, name: str, bundle_ref: str) -> str:
    """The reference through Tekton's bundles resolver, to the bundle this version was published as."""
    return reference_snippet(kind, "bundles", {"bundle": bundle_ref, "name": name, "kind": kind.lower()})
