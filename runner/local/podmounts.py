"""What each container of a pod mounts: /tekton, /workspace, the Task's workspaces (shared or isolated to the
steps and sidecars that list them, §1.7) and its volumeMounts, read-only ones as views (runner/local/sandbox.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.local.errors import RunFailure
from runner.local.hostpaths import Mount
from runner.local.sandbox import shared_dir
from runner.local.status import TR_TASK_VALIDATION_FAILED, TR_VALIDATION_FAILED
from runner.local.steps import step_name
from runner.local.workspaces import VolumeMaker, join_sub_path


@dataclass
class WorkspaceMount:
    """A workspace declared by the Task, with its binding (None when an optional one is unbound)."""

    name: str
    mount_path: str
    binding: dict[str, Any] | None
    read_only: bool


def isolated_workspaces(steps: list[dict[str, Any]], sidecars: list[dict[str, Any]]) -> set[str]:
    """Workspaces some step or sidecar lists in its own `workspaces`: only those containers mount them."""
    return {
        str(usage.get("name"))
        for container in [*steps, *sidecars]
        for usage in container.get("workspaces") or []
        if isinstance(usage, dict)
    }


def check_container_workspaces(kind: str, containers: list[dict[str, Any]], declared: set[str]) -> None:
    """`undefined workspace` for a step or sidecar listing a workspace the Task does not declare."""
    for index, container in enumerate(containers):
        for at, usage in enumerate(container.get("workspaces") or []):
            name = str(usage.get("name")) if isinstance(usage, dict) else ""
            if name not in declared:
                raise RunFailure(
                    TR_TASK_VALIDATION_FAILED,
                    f'invalid value: undefined workspace "{name}": spec.{kind}[{index}].workspaces[{at}].name',
                )


class PodMounts:
    """The host directories of one pod's workspaces and volumes, and the mounts each container gets."""

    def __init__(
        self,
        pod_dir: Path,
        tekton: Path,
        volumes: VolumeMaker,
        workspaces: list[WorkspaceMount],
        declared_volumes: list[dict[str, Any]],
        isolated: set[str],
    ) -> None:
        self.dir, self.tekton, self.volumes = pod_dir, tekton, volumes
        self.workspaces = {ws.name: ws for ws in workspaces}
        self.declared_volumes = {str(v.get("name")): v for v in declared_volumes}
        self.isolated = isolated
        self.made: dict[str, tuple[Path, bool]] = {}
        self._views: dict[tuple[str, Path], Path] = {}
        self.workspace_dirs: dict[str, tuple[Path, bool]] = {}
        self._step_base: list[Mount] | None = None
        for ws in workspaces:
            if ws.binding is not None:
                base, read_only = volumes.make("workspace", ws.name, ws.binding)
                host = join_sub_path(base, ws.binding.get("subPath"))
                self.workspace_dirs[ws.name] = (host, read_only or ws.read_only)

    def _mount(self, container_path: str, host: Path, read_only: bool, label: str) -> Mount:
        if not read_only:
            return Mount(container_path, host)
        key = (label, host)
        if key not in self._views:
            view = self.dir / "views" / f"{label}-{len(self._views)}"
            view.mkdir(parents=True, exist_ok=True)
            self._views[key] = view
        return Mount(container_path, self._views[key], source=host)

    def step_mounts(self, steps: list[dict[str, Any]], step: dict[str, Any]) -> list[Mount]:
        """/tekton (protected), /workspace, the step status aliases, workspaces and volumeMounts of one step."""
        if self._step_base is None:
            base = [Mount("/tekton", self.tekton, protected=True), Mount("/workspace", self.dir / "workspace")]
            # /tekton/steps/<i> and /tekton/steps/step-<name> are the status directories under /tekton/run/<i>.
            for index, other in enumerate(steps):
                status_dir = self.tekton / "run" / str(index) / "status"
                for alias in (str(index), f"step-{step_name(other, index)}"):
                    base.append(Mount(f"/tekton/steps/{alias}", status_dir, protected=True))
            self._step_base = base
        return self._step_base + self._workspace_mounts(step, sidecar=False) + self.volume_mounts(step)

    def sidecar_mounts(self, sidecar: dict[str, Any], private: Path) -> list[Mount]:
        """A sidecar's own /tekton and /workspace (not the steps'), workspaces and volumeMounts."""
        shared_dir(private.parent, private.name)
        shared_dir(private, "rootfs")
        mounts = [Mount("/tekton", shared_dir(private, "rootfs", "tekton")),
                  Mount("/workspace", shared_dir(private, "rootfs", "workspace"))]  # fmt: skip
        own = self.volume_mounts(sidecar)
        taken = {m.container.rstrip("/") for m in own}
        shared = [m for m in self._workspace_mounts(sidecar, sidecar=True) if m.container.rstrip("/") not in taken]
        return mounts + shared + own

    def _workspace_mounts(self, container: dict[str, Any], *, sidecar: bool) -> list[Mount]:
        listed = {
            str(u.get("name")): str(u.get("mountPath") or u.get("mountpath") or "")
            for u in container.get("workspaces") or []
            if isinstance(u, dict)
        }
        mounts = []
        for name, ws in self.workspaces.items():
            if name not in self.workspace_dirs:
                continue
            host, read_only = self.workspace_dirs[name]
            if name in self.isolated:
                if name not in listed:
                    continue
                path = listed[name] or ws.mount_path
            else:
                path = ws.mount_path
            mounts.append(self._mount(path, host, read_only, f"ws-{name}"))
        return mounts

    def volume_mounts(self, container: dict[str, Any]) -> list[Mount]:
        """The mounts of a container's `volumeMounts`, each volume made once per pod."""
        mounts = []
        for vm in container.get("volumeMounts") or []:
            name = str(vm.get("name"))
            if name not in self.made:
                if name not in self.declared_volumes:
                    raise RunFailure(TR_VALIDATION_FAILED, f'volumeMount "{name}" names no volume of the task')
                self.made[name] = self.volumes.make("volume", name, self.declared_volumes[name])
            base, read_only = self.made[name]
            host = join_sub_path(base, vm.get("subPath")) if vm.get("subPath") else base
            read_only = read_only or bool(vm.get("readOnly"))
            mounts.append(self._mount(str(vm.get("mountPath")), host, read_only, f"vol-{name}"))
        return mounts
