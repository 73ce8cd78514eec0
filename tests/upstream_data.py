"""Real upstream data for the suites that check taskhub against it, found under $TASKHUB_CONFORMANCE_DATA.

That directory holds `catalog-sample/` (a subset of github.com/tektoncd/catalog, read in place) and
`tekton-examples/` (the runnable examples of github.com/tektoncd/pipeline: examples/v1). A clean clone has
neither: those suites are then skipped, with this reason, and every other test runs on the fixtures in tests/.
`.ci/run` sets the variable, so CI runs them all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

VARIABLE = "TASKHUB_CONFORMANCE_DATA"


def upstream_data(name: str) -> Path | None:
    """$TASKHUB_CONFORMANCE_DATA/name when it is there, else None."""
    root = os.environ.get(VARIABLE)
    path = Path(root) / name if root else None
    return path if path is not None and path.is_dir() else None


def missing_reason(name: str) -> str:
    root = os.environ.get(VARIABLE)
    where = f"{VARIABLE}={root} has no {name}/" if root else f"{VARIABLE} is not set"
    return f"needs real upstream data: {where} (a directory holding catalog-sample/ and tekton-examples/)"


def needs(name: str) -> pytest.MarkDecorator:
    """Skip the marked tests, with the reason, when the upstream data `name` is not there."""
    return pytest.mark.skipif(upstream_data(name) is None, reason=missing_reason(name))
