"""Step specs: names, stepTemplate merge, StepAction merge, step `when`, and the host command line of a step."""

from __future__ import annotations

import copy
import secrets
from pathlib import Path
from typing import Any

from runner.local.celwhen import evaluate_cel
from runner.local.errors import RunFailure
from runner.local.hostpaths import Mount, PathMap
from runner.local.images import default_command, script_shell, shebang_command
from runner.local.params import ParamError, given_values, resolve_params
from runner.local.status import TR_VALIDATION_FAILED
from runner.local.substitution import Replacements, add_value, substitute, substitute_param_value

# Fields a StepAction provides; the referencing step keeps the rest (name, onError, timeout, when, ...).
ACTION_FIELDS = (
    "image",
    "command",
    "args",
    "script",
    "env",
    "workingDir",
    "volumeMounts",
    "results",
    "securityContext",
)
# Step fields that are not container fields, so a stepTemplate never supplies them.
_STEP_ONLY = ("script", "onError", "timeout", "results", "when", "workspaces", "ref", "params", "name", "displayName")
_DEFAULT_SCRIPT_HEADER = "#!/bin/sh\nset -e\n"


def step_name(step: dict[str, Any], index: int) -> str:
    """The status name of a step: its own, or `unnamed-<index>`."""
    return str(step.get("name") or f"unnamed-{index}")


def _merge_by(key: str, base: list[Any], patch: list[Any]) -> list[Any]:
    merged = [dict(item) for item in base if isinstance(item, dict)]
    for item in patch:
        if not isinstance(item, dict):
            continue
        for i, existing in enumerate(merged):
            if existing.get(key) == item.get(key):
                merged[i] = dict(item)
                break
        else:
            merged.append(dict(item))
    return merged


def merge_step_template(template: dict[str, Any] | None, step: dict[str, Any]) -> dict[str, Any]:
    """A step with its Task's stepTemplate under it: scalars from the step win, `env` merges by name and
    `volumeMounts` by mountPath, `command`/`args` are replaced whole (§1.5)."""
    if not template:
        return step
    merged = {k: copy.deepcopy(v) for k, v in template.items() if k not in _STEP_ONLY}
    for key, value in step.items():
        if key == "env":
            merged["env"] = _merge_by("name", merged.get("env") or [], value or [])
        elif key == "volumeMounts":
            merged["volumeMounts"] = _merge_by("mountPath", merged.get("volumeMounts") or [], value or [])
        else:
            merged[key] = value
    return merged


def merge_step_action(step: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    """The container a StepAction step runs: the action's fields with the step's own (name, onError, when...)."""
    merged = {k: v for k, v in step.items() if k not in ("ref", "params")}
    for key in ACTION_FIELDS:
        if key in action:
            merged[key] = copy.deepcopy(action[key])
    return merged


def apply_step_action(
    step: dict[str, Any],
    index: int,
    action: dict[str, Any],
    step_results: Replacements,
    template: dict[str, Any] | None,
    later_passes: list[Replacements],
) -> dict[str, Any]:
    """A step that references a StepAction: the action's params resolved from the step's (step results
    substituted), its fields substituted, merged into the step, stepTemplate under it."""
    given = {k: substitute_param_value(v, step_results) for k, v in given_values(step.get("params")).items()}
    try:
        values = resolve_params(action.get("params"), given, propagate=False)
    except ParamError as exc:
        raise RunFailure(
            TR_VALIDATION_FAILED,
            f'invalid input params for StepAction of step "{step_name(step, index)}": {exc.message}',
        ) from exc
    reps = Replacements()
    for key, value in values.items():
        add_value(reps, "params", key, value)
    fields = substitute({k: v for k, v in action.items() if k != "params"}, reps)
    for later in later_passes:
        fields = substitute(fields, later)
    return merge_step_template(template, merge_step_action(step, fields))


def when_passes(expressions: list[dict[str, Any]] | None) -> bool:
    """Whether all expressions hold, ANDed: `in`/`notin` by exact string comparison, `cel` evaluated (CELError
    if one cannot be)."""
    for expr in expressions or []:
        if "cel" in expr:
            if not evaluate_cel(str(expr["cel"])):
                return False
            continue
        values = [str(v) for v in expr.get("values") or []]
        found = str(expr.get("input", "")) in values
        if (expr.get("operator") == "notin") == found:
            return False
    return True


def resolve_when(expressions: list[dict[str, Any]] | None, reps: Replacements) -> list[dict[str, Any]]:
    """When expressions with variables substituted; an array used as `input` is JSON-encoded."""
    resolved = []
    for expr in expressions or []:
        out = dict(expr)
        if "cel" in out:
            out["cel"] = substitute(str(out["cel"]), reps)
        if "input" in out:
            out["input"] = substitute(str(out["input"]), reps)
        if "values" in out:
            out["values"] = substitute(list(out.get("values") or []), reps)
        resolved.append(out)
    return resolved


def write_script(script: str, scripts_dir: Path, name: str, image: str) -> tuple[Path, list[str] | None]:
    """Writes a script as Tekton's place-scripts does (`script-<i>-…`, `sidecar-script-<i>-…`); returns the file
    and its interpreter in `image` (None: no shebang)."""
    has_shebang = script.strip().startswith("#!")
    path = scripts_dir / f"{name}-{secrets.token_hex(3)}"
    path.write_text(script if has_shebang else _DEFAULT_SCRIPT_HEADER + script)
    path.chmod(0o755)
    if has_shebang:
        return path, shebang_command(script.strip().splitlines()[0], image)
    return path, None


def step_command(step: dict[str, Any], script_file: Path | None, interpreter: list[str] | None) -> list[str] | None:
    """The host argv of a step (args already rewritten); None when the image's entrypoint is unknown."""
    args = [str(a) for a in step.get("args") or []]
    image = str(step.get("image") or "")
    if script_file is not None:
        runner = interpreter if interpreter is not None else script_shell(image)
        return [*runner, str(script_file), *args]
    command = [str(c) for c in step.get("command") or []]
    if command:
        return [*command, *args]
    return default_command(image, args)


def host_argv(step: dict[str, Any], script_name: str, paths: PathMap, scripts_dir: Path) -> list[str] | None:
    """The host argv of a step or sidecar with container paths rewritten; its script written to `scripts_dir`."""
    rewritten = dict(step)
    for key in ("command", "args"):
        if key in step:
            rewritten[key] = [paths.rewrite(_text(a)) for a in step.get(key) or []]
    script_file, interpreter = None, None
    if step.get("script"):
        script_file, interpreter = write_script(
            paths.rewrite(str(step["script"])), scripts_dir, script_name, str(step.get("image") or "")
        )
    return step_command(rewritten, script_file, interpreter)


def container_working_dir(step: dict[str, Any]) -> str:
    """A step's `workingDir` as an absolute container path ("" for the image's own): relative ones live under
    /workspace, where Tekton's working-dir-initializer makes them (tektoncd/pipeline: pkg/pod/workingdir_init.go)."""
    working_dir = _text(step.get("workingDir"))
    if working_dir and not working_dir.startswith("/"):
        return "/workspace/" + working_dir
    return working_dir


def working_directory(step: dict[str, Any], paths: PathMap, private: Path) -> Path:
    """The host directory a step starts in (its sandbox makes it if missing)."""
    working_dir = container_working_dir(step)
    # An image's WORKDIR (usually /) is the container's own: private to the step here. One outside every mount
    # has its stand-in in `paths` (own_working_dir).
    return (paths.host_path(working_dir) if working_dir else None) or private


def own_working_dir(step: dict[str, Any], mounts: list[Mount], private: Path) -> list[Mount]:
    """The stand-in mount of a working directory outside every mount, in the step's private directory."""
    working_dir = container_working_dir(step)
    if not working_dir or PathMap(mounts).host_path(working_dir) is not None:
        return []
    return [Mount(working_dir, private / "rootfs" / working_dir.lstrip("/"))]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
