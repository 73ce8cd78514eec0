"""Image references and digests: parsing `host[:port]/repository[:tag][@digest]`, checking content by digest."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from catalog.errors import BlobDigestMismatch, InvalidReference

_DOMAIN_PART = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
HOST = re.compile(rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]{{1,5}})?")
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_PATH_PART}(?:/{_PATH_PART})*")
_TAG = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
DIGEST = re.compile(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}")


@dataclass(frozen=True)
class Reference:
    """A parsed `host[:port]/repository[:tag][@digest]`."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, `host[:port]/repository`."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def parse_reference(text: str) -> Reference:
    """Split `host[:port]/repo/path[:tag][@sha256:...]`; InvalidReference says what is wrong."""

    def bad(reason: str) -> InvalidReference:
        return InvalidReference(f"invalid reference {text!r}: {reason}")

    rest, at, digest = text.partition("@")
    if at and not DIGEST.fullmatch(digest):
        raise bad("the digest must be sha256:<64 hex digits> (or sha512:<128>)")
    host, slash, path = rest.partition("/")
    if not slash or not path:
        raise bad("expected host[:port]/repository[:tag][@digest]")
    if "." not in host and ":" not in host and host != "localhost":
        raise bad(f"{host!r} is not a registry host; name the registry, e.g. registry.example.com/{rest}")
    if not HOST.fullmatch(host):
        raise bad(f"{host!r} is not a valid host[:port]")
    path, colon, tag = path.partition(":")
    if colon and not _TAG.fullmatch(tag):
        raise bad(f"{tag!r} is not a valid tag (letters, digits, _ . -; at most 128)")
    if not _PATH.fullmatch(path):
        raise bad(f"{path!r} is not a repository path (lowercase letters and digits, separated by . _ __ - or /)")
    return Reference(host, path, tag or None, digest or None)


def check_digest(digest: str) -> str:
    """Return the digest's algorithm (sha256 or sha512); InvalidReference for anything else."""
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise InvalidReference(f"{digest!r} is not a digest (sha256:<64 hex digits> or sha512:<128>)")
    return digest.split(":", 1)[0]


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def check_content(data: bytes, digest: str, size: int | None, what: str) -> None:
    """Raise BlobDigestMismatch unless `data` has the descriptor's `digest` and `size`."""
    actual = digest_of(data, check_digest(digest))
    if actual != digest or (size is not None and len(data) != size):
        expected_size = "" if size is None else f" ({size} bytes)"
        raise BlobDigestMismatch(
            f"{what}: expected {digest}{expected_size}, got {actual} ({len(data)} bytes)",
            expected=digest,
            actual=actual,
        )


def is_loopback(host: str) -> bool:
    """Whether `host[:port]` is localhost, 127.0.0.0/8 or [::1] (by name; nothing is resolved)."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
