"""Every step, sidecar and exec probe runs in a sandbox made by bubblewrap (Debian `bubblewrap`, `bwrap`).

What a sandbox gives, as a pod's container would have it:
- its own PID namespace with its own /proc, the process being PID 1 (`--as-pid-1`): when it ends, the kernel kills
  everything it started (`setsid` children included); `--die-with-parent` (PR_SET_PDEATHSIG) ends it with the
  executor, even one killed with SIGKILL. As in a container, PID 1 gets SIGTERM only if it handles it.
- its own mount namespace with a root of its own, as an image gives one: the host's system directories (/usr,
  /etc, /opt and the /bin, /lib... links) read-only, a fresh /dev, /proc, /tmp, /var/tmp and /dev/shm, and the
  container's own mounts at their host paths, read-only ones read-only. Nothing else of the host is there: not
  /var, /srv, /home, /root or /run, so not the hub's data dir. A `hidden` path inside a system directory (a data
  dir in /opt) is covered by an empty tmpfs. (Not the host's whole root: its submounts come and go with the
  containers a host runs, and bwrap fails when one vanishes while it remounts them read-only.)
- an unprivileged user: uid/gid 65534 (nobody) with no capabilities and no_new_privs when the executor is root
  (util-linux `setpriv` inside the sandbox); the executor's own uid in a new user namespace otherwise.
- the environment the executor gives it (runner/local/stepenv.py), nothing else.

Directories steps write are mode 0777, as Kubernetes makes an emptyDir (kubernetes: pkg/volume/emptydir/
empty_dir.go, perm 0777); everything else the executor makes stays root's. Bind sources are opened first and
passed as descriptors (`--bind-fd`), so a symlink a step left in a shared volume cannot point a later mount at a
hidden path.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import stat
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runner.local.errors import RunFailure
from runner.local.status import TR_CONFIG_ERROR

STEP_UID = STEP_GID = 65534  # nobody/nogroup: who steps are when the executor is root
SYSTEM_DIRS = ("usr", "etc", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_DROP = ["--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--"]


@dataclass(frozen=True)
class Bind:
    """A host directory (or file) mounted at `dest` in the sandbox; read-only unless `writable`."""

    source: Path
    dest: Path
    writable: bool


class SandboxUnavailable(Exception):
    """This host cannot run steps in a sandbox; the message says why in one line."""


def _root() -> bool:
    return os.geteuid() == 0


@functools.cache
def _system() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The system directories of this host (realpaths), and the bwrap arguments that show them read-only."""
    dirs: list[str] = []
    args: list[str] = []
    for name in SYSTEM_DIRS:
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]  # merged /usr: /bin -> usr/bin
        elif path.is_dir():
            dirs.append(str(path))
            args += ["--ro-bind", str(path), str(path)]
    return tuple(dirs), tuple(args)


def _base() -> list[str]:
    bwrap = shutil.which("bwrap") or "bwrap"
    command = [bwrap, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--as-pid-1"]
    if not _root():
        command.append("--unshare-user")  # the executor's own uid, mapped to itself
    return [
        *command,
        *_system()[1],
        *("--dev", "/dev", "--chmod", "1777", "/dev/shm", "--proc", "/proc"),
        *("--perms", "1777", "--tmpfs", "/tmp", "--perms", "1777", "--dir", "/var/tmp"),
    ]


def _drop_privileges() -> list[str]:
    if not _root():
        return []
    setpriv = shutil.which("setpriv") or "setpriv"
    return [setpriv, f"--reuid={STEP_UID}", f"--regid={STEP_GID}", *_DROP]


@functools.cache
def unavailable_reason() -> str | None:
    """None if steps can be sandboxed here, else the reason in one line (tried once per process)."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed; on Debian: apt-get install bubblewrap"
    if _root() and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed"
    try:
        done = subprocess.run(
            [*_base(), "--", *_drop_privileges(), "true"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bubblewrap cannot start: {exc}"
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {done.returncode}"]
        return f"bubblewrap cannot make a sandbox here (user and PID namespaces are needed): {lines[0]}"
    return None


def shared_dir(base: Path, *parts: str) -> Path:
    """`base/parts...` created where missing and made writable by steps (0777, an emptyDir's mode), without
    following a symlink below `base`, where a step may have left one."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            try:
                sub = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                raise RunFailure(TR_CONFIG_ERROR, f"{base.joinpath(*parts)}: not a directory: {exc.strerror}") from None
            os.close(fd)
            fd = sub
        os.fchmod(fd, 0o777)
    finally:
        os.close(fd)
    return base.joinpath(*parts)


def read_beneath(directory: Path, name: str) -> bytes | None:
    """The content of a file a step wrote in `directory`; None if there is none, or it is no regular file (a
    symlink a step made would otherwise let the executor read any file)."""
    try:
        fd = os.open(directory / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return handle.read()


class Sandbox:
    """How the processes of one run are sandboxed: `hidden` paths are not visible to them, except what lies in
    `exposed` (the run's own directory, the claims) and is bound for a container."""

    def __init__(self, hidden: Sequence[Path], exposed: Sequence[Path]) -> None:
        self.uid = STEP_UID if _root() else os.geteuid()
        self.hidden = tuple(Path(os.path.realpath(p)) for p in hidden)
        self.exposed = tuple(Path(os.path.realpath(p)) for p in exposed)
        self._tmpfs = [str(p) for p in _hide_targets(self.hidden, self.uid, _root())]
        # Directories that exist in every sandbox: a bind below them needs no directories made for it.
        self._present = tuple(d for d in _system()[0] if not any(t == d or t.startswith(d + "/") for t in self._tmpfs))

    @contextlib.contextmanager
    def command(
        self, argv: list[str], binds: Sequence[Bind], cwd: Path, extra: Sequence[str] = ()
    ) -> Iterator[tuple[list[str], list[int]]]:
        """The bwrap command line that runs `argv` with `binds` (in order: a later one shadows) in `cwd` (made if
        missing, mode 0777, as Tekton's working-dir initializer makes it), and the descriptors it needs passed;
        they are closed when the block ends."""
        fds: list[int] = []
        try:
            command = [*_base(), *(a for t in self._tmpfs for a in ("--tmpfs", t))]
            made: set[str] = set()
            for bind in binds:
                fd = self._open_source(bind.source)
                fds.append(fd)
                command += self._parents(str(bind.dest), made)
                command += ["--bind-fd" if bind.writable else "--ro-bind-fd", str(fd), str(bind.dest)]
            # The working directory is made inside the sandbox, where a symlink a step left leads nowhere outside.
            command += ["--perms", "0777", "--dir", str(cwd), "--chdir", str(cwd)]
            yield [*command, *extra, "--", *_drop_privileges(), *argv], fds
        finally:
            for fd in fds:
                os.close(fd)

    def _open_source(self, source: Path) -> int:
        try:
            fd = os.open(source, os.O_PATH)
        except OSError as exc:
            raise RunFailure(TR_CONFIG_ERROR, f"cannot mount {source}: {exc.strerror}") from None
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if _inside(real, self.hidden) and not _inside(real, self.exposed):
            os.close(fd)
            raise RunFailure(TR_CONFIG_ERROR, f"cannot mount {source}: the hub's data is not visible to steps")
        return fd

    def _parents(self, dest: str, made: set[str]) -> list[str]:
        """The directories above `dest` the sandbox lacks, made searchable by the step's user (bwrap would make
        them 0700); those of earlier binds are there already and left as they are."""
        out: list[str] = []
        end = dest.find("/", 1)
        while end > 0:
            directory = dest[:end]
            end = dest.find("/", end + 1)
            if directory in made or any(directory == d or directory.startswith(d + "/") for d in self._present):
                continue
            made.add(directory)
            out += ["--perms", "0755", "--dir", directory]
        return out

    def popen(
        self, argv: list[str], binds: Sequence[Bind], cwd: Path, env: dict[str, str], stdout: IO[bytes] | int
    ) -> Confined:
        """Starts `argv` in a sandbox, output to `stdout` (stderr with it)."""
        read_end, write_end = os.pipe()
        try:
            with self.command(argv, binds, cwd, ["--info-fd", str(write_end)]) as (command, fds):
                proc = subprocess.Popen(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=[*fds, write_end],
                )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return Confined(proc, os.fdopen(read_end, "rb"))


class Confined:
    """A process in its sandbox: bwrap (`proc`, whose exit status is the process's) and the sandbox's PID 1.

    Signals go to PID 1 (from outside its namespace, SIGKILL always lands; SIGTERM only if it handles it). Once
    PID 1 is gone the kernel has killed every process of the namespace, and only then does bwrap exit: `wait`
    returning means nothing the process started is left."""

    def __init__(self, proc: subprocess.Popen[bytes], info: IO[bytes]) -> None:
        self.proc = proc
        self._info: IO[bytes] | None = info
        self._pid: int | None = None
        self._lock = threading.Lock()

    def _pid1(self) -> int | None:
        with self._lock:
            if self._info is not None:
                with self._info:  # bwrap writes {"child-pid": N, ...} once PID 1 exists, then closes it
                    try:
                        data: Any = json.loads(self._info.read() or b"{}")
                    except ValueError:
                        data = {}
                self._info = None
                pid = data.get("child-pid") if isinstance(data, dict) else None
                self._pid = pid if isinstance(pid, int) else None
            return self._pid

    def signal(self, sig: int) -> None:
        """Sends `sig` to the sandbox's PID 1 while it runs; SIGKILL also to bwrap when there is none."""
        if self.proc.poll() is not None:
            return
        pid = self._pid1()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if pid is not None and self.proc.poll() is None:
                os.kill(pid, sig)
            elif sig == signal.SIGKILL:
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """Ends the process and all it started, as deleting a pod does."""
        self.signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        """The exit code, 128 + N when a signal N ended it, as container runtimes report it."""
        code = self.proc.wait(timeout)
        with self._lock:  # a kill from another thread may be reading it
            if self._info is not None:
                self._info.close()
                self._info = None
        return 128 - code if code < 0 else code

    def poll(self) -> int | None:
        """The exit code if it has ended, else None."""
        return None if self.proc.poll() is None else self.wait()


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _hide_targets(hidden: Sequence[Path], uid: int, switches_user: bool) -> list[Path]:
    """Where to mount an empty tmpfs so that `hidden` is gone: the path itself, or, when the step's user could not
    reach it anyway, the highest directory above it that the user cannot search (so binds below it are reachable
    through the 0755 directories made for them). Only paths inside system directories need it: nothing else of
    the host is in a sandbox."""
    system = [Path(d) for d in _system()[0]]
    targets: list[Path] = []
    for path in hidden:
        if not path.exists() or not _inside(path, system) or path in system:
            continue
        target = path
        if switches_user:
            for ancestor in reversed([path, *path.parents][:-1]):  # from the top, / excluded
                if not _searchable(ancestor, uid):
                    target = ancestor
                    break
        targets.append(target)
    return targets


def _searchable(path: Path, uid: int) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == uid:  # the step user's only group has the same number
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)
