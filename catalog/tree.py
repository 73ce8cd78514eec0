"""Walking a catalog tree in the tektoncd/catalog layout: ``<kind>/<name>/<version>/<name>.yaml``.

The walk touches only the files a hub needs (manifest, README.md, samples/) and never follows a link out of
the catalog. Every file or folder that is skipped is reported as a Problem with its path and the reason.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from catalog.errors import InvalidVersion
from catalog.folder_keys import directory_key
from catalog.manifests import KINDS, MAX_FILE_BYTES, ManifestError, decode_text, is_dns1123_label, load_documents
from catalog.metadata import ResourceManifest, parse_resource, reasons_of
from catalog.versions import Version

LEVELS = ("critical", "error", "warning", "info")
# Files expected beside version folders; anything else at that level is reported.
_RESOURCE_LEVEL_FILES = {"OWNERS", "README.md", "OWNERS_ALIASES"}


@dataclass(frozen=True)
class Problem:
    """One thing a catalog owner should know: its level, the file it is about and why."""

    level: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.path}: {self.message}"


@dataclass
class VersionEntry:
    """A resource version found in a catalog tree, ready to index."""

    kind: str
    name: str
    version: str
    path: str  # of the manifest, relative to the catalog root
    manifest: str
    digest: str  # sha256 hex of the manifest bytes
    meta: ResourceManifest
    readme: str | None
    samples: dict[str, str]
    modified_at: datetime
    bundle_ref: str | None = None  # set for versions read from a registry
    source_key: str | None = None  # the digest of the version folder's files when read (see Known)


@dataclass(frozen=True)
class Known:
    """What the last sync read from a version folder: the digest of its files (a git tree id, or the digest of the
    files a sync reads), the version row it made, and the problems it reported in the folder. A folder whose digest
    is the same again is neither read nor parsed: the row and the problems stand."""

    source_key: str
    version_id: int
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Unchanged:
    """A version folder whose files are what the last sync read (its key may differ: a file touched, not changed)."""

    kind: str
    name: str
    version_id: int
    source_key: str


@dataclass
class CatalogTree:
    """The result of walking a catalog: what can be indexed, and every problem met on the way."""

    versions: list[VersionEntry] = field(default_factory=list)
    unchanged: list[Unchanged] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def report(self, level: str, path: str, message: str) -> None:
        self.problems.append(Problem(level, path, message))


class _Walker:
    """Walks with plain string paths: a catalog has thousands of files, and pathlib costs more than the reads."""

    def __init__(
        self,
        root: Path,
        modified: Mapping[str, datetime],
        known: Mapping[str, Known],
        folder_keys: Mapping[str, str] | None,
    ) -> None:
        self.root = os.path.realpath(root)
        self.modified = modified
        self.known = known
        self.folder_keys = folder_keys
        self.tree = CatalogTree()

    def rel(self, path: str) -> str:
        return path[len(self.root) + 1 :] or "."

    def inside(self, path: str) -> bool:
        """True when path, with every link followed, stays inside the catalog."""
        real = os.path.realpath(path)
        return real == self.root or real.startswith(self.root + os.sep)

    def entries(self, folder: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.tree.report("error", self.rel(folder), f"cannot list folder: {exc.strerror}")
            return []

    def read_text(self, path: str, *, replace_nul: bool = False) -> str:
        """Read a small UTF-8 file of a folder already known to be inside the catalog, or raise ManifestError."""
        if os.path.islink(path) and not self.inside(path):
            raise ManifestError("is a link that leads outside the catalog; not followed")
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    raise ManifestError("is not a regular file")
                if st.st_size > MAX_FILE_BYTES:
                    raise ManifestError(f"file is {st.st_size} bytes, over the {MAX_FILE_BYTES}-byte limit")
                data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise ManifestError(f"cannot read: {exc.strerror}") from None
        return decode_text(data, replace_nul=replace_nul)

    def walk(self) -> CatalogTree:
        found_any = False
        for folder, kind in KINDS.items():
            kind_dir = os.path.join(self.root, folder)
            if not os.path.isdir(kind_dir):
                continue
            found_any = True
            if not self.inside(kind_dir):
                self.tree.report("error", folder, "is a link that leads outside the catalog; not followed")
                continue
            for entry in self.entries(kind_dir):
                self.walk_resource(kind, entry)
        if not found_any:
            self.tree.report("critical", ".", "no task/, pipeline/ or stepaction/ folder: not a catalog tree")
        elif not self.tree.versions and not self.tree.unchanged:
            self.tree.report("error", ".", "no resources found in the catalog")
        return self.tree

    def walk_resource(self, kind: str, entry: os.DirEntry[str]) -> None:
        rel = self.rel(entry.path)
        name = entry.name
        if name.startswith("."):
            if entry.is_dir():
                self.tree.report("info", rel, "folder name begins with a dot (hidden); skipped")
            return
        if not entry.is_dir():
            self.tree.report("info", rel, f"plain file where a {kind.lower()} folder is expected; skipped")
            return
        if entry.is_symlink() and not self.inside(entry.path):
            self.tree.report("error", rel, "is a link that leads outside the catalog; not followed")
            return
        if not is_dns1123_label(name):
            self.tree.report("error", rel, f"folder name {name!r} is not a valid resource name (DNS-1123 label)")
            return
        versions = 0
        for child in self.entries(entry.path):
            if child.name.startswith("."):
                if child.is_dir():
                    self.tree.report("info", self.rel(child.path), "folder name begins with a dot (hidden); skipped")
                continue
            if not child.is_dir():
                if child.name not in _RESOURCE_LEVEL_FILES:
                    self.tree.report("info", self.rel(child.path), "file beside the version folders; ignored")
                continue
            try:
                Version.parse(child.name, allow_short=False)
            except InvalidVersion:
                self.tree.report("warning", self.rel(child.path), f"{child.name!r} is not a version folder; skipped")
                continue
            versions += 1
            self.walk_version(kind, name, child)
        if versions == 0:
            self.tree.report("error", rel, "no version folders")

    def source_key(self, folder: os.DirEntry[str], name: str, known: Known | None) -> tuple[str | None, bool]:
        """(the key of a version folder, whether it is the one known): its git tree id, or for a directory the
        digests of catalog/folder_keys.py; a None key when it cannot be told (the folder is then read)."""
        if self.folder_keys is not None:
            key = self.folder_keys.get(self.rel(folder.path))
            return key, key is not None and known is not None and known.source_key == key
        if folder.is_symlink():
            return None, False
        return directory_key(folder.path, name, self.inside, known.source_key if known else None)

    def walk_version(self, kind: str, name: str, folder: os.DirEntry[str]) -> None:
        version = folder.name
        if folder.is_symlink() and not self.inside(folder.path):
            self.tree.report("error", self.rel(folder.path), "is a link that leads outside the catalog; not followed")
            return
        known = self.known.get(self.rel(folder.path))
        source_key, same = self.source_key(folder, name, known)
        if same and known is not None and source_key is not None:
            self.tree.unchanged.append(Unchanged(kind, name, known.version_id, source_key))
            self.tree.problems.extend(known.problems)
            return
        present = [p for p in (f"{folder.path}/{name}.yaml", f"{folder.path}/{name}.yml") if os.path.lexists(p)]
        if not present:
            self.tree.report("error", self.rel(folder.path), f"no manifest: expected {name}.yaml in the version folder")
            return
        if len(present) > 1:
            self.tree.report("warning", self.rel(present[1]), f"ignored: {name}.yaml is the manifest")
        manifest_path = present[0]
        rel = self.rel(manifest_path)
        try:
            text = self.read_text(manifest_path)
            meta = parse_resource(text, kind=kind, folder_name=name, folder_version=version)
        except ManifestError as exc:
            for reason in reasons_of(exc):  # every reason, not only the first
                self.tree.report("error", rel, reason)
            return
        for finding in meta.findings:
            self.tree.report(finding.level, rel, finding.message)
        self.tree.versions.append(
            VersionEntry(
                kind=kind,
                name=name,
                version=version,
                path=rel,
                manifest=text,
                digest=hashlib.sha256(text.encode()).hexdigest(),
                meta=meta,
                readme=self.read_readme(folder.path),
                samples=self.read_samples(folder.path),
                modified_at=self.modified.get(rel) or _mtime(manifest_path),
                source_key=source_key,
            )
        )

    def read_readme(self, folder: str) -> str | None:
        path = f"{folder}/README.md"
        if not os.path.lexists(path):
            self.tree.report("info", self.rel(folder), "no README.md")
            return None
        try:
            return self.read_text(path, replace_nul=True)
        except ManifestError as exc:
            self.tree.report("warning", self.rel(path), f"README not shown: {exc}")
            return None

    def read_samples(self, folder: str) -> dict[str, str]:
        samples_dir = f"{folder}/samples"
        if not os.path.isdir(samples_dir):
            return {}
        if os.path.islink(samples_dir) and not self.inside(samples_dir):
            self.tree.report("warning", self.rel(samples_dir), "is a link that leads outside the catalog; not followed")
            return {}
        samples: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(samples_dir):
            dirnames.sort()
            for filename in sorted(filenames):
                if not filename.endswith((".yaml", ".yml")):
                    continue
                path = os.path.join(dirpath, filename)
                try:
                    text = self.read_text(path)
                except ManifestError as exc:
                    self.tree.report("warning", self.rel(path), f"sample not shown: {exc}")
                    continue
                samples[path[len(samples_dir) + 1 :]] = text
                try:
                    load_documents(text)  # shown either way; a sample that does not load will not run either
                except ManifestError as exc:
                    self.tree.report("warning", self.rel(path), f"sample is not valid YAML: {exc}")
        return samples


def _mtime(path: str) -> datetime:
    return datetime.fromtimestamp(os.stat(path).st_mtime, tz=UTC).replace(microsecond=0)


def read_catalog_tree(
    root: Path,
    modified: Mapping[str, datetime] | None = None,
    known: Mapping[str, Known] | None = None,
    folder_keys: Mapping[str, str] | None = None,
) -> CatalogTree:
    """Walk the catalog at root; ``modified`` maps manifest paths to their last commit time, when known. Version
    folders found in ``known`` with the same digest (``folder_keys`` has git's tree ids) are not read again."""
    # Not "modified or {}": asking a lazy CommitTimes for its length would read git's log.
    return _Walker(root, {} if modified is None else modified, known or {}, folder_keys).walk()
