"""Where a catalog's files come from: a local directory, or a git repository cloned with the git CLI."""

from __future__ import annotations

import ctypes
import functools
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

from catalog.errors import CatalogSourceError

GIT_TIMEOUT_SECONDS = 600
_GIT_URL = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")


def is_git_url(source: str) -> bool:
    return bool(_GIT_URL.match(source))


def detect_provider(source: str) -> str:
    """github, gitlab or bitbucket for web-hosted git URLs; git for other URLs; local for directories."""
    if not is_git_url(source):
        return "local"
    host = urlparse(source).hostname or source.split("@", 1)[-1].split(":", 1)[0]
    for provider in ("github", "gitlab", "bitbucket"):
        if provider in host:
            return provider
    return "git"


def check_git_value(value: str | None, what: str) -> str | None:
    """A source or revision as git will get it, refused when git could read it as an option (a leading '-', as in
    "--upload-pack=CMD") or it holds control characters; None stays None."""
    if value is None:
        return None
    if value.startswith("-"):
        raise CatalogSourceError(f"{what} {value!r} must not begin with '-' (git would read it as an option)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise CatalogSourceError(f"{what} {value!r} must not contain control characters")
    return value


def check_context_dir(context_dir: str | None) -> str | None:
    """Validate a catalog's context directory: relative, without '..'; returns it normalised."""
    if not context_dir:
        return None
    path = PurePosixPath(context_dir)
    if path.is_absolute() or ".." in path.parts:
        raise CatalogSourceError(f"context dir {context_dir!r} must be a relative path inside the catalog")
    normal = path.as_posix().strip("/")
    return None if normal in ("", ".") else normal


@dataclass
class Checkout:
    """A catalog's files on disk, ready to walk."""

    root: Path
    revision: str | None  # the commit, for git sources
    modified: Mapping[str, datetime] = field(default_factory=dict)  # manifest path -> last commit time
    web_base: str | None = None  # "https://github.com/org/repo" for providers with web links
    # For git sources: folder path (relative to root) -> the id of its git tree, a digest of everything in it, for
    # folders with no symbolic link inside (a link's target can change while the folder's tree does not).
    folder_keys: dict[str, str] | None = None


class CommitTimes(Mapping[str, datetime]):
    """The time of each file's last commit, read from git's log the first time one is asked for: a sync that
    reads no file again (all unchanged) runs no log over the repository's history."""

    def __init__(self, repo: Path, context_dir: str | None) -> None:
        self.repo, self.context_dir = repo, context_dir
        self._times: dict[str, datetime] | None = None

    def _loaded(self) -> dict[str, datetime]:
        if self._times is None:
            self._times = _commit_times(self.repo, self.context_dir)
        return self._times

    def __getitem__(self, path: str) -> datetime:
        return self._loaded()[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@functools.cache
def _die_with_parent() -> Callable[[], None]:
    """What git's process runs before exec: end it when the process that started it ends (a worker killed by
    SIGKILL), so no git of a killed sync still writes the checkout that the next sync takes over."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # bound here: loading a library after fork is not safe
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _git(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT_SECONDS,
            preexec_fn=_die_with_parent(),
        )  # fmt: skip
    except FileNotFoundError:
        raise CatalogSourceError("the git command is not installed") from None
    except subprocess.TimeoutExpired:
        raise CatalogSourceError(f"git {args[0]} took longer than {GIT_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        detail = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
        raise CatalogSourceError(f"git {args[0]} failed: {detail}")
    return done.stdout


def _commit_times(repo: Path, context_dir: str | None) -> dict[str, datetime]:
    """Map each file under context_dir (as a path relative to it) to the time of its last commit."""
    log = _git(["log", "--format=%x00%cI", "--name-only", "--no-renames", "--", context_dir or "."], repo)
    times: dict[str, datetime] = {}
    prefix = f"{context_dir}/" if context_dir else ""
    when: datetime | None = None
    for line in log.splitlines():
        if line.startswith("\x00"):
            when = datetime.fromisoformat(line[1:])
        elif line and when is not None and line.startswith(prefix):
            times.setdefault(line[len(prefix) :], when)
    return times


def _folder_keys(repo: Path, context_dir: str | None) -> dict[str, str]:
    """Every folder under context_dir (relative to it) with the id of its git tree, leaving out folders that hold a
    symbolic link anywhere inside."""
    listing = _git(["ls-tree", "-r", "-t", "-z", "HEAD", "--", context_dir or "."], repo)
    prefix = f"{context_dir}/" if context_dir else ""
    trees: dict[str, str] = {}
    linked: set[str] = set()
    for item in listing.split("\0"):
        if not item:
            continue
        meta, _, path = item.partition("\t")
        mode, kind, oid = meta.split(" ")
        if kind == "tree":
            trees[path] = oid
        elif mode == "120000":  # a symbolic link: no folder above it can be trusted by its tree id
            parts = path.split("/")
            linked.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return {path[len(prefix) :]: oid for path, oid in trees.items() if path not in linked and path.startswith(prefix)}


def recover_git_locks(repo: Path) -> list[str]:
    """Removes the lock files a git killed mid-command leaves in repo/.git (index.lock, HEAD.lock, ...), which
    make every later git command there fail. Only for a caller that knows no git runs there: the holder of the
    catalog's sync lease. Returns the names removed."""
    removed = []
    for lock in sorted((repo / ".git").glob("*.lock")):
        lock.unlink(missing_ok=True)
        removed.append(lock.name)
    return removed


def checkout(name: str, source: str, revision: str | None, context_dir: str | None, work_dir: Path) -> Checkout:
    """Make a catalog's files available: a directory as it is, a git URL fetched into work_dir/name."""
    context_dir = check_context_dir(context_dir)
    check_git_value(source, "source")  # checked again here: a stored value may predate the check
    check_git_value(revision, "revision")
    if is_git_url(source):
        repo = work_dir / name
        repo.mkdir(parents=True, exist_ok=True)
        if not (repo / ".git").exists():
            _git(["init", "-q"], repo)
        _git(["fetch", "-q", "--force", "--no-tags", "--end-of-options", source, revision or "HEAD"], repo)
        _git(["checkout", "-q", "--force", "FETCH_HEAD"], repo)
        _git(["clean", "-q", "-d", "-f", "-x"], repo)
        commit = _git(["rev-parse", "HEAD"], repo).strip()
        root = _inside(repo, context_dir)
        web_base = None
        if detect_provider(source) in ("github", "gitlab", "bitbucket") and source.startswith("https://"):
            web_base = source.removesuffix("/").removesuffix(".git")
        return Checkout(root, commit, CommitTimes(repo, context_dir), web_base, _folder_keys(repo, context_dir))
    if revision:
        raise CatalogSourceError("--revision needs a git source; a local directory is read as it is")
    base = Path(source)
    if not base.is_dir():
        raise CatalogSourceError(f"catalog directory {source} does not exist")
    return Checkout(_inside(base, context_dir), None)


def _inside(base: Path, context_dir: str | None) -> Path:
    root = (base / context_dir).resolve() if context_dir else base.resolve()
    if not root.is_relative_to(base.resolve()):
        raise CatalogSourceError(f"context dir {context_dir!r} leads outside the catalog")
    if not root.is_dir():
        raise CatalogSourceError(f"context dir {context_dir!r} does not exist in the catalog")
    return root


def web_urls(provider: str, web_base: str | None, revision: str, path: str) -> tuple[str | None, str | None]:
    """(webURL, rawURL) of a file as Tekton Hub builds them for github, gitlab and bitbucket."""
    if web_base is None:
        return None, None
    if provider == "github":
        web = f"{web_base}/tree/{revision}/{path}"
        raw = web.replace("github.com", "raw.githubusercontent.com", 1).replace("/tree/", "/", 1)
        return web, raw
    if provider == "gitlab":
        return f"{web_base}/-/blob/{revision}/{path}", f"{web_base}/-/raw/{revision}/{path}"
    if provider == "bitbucket":
        return f"{web_base}/src/{revision}/{path}", f"{web_base}/raw/{revision}/{path}"
    return None, None
