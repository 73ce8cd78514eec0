"""Read-only mounts for step and sidecar processes: a read-only bind mount in a private mount namespace.

A container path mounted read-only (a `readOnly` workspace or volumeMount, a ConfigMap, Secret or projected
volume, a `readOnly` claim) is mapped to an empty "view" directory of the pod. The process starts through this
file run as a script: it enters a new mount namespace (inside a new user namespace when the executor is not
root), bind-mounts the real directory onto the view read-only, and execs the step. Writes there fail with EROFS,
as in a pod, while every other process (other tasks sharing the volume) still writes the real directory. A root
executor's step also loses CAP_SYS_ADMIN, so it cannot remount the view writable.

Where namespaces are not available (no unprivileged user namespaces), the view is a read-only copy taken when the
process starts, and a root executor's process runs without CAP_DAC_OVERRIDE: writes fail with EACCES instead.

Run as a script (stdlib only, started with `python -I -S`): `readonly.py [--drop-dac] [--probe] SRC VIEW ... --
ARGV...`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

_CLONE_NEWNS, _CLONE_NEWUSER = 0x00020000, 0x10000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_NOATIME, _MS_NODIRATIME = 32, 4096, 1024, 2048
_MS_REC, _MS_PRIVATE, _MS_RELATIME = 16384, 1 << 18, 1 << 21
_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_SYS_ADMIN = 24, 1, 21
# Flags of the source mount that a remount inside a user namespace must keep (the kernel locks them).
_LOCKED = (
    (os.ST_NOSUID, _MS_NOSUID),
    (os.ST_NODEV, _MS_NODEV),
    (os.ST_NOEXEC, _MS_NOEXEC),
    (os.ST_NOATIME, _MS_NOATIME),
    (os.ST_NODIRATIME, _MS_NODIRATIME),
    (os.ST_RELATIME, _MS_RELATIME),
)
_HELPER = [sys.executable, "-I", "-S", str(Path(__file__).resolve())]


@functools.cache
def namespaces_work() -> bool:
    """Whether this host lets the executor make read-only bind mounts in a private mount namespace (tried once)."""
    try:
        done = subprocess.run([*_HELPER, "--probe"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def wrap(argv: list[str], views: list[tuple[Path, Path]], *, drop_dac: bool) -> list[str]:
    """The command line that runs `argv` with each (source, view) pair mounted read-only at the view."""
    pairs = [str(p) for pair in views for p in pair]
    return [*_HELPER, *(["--drop-dac"] if drop_dac else []), *pairs, "--", *argv]


def snapshot(views: list[tuple[Path, Path]]) -> None:
    """The fallback without namespaces: each view becomes a read-only copy of its source, taken now."""
    for source, view in views:
        release_snapshot(view)
        shutil.copytree(source, view, symlinks=True, dirs_exist_ok=True)
        make_read_only(view)


def make_read_only(root: Path, file_mode: int = 0o444) -> None:
    """Removes write permission below `root` (steps of a root executor run without DAC override, so it holds)."""
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, file_mode)
        os.chmod(dirpath, 0o555)


def make_writable(root: Path) -> None:
    """Gives write permission back below `root`, so the run directory can be removed later."""
    if not root.exists():
        return
    for dirpath, _dirs, names in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in names:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                os.chmod(full, stat.S_IMODE(os.lstat(full).st_mode) | 0o200)


def release_snapshot(view: Path) -> None:
    """Empties a view made by `snapshot` (no-op for an empty mount-point view)."""
    if not view.exists():
        return
    for dirpath, _dirs, _names in os.walk(view):
        os.chmod(dirpath, 0o755)
    for child in view.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


# -- the helper process -------------------------------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _enter_namespace(libc: ctypes.CDLL) -> None:
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        _check(libc.unshare(_CLONE_NEWNS), "unshare")
    else:
        _check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare")
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as handle:
                handle.write(text)
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "making / private")


def _bind_read_only(libc: ctypes.CDLL, source: str, view: str) -> None:
    _check(libc.mount(source.encode(), view.encode(), None, _MS_BIND | _MS_REC, None), f"bind {source}")
    flags = os.statvfs(source).f_flag
    locked = 0
    for st_flag, ms_flag in _LOCKED:
        if flags & st_flag:
            locked |= ms_flag
    _check(
        libc.mount(None, view.encode(), None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | locked, None),
        f"read-only remount of {view}",
    )


def _main(args: list[str]) -> int:
    drop_dac = probe = False
    while args and args[0] in ("--drop-dac", "--probe"):
        drop_dac, probe = drop_dac or args[0] == "--drop-dac", probe or args[0] == "--probe"
        args = args[1:]
    split = args.index("--") if "--" in args else len(args)
    pairs, argv = args[:split], args[split + 1 :]
    libc = _libc()
    try:
        _enter_namespace(libc)
        if probe:
            _bind_read_only(libc, "/", "/")
            return 0
        for i in range(0, len(pairs) - 1, 2):
            _bind_read_only(libc, pairs[i], pairs[i + 1])
        if pairs:
            os.chdir(os.getcwd())  # a working directory inside a view: enter the mount on top of it
        if os.getuid() == 0:
            # Without CAP_SYS_ADMIN a root step cannot remount the view writable.
            for cap in (_CAP_SYS_ADMIN, _CAP_DAC_OVERRIDE) if drop_dac else (_CAP_SYS_ADMIN,):
                _check(libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), "dropping a capability")
    except OSError as exc:
        print(f"taskhub local executor: cannot make read-only mounts: {exc.strerror or exc}", file=sys.stderr)
        return 126
    if not argv:
        return 0
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        # What a container runtime reports for a missing binary: exit code 127 and a message in the log.
        print(f"{argv[0]}: {exc.strerror or exc}", file=sys.stderr)
        return 127
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
