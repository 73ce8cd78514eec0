"""Telling whether a version folder of a directory catalog changed since the last sync, without parsing it.

A folder's key is two digests of the files a sync reads there (the manifest, README.md, samples/): first of their
names, sizes, modification times and inodes (one stat each), then of their names and bytes with the manifest's
modification time (its updatedAt). When the first matches the last sync's, nothing is read; when only the second
does (a file was touched, not changed), the folder is unchanged and its new key is kept. Git catalogs use their
tree ids instead (catalog/sources.py).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable

from catalog.manifests import MAX_FILE_BYTES

_HALF = 32  # hex characters of each digest: the key is 64, as resource_versions.source_key holds


def _files(folder: str, name: str, inside: Callable[[str], bool]) -> list[tuple[str, bool]] | None:
    """The files of a version folder a sync reads, in a stable order, each with whether its time counts (the
    manifest's); None when one is a link out of the catalog (the walk refuses it, and says why). Listed with
    scandir, whose entries know folders and links without another system call."""
    wanted = {f"{name}.yaml": 0, f"{name}.yml": 1, "README.md": 2}
    found: list[tuple[int, str, bool]] = []
    samples: os.DirEntry[str] | None = None
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name in wanted:
                if entry.is_symlink() and not inside(entry.path):
                    return None
                found.append((wanted[entry.name], entry.path, entry.name != "README.md"))
            elif entry.name == "samples" and entry.is_dir():
                samples = entry
    files = [(path, timed) for _, path, timed in sorted(found)]
    if samples is None:
        return files
    if samples.is_symlink() and not inside(samples.path):
        return None
    pending = [samples.path]
    while pending:
        with os.scandir(pending.pop()) as entries:
            children = sorted(entries, key=lambda e: e.name)
        for entry in children:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            elif entry.name.endswith((".yaml", ".yml")):
                if entry.is_symlink() and not inside(entry.path):
                    return None
                files.append((entry.path, False))
    return files


def _stat_digest(folder: str, files: list[tuple[str, bool]]) -> str:
    digest = hashlib.sha256()
    for path, _ in files:
        st = os.stat(path)
        digest.update(f"{path[len(folder) + 1 :]}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0".encode())
    return digest.hexdigest()[:_HALF]


def _content_digest(folder: str, files: list[tuple[str, bool]]) -> str:
    digest = hashlib.sha256()
    for path, timed in files:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
                raise OSError("not a small regular file")  # read (and refused) by the walk, which says why
            digest.update(f"{path[len(folder) + 1 :]}\0{st.st_size}\0".encode())
            if timed:
                digest.update(f"{int(st.st_mtime)}\0".encode())
            digest.update(f.read())
    return digest.hexdigest()[:_HALF]


def directory_key(folder: str, name: str, inside: Callable[[str], bool], known: str | None) -> tuple[str | None, bool]:
    """(the key of the version folder, whether its files are those known had); a None key when it cannot be told
    (the folder is then read)."""
    try:
        files = _files(folder, name, inside)
        if files is None:
            return None, False
        by_stat = _stat_digest(folder, files)
        if known is not None and known[:_HALF] == by_stat:
            return known, True
        by_content = _content_digest(folder, files)
    except OSError:
        return None, False
    return by_stat + by_content, known is not None and known[_HALF:] == by_content
