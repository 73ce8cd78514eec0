"""Container paths (`/tekton/...`, `/workspace`, mount paths) mapped onto a run's private host directories."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mount:
    """One container path and the host directory standing in for it; `protected` if a step may not write there
    (but for the sub-paths it is given: runner/local/containers.py).

    With `source` set, the mount is read-only: `host` is an empty view directory onto which `source` is mounted
    read-only in the process's sandbox (runner/local/sandbox.py).
    """

    container: str
    host: Path
    protected: bool = False
    source: Path | None = None


@functools.lru_cache(maxsize=256)
def _pattern(paths: tuple[str, ...]) -> re.Pattern[str]:
    # A container path counts only as a whole path: not inside a longer one (`/a/workspace`, `/workspaces`).
    if not paths:
        return re.compile(r"(?!)")
    return re.compile(r"(?<![\w./-])(" + "|".join(re.escape(p) for p in paths) + r")(?![\w.-])")


class PathMap:
    """Rewrites container paths in step text (script, command, args, env, workingDir) to host paths."""

    def __init__(self, mounts: list[Mount]) -> None:
        by_path: dict[str, Mount] = {}
        for mount in mounts:
            by_path[mount.container.rstrip("/") or "/"] = mount  # a later mount at the same path shadows
        self._mounts = by_path
        self._pattern = _pattern(tuple(sorted(by_path, key=len, reverse=True)))

    def rewrite(self, text: str) -> str:
        """`text` with every mapped container path replaced by its host path (one pass, never re-mapped)."""
        if not text or "/" not in text:
            return text
        return self._pattern.sub(lambda match: str(self._mounts[match.group(1)].host), text)

    def host_path(self, container_path: str) -> Path | None:
        """The host path for an absolute container path under a mount, or None if it is not mapped."""
        best = None
        for path in self._mounts:
            under = container_path == path or container_path.startswith(path.rstrip("/") + "/")
            if under and (best is None or len(path) > len(best)):
                best = path
        if best is None:
            return None
        rest = container_path[len(best) :].lstrip("/")
        return self._mounts[best].host / rest if rest else self._mounts[best].host
