"""A container of the pod (step or sidecar) as a sandboxed host process: its paths, mounts, environment, command
and directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runner.local.hostpaths import Mount, PathMap
from runner.local.sandbox import Bind, Confined, Sandbox, shared_dir
from runner.local.stepenv import step_environment
from runner.local.steps import host_argv, own_working_dir, working_directory
from runner.local.workspaces import Lookup


@dataclass
class HostLaunch:
    """How to start one container's process on the host, in its sandbox (process.Launch); `argv` None when the
    image's entrypoint is unknown."""

    argv: list[str] | None
    env: dict[str, str]
    cwd: Path
    paths: PathMap
    binds: list[Bind]
    sandbox: Sandbox
    probe_address: str = "127.0.0.1"  # the host's loopback: a pod's containers share the host's network
    image_id: str = ""  # no image runs: the one the container names

    def start(self, stdout: IO[bytes] | int) -> Confined:
        """Starts the container's command in its sandbox."""
        return self.sandbox.popen(self.argv or [], self.binds, self.cwd, self.env, stdout)

    def probe(self, argv: list[str]) -> Confined:
        """Starts an exec probe in a sandbox of its own with the container's mounts, environment and directory."""
        return self.sandbox.popen(argv, self.binds, self.cwd, self.env, subprocess.DEVNULL)

    def missing_program(self) -> str | None:
        """What a container runtime says when the command does not exist, or None when it does."""
        program = (self.argv or [""])[0]
        found = os.access(program, os.X_OK) if "/" in program else shutil.which(program, path=self.env.get("PATH"))
        return None if found else f"{program}: No such file or directory\n"


def prepare_launch(
    container: dict[str, Any],
    script_name: str,
    mounts: list[Mount],
    writable: tuple[str, ...],
    private: Path,
    scripts_dir: Path,
    pod: str,
    namespace: str,
    lookup: Lookup | None,
    sandbox: Sandbox,
) -> HostLaunch:
    """The process of a container: paths rewritten, script written, mounts listed."""
    # A working directory outside every mount is made in the container's own filesystem: a private stand-in,
    # mapped like a mount so that the step's text and $PWD agree on it.
    paths = PathMap([*mounts, *own_working_dir(container, mounts, private)])
    shared_dir(private.parent, private.name)
    env = step_environment(container, paths, private, pod, namespace, lookup)
    argv = host_argv(container, script_name, paths, scripts_dir)
    cwd = working_directory(container, paths, private)
    writable_hosts = [host for path in writable if (host := paths.host_path(path)) is not None]
    binds = container_binds(mounts, writable_hosts, private, scripts_dir)
    return HostLaunch(argv, env, cwd, paths, binds, sandbox, image_id=str(container.get("image") or ""))


def container_binds(mounts: list[Mount], writable: list[Path], private: Path, scripts: Path) -> list[Bind]:
    """What a container's sandbox mounts: each mount at its host path (a read-only one from its source onto its
    view) and the scripts read-only, parents before children, then its private directory and the `writable` paths
    below protected mounts."""
    listed = [Bind(m.source, m.host, False) if m.source is not None else Bind(m.host, m.host, not m.protected)
              for m in mounts]  # fmt: skip
    listed.append(Bind(scripts, scripts, False))
    listed.sort(key=lambda bind: len(bind.dest.parts))
    kept: list[Bind] = []
    for bind in [*listed, Bind(private, private, True), *(Bind(path, path, True) for path in writable)]:
        kept = [k for k in kept if k.dest != bind.dest]  # a later mount at the same path shadows
        if not any(_covers(k, bind) for k in kept):
            kept.append(bind)
    return kept


def _covers(outer: Bind, inner: Bind) -> bool:
    # A bind of a directory onto itself already shows what lies below it, with the same mode.
    same = outer.source == outer.dest and inner.source == inner.dest and outer.writable == inner.writable
    return same and str(inner.dest).startswith(f"{outer.dest}/")
