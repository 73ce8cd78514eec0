"""The domain errors of taskhub, in one hierarchy. Each web surface maps them to HTTP in one place."""

from __future__ import annotations


class TaskhubError(Exception):
    """Base of every error taskhub reports to a person or a client."""


class InvalidVersion(TaskhubError, ValueError):
    """A string that is not a version taskhub understands."""


class InvalidRequest(TaskhubError):
    """A client asked for something malformed (bad kind, bad parameter); ``reason`` is a short code."""

    reason = "bad-request"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class InvalidKind(InvalidRequest):
    """A resource kind that taskhub does not serve."""

    reason = "invalid-kind"


class NotFound(TaskhubError):
    """The catalog, resource or version does not exist."""


class Conflict(TaskhubError):
    """The thing to create already exists."""


class CatalogSourceError(TaskhubError):
    """A catalog's source could not be read (missing directory, failed git clone)."""
