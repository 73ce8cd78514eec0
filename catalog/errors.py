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


class PayloadTooLarge(InvalidRequest):
    """A request body over the size the endpoint accepts."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="payload-too-large")


class InvalidKind(InvalidRequest):
    """A resource kind that taskhub does not serve."""

    reason = "invalid-kind"


class NotFound(TaskhubError):
    """The catalog, resource or version does not exist."""


class Conflict(TaskhubError):
    """The thing to create already exists."""


class BackendUnavailable(TaskhubError):
    """A run backend this hub does not offer, or that this host cannot provide; the message says why."""


class CatalogSourceError(TaskhubError):
    """A catalog's source could not be read (missing directory, failed git clone)."""


class RegistryError(TaskhubError):
    """An OCI registry call failed; the subclasses say why."""


class InvalidReference(RegistryError, ValueError):
    """A malformed image reference, repository name or digest (nothing was sent to a registry)."""


class InsecureRegistry(RegistryError):
    """Plain HTTP to a host that is not loopback, without ``insecure=True`` (nothing was sent)."""


class RegistryNotAllowed(RegistryError):
    """A registry this hub is not configured to contact on a client's behalf (nothing was sent)."""


class RedirectRefused(RegistryError):
    """A registry's answer pointed the client at a host or address it may not reach (nothing was sent there)."""


class RegistryUnreachable(RegistryError):
    """The registry could not be reached: connection refused, unknown host, timeout, deadline passed."""


class RegistryServerError(RegistryError):
    """The registry kept answering with a 5xx status."""


class RegistryAuthError(RegistryError):
    """The registry (or its token service) refused the credentials, or none were given (HTTP 401/403)."""


class RegistryNotFound(RegistryError):
    """The repository, manifest, tag or blob does not exist in the registry (HTTP 404)."""


class BlobDigestMismatch(RegistryError):
    """Content served by a registry (or read from the blob cache) does not match its digest or size."""

    def __init__(self, message: str, *, expected: str, actual: str | None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class BlobTooLarge(RegistryError):
    """A blob or manifest is larger than the caller allows; it was refused before or while downloading."""

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class BundleError(TaskhubError):
    """Files that cannot become a Tekton bundle, or a bundle Tekton's resolver would refuse; the message says why."""


class BundleEntryNotFound(BundleError, NotFound):
    """A Tekton bundle holds no object of the kind and name asked for."""
