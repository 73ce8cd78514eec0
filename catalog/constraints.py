"""Version constraints as Tekton's hub resolver reads them (hashicorp/go-version): ``>=0.7, <2.0``, ``~>0.9``.

A constraint is one or more comma-separated terms, all of which must hold. A term is an operator (``=``, ``!=``,
``>``, ``<``, ``>=``, ``<=``, ``~>``; none means ``=``) and a version. ``~>`` is pessimistic: ``~>0.9`` allows
0.9 and anything below 1.0, ``~>0.9.1`` allows 0.9.1 and anything below 0.10. Versions compare as versions,
so ``0.10`` is above ``0.9`` and ``0.9`` equals ``0.9.0``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from catalog.errors import InvalidRequest, InvalidVersion
from catalog.versions import Version

_TERM = re.compile(r"^\s*(=|!=|>=|<=|>|<|~>)?\s*(\S+)\s*$")
_MAX_TERMS = 16


@dataclass(frozen=True)
class _Term:
    operator: str
    version: Version
    segments: int  # as written: ~> keeps all but the last of them fixed

    def allows(self, version: Version) -> bool:
        v, c = version.semver, self.version.semver
        order = v.compare(c)
        if self.operator == "=":
            return order == 0
        if self.operator == "!=":
            return order != 0
        if self.operator == ">":
            return order > 0
        if self.operator == "<":
            return order < 0
        if self.operator == ">=":
            return order >= 0
        if self.operator == "<=":
            return order <= 0
        fixed = max(self.segments - 1, 1) if self.segments > 1 else 0
        return order >= 0 and (v.major, v.minor, v.patch)[:fixed] == (c.major, c.minor, c.patch)[:fixed]


@dataclass(frozen=True)
class Constraint:
    """A parsed version constraint; `allows` tells whether a version satisfies every term."""

    text: str
    terms: tuple[_Term, ...]

    @classmethod
    def parse(cls, text: str) -> Constraint:
        """Parse a constraint; InvalidRequest says which term is malformed."""
        parts = text.split(",")
        if not text.strip() or len(parts) > _MAX_TERMS:
            raise InvalidRequest(f"malformed constraint: {text!r}", reason="invalid-version")
        terms = []
        for part in parts:
            match = _TERM.match(part)
            if match is None:
                raise InvalidRequest(f"malformed constraint: {part.strip()!r}", reason="invalid-version")
            operator, written = match[1] or "=", match[2]
            try:
                version = Version.parse(written)
            except InvalidVersion:
                raise InvalidRequest(f"malformed constraint: {part.strip()!r}", reason="invalid-version") from None
            segments = len(written.lstrip("vV").split("-", 1)[0].split("+", 1)[0].split("."))
            terms.append(_Term(operator, version, segments))
        return cls(text, tuple(terms))

    def allows(self, version: Version) -> bool:
        return all(term.allows(version) for term in self.terms)

    def best(self, versions: Iterable[Version]) -> Version | None:
        """The greatest version that satisfies the constraint, prereleases skipped; None when none does."""
        matching = [v for v in versions if not v.is_prerelease and self.allows(v)]
        return max(matching, key=lambda v: v.sort_key, default=None)
