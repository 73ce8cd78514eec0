"""A container of the pod (step or sidecar) as a host process: its paths, environment, command and directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.local import readonly
from runner.local.hostpaths import Mount, PathMap
from runner.local.stepenv import step_environment
from runner.local.steps import host_argv, working_directory
from runner.local.workspaces import Lookup


@dataclass
class Launch:
    """How to start one container's process; `argv` None when the image's entrypoint is unknown."""

    argv: list[str] | None
    env: dict[str, str]
    cwd: Path
    drop_dac: bool
    paths: PathMap


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
) -> Launch:
    """The process of a container: paths rewritten, script written, read-only mounts set up."""
    paths = PathMap(mounts, writable)
    private.mkdir(parents=True, exist_ok=True)
    env = step_environment(container, paths, private, pod, namespace, lookup)
    argv = host_argv(container, script_name, paths, scripts_dir)
    cwd = working_directory(container, paths, private)
    drop_dac = paths.touched_protected
    views = sorted(paths.touched_views.items())
    if argv is not None and views:
        if readonly.namespaces_work():
            argv, drop_dac = readonly.wrap(argv, [(src, view) for view, src in views], drop_dac=drop_dac), False
        else:
            readonly.snapshot([(src, view) for view, src in views])
            drop_dac = True
    return Launch(argv, env, cwd, drop_dac, paths)
