"""Errors of the local executor: each carries the Tekton reason a run ends with."""

from __future__ import annotations


class ResolutionError(Exception):
    """A `taskRef`, `pipelineRef`, StepAction `ref`, ConfigMap or Secret could not be found or read."""


class RunFailure(Exception):
    """A run cannot go on; `reason` and the message become its `Succeeded=False` condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
