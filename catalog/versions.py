"""The one version type of taskhub: catalog versions compared as numbers, never as strings.

Catalog folders and labels use two-part versions (``0.9``, ``0.10``, ``3.71``) while bundles, Artifact Hub and
newer catalogs use full SemVer (``1.7.0``). Both are accepted. A two-part ``X.Y`` is coerced to ``X.Y.0`` for
comparison only; the text stays as written, because it is part of URLs, labels and tags. A leading ``v``
(``v1.7.0``, as in git tags and cluster versions) is accepted too.
"""

from __future__ import annotations

import functools
import re

import semver

from catalog.errors import InvalidVersion

_TWO_PART = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_ONE_PART = re.compile(r"^(0|[1-9]\d*)$")
_MAX_TEXT = 128


@functools.total_ordering
class Version:
    """A catalog version: ordered by SemVer precedence, printed as written."""

    __slots__ = ("semver", "text")

    def __init__(self, text: str, parsed: semver.Version) -> None:
        self.text = text
        self.semver = parsed

    @classmethod
    def parse(cls, text: str, *, allow_short: bool = True) -> Version:
        """Parse ``X.Y`` or ``X.Y.Z[-pre][+build]`` (and ``X`` when ``allow_short``); raise InvalidVersion."""
        if not isinstance(text, str):
            raise InvalidVersion(f"version must be a string, got {type(text).__name__} {text!r}")
        raw = text.strip()
        if not raw or len(raw) > _MAX_TEXT:
            raise InvalidVersion(f"invalid version {text!r}")
        body = raw[1:] if raw[:1] in ("v", "V") else raw
        if _TWO_PART.match(body):
            body += ".0"
        elif allow_short and _ONE_PART.match(body):
            body += ".0.0"
        try:
            parsed = semver.Version.parse(body)
        except ValueError:
            raise InvalidVersion(f"invalid version {text!r}: expected X.Y or X.Y.Z") from None
        return cls(raw, parsed)

    @property
    def is_prerelease(self) -> bool:
        return self.semver.prerelease is not None

    @property
    def full(self) -> str:
        """The version as full SemVer (``0.9`` becomes ``0.9.0``), as Artifact Hub writes it."""
        return str(self.semver)

    @property
    def short(self) -> str:
        """The version as Tekton Hub writes it: ``0.9.0`` becomes ``0.9``; anything else stays full."""
        v = self.semver
        if v.patch == 0 and v.prerelease is None and v.build is None:
            return f"{v.major}.{v.minor}"
        return self.full

    @property
    def sort_key(self) -> tuple[semver.Version, str]:
        """Precedence, then the text: one stable order even for 0.9 and 0.9.0, for picking a latest."""
        return (self.semver.replace(build=None), self.text)

    # Comparisons are SemVer precedence: 0.9 == 0.9.0, and build metadata is ignored.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.semver.compare(other.semver) == 0

    def __lt__(self, other: Version) -> bool:
        return self.semver.compare(other.semver) < 0

    def __hash__(self) -> int:
        return hash(self.semver.replace(build=None))

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Version({self.text!r})"


def parse_version(text: str) -> Version:
    """Shorthand for Version.parse."""
    return Version.parse(text)


def is_version(text: str) -> bool:
    try:
        Version.parse(text)
    except InvalidVersion:
        return False
    return True


def sort_versions(texts: list[str]) -> list[str]:
    """Sort version strings ascending by version order; unparsable strings first, as strings."""
    good = sorted((t for t in texts if is_version(t)), key=lambda t: Version.parse(t).sort_key)
    return sorted(t for t in texts if not is_version(t)) + good
