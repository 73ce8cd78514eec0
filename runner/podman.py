"""podman as it works on this machine: the OCI runtime and the containers.conf it needs to start a container.

Debian's podman starts containers with crun and raises their RLIMIT_NOFILE and RLIMIT_NPROC to 1048576 unless
containers.conf sets ulimits (containers/podman: pkg/specgen/generate/oci.go, addRlimits: an empty
`default_ulimits` leaves the limits as inherited). Some hosts refuse both: crun does not run on a cgroup v1/v2
hybrid, and a process without CAP_SYS_RESOURCE cannot raise a hard limit. `detect_podman` tries podman as it is
configured, then each OCI runtime with and without those ulimits, and keeps the first setup that starts a
container. What that setup needs beyond podman's own configuration is written to a containers.conf of ours, which
every podman command gets as CONTAINERS_CONF; podman then reads that file alone (containers/common:
pkg/config/config.go, systemConfigs), so the user's own files are left untouched and unread.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from catalog.errors import TaskhubError

OCI_RUNTIMES = ("crun", "runc")
NO_ULIMITS = "default_ulimits = []"
PROBE_TIMEOUT_SECONDS = 60


class PodmanUnavailable(TaskhubError):
    """podman is missing or cannot start a container here; the message says what is missing, in one line."""


class PodmanFailed(TaskhubError):
    """A podman command failed; the message names the command and gives podman's own error."""


@dataclass(frozen=True)
class Podman:
    """How to call podman here: `argv(...)` for a command line and `environ()` for the environment it needs.

    `needs` lists what this machine needs beyond podman's own configuration ("--runtime runc",
    "default_ulimits = []"), empty when podman works as configured; `containers_conf` is then None.
    """

    binary: str
    containers_conf: Path | None = None
    needs: tuple[str, ...] = ()

    def argv(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """`base` (default: this process's environment) with CONTAINERS_CONF pointing at our file when we need one."""
        env = dict(os.environ if base is None else base)
        if self.containers_conf is not None:
            env["CONTAINERS_CONF"] = str(self.containers_conf)
        return env

    def run(self, *args: str, timeout: float | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `podman ARGS` to completion with its output captured; a failure raises with podman's own message."""
        done = subprocess.run(self.argv(*args), env=self.environ(), capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise PodmanFailed(f"podman {' '.join(args)}: {_last_line(done.stderr) or f'exit {done.returncode}'}")
        return done

    def describe(self) -> str:
        """One line: what podman needs here, and how a person gets the same setup in a shell."""
        if self.containers_conf is None:
            return f"podman ({self.binary}) works as configured"
        return f"podman needs {' and '.join(self.needs)} here: export CONTAINERS_CONF={self.containers_conf}"


def detect_podman(config_dir: Path, *, binary: str | None = None) -> Podman:
    """The podman setup that starts a container here, its containers.conf (if one is needed) written to
    `config_dir`; raises PodmanUnavailable with one line naming what is missing."""
    found = binary or shutil.which("podman")
    if found is None:
        raise PodmanUnavailable("container mode needs podman: apt-get install podman runc")
    config_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="probe-rootfs-", dir=config_dir) as scratch:
        rootfs = host_rootfs(Path(scratch))
        failures: dict[str, str] = {}
        as_configured = Podman(found)
        if (error := _probe(as_configured, rootfs)) is None:
            return as_configured
        failures["as configured"] = error
        for runtime in OCI_RUNTIMES:
            for ulimits in (False, True):
                needs = (f"--runtime {runtime}", *([NO_ULIMITS] if ulimits else []))
                candidate = Podman(found, _write_conf(config_dir, runtime, ulimits), needs)
                if (error := _probe(candidate, rootfs)) is None:
                    return candidate
                failures[" and ".join(needs)] = error
    tried = "; ".join(f"{setup}: {error}" for setup, error in failures.items())
    raise PodmanUnavailable(f"podman cannot start a container here ({tried})")


def _write_conf(config_dir: Path, runtime: str, ulimits: bool) -> Path:
    """A containers.conf for one setup, named after it: detections running at once write the same bytes."""
    lines = ["# Written by taskhub (runner/podman.py): what podman needs on this machine."]
    if ulimits:
        lines += ["[containers]", NO_ULIMITS]
    lines += ["[engine]", f'runtime = "{runtime}"']
    path = config_dir / f"containers-{runtime}{'-no-ulimits' if ulimits else ''}.conf"
    with tempfile.NamedTemporaryFile("w", dir=config_dir, delete=False) as scratch:
        scratch.write("\n".join(lines) + "\n")
    os.replace(scratch.name, path)
    return path


def host_rootfs(path: Path) -> Path:
    """An empty root filesystem that runs the host's own programs once `host_program_options` mount /usr: no
    image needed (the probe here, the network holder of a pod in runner/local/podman_pod.py)."""
    for directory in ("usr", "proc", "dev", "sys", "tmp", "etc"):
        (path / directory).mkdir(parents=True, exist_ok=True)
    for top in ("bin", "sbin", "lib", "lib64"):
        host, link = Path("/") / top, path / top
        if host.is_symlink() and not link.is_symlink():  # a merged-/usr host: /bin -> usr/bin
            link.symlink_to(os.readlink(host))
        elif host.is_dir() and not host.is_symlink():  # a host without merged /usr keeps these apart
            link.mkdir(exist_ok=True)
    return path


def host_program_options(rootfs: Path) -> list[str]:
    """`podman run` options that run a host program over `rootfs` (host_rootfs): /usr and the unmerged /bin,
    /lib... of the host read-only; the program follows."""
    mounts = ["-v", "/usr:/usr:ro"]
    for top in ("bin", "sbin", "lib", "lib64"):
        host = Path("/") / top
        if host.is_dir() and not host.is_symlink():
            mounts += ["-v", f"{host}:/{top}:ro"]
    return [*mounts, "--rootfs", str(rootfs)]


def _probe(podman: Podman, rootfs: Path) -> str | None:
    """None if `podman run` of /usr/bin/true works with this setup, else podman's error in one line."""
    try:
        done = podman.run(
            "run", "--rm", "--network", "none", *host_program_options(rootfs), "/usr/bin/true",
            timeout=PROBE_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"podman run did not finish in {PROBE_TIMEOUT_SECONDS} s"
    if done.returncode == 0:
        return None
    return _last_line(done.stderr) or f"podman run exited {done.returncode}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("Error: ") if lines else ""


def main(argv: list[str]) -> int:
    """`python -m runner.podman DIR`: detect, keep the containers.conf in DIR, print its path (nothing when podman
    needs none) on stdout and what podman needs on stderr; exit 1 with the reason when no setup works."""
    if len(argv) != 1:
        print("usage: python -m runner.podman CONFIG_DIR", file=sys.stderr)
        return 2
    try:
        podman = detect_podman(Path(argv[0]))
    except PodmanUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    print(podman.describe(), file=sys.stderr)
    print(podman.containers_conf or "")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
