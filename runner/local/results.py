"""Task and step results: read from their files, typed by declaration, checked against declarations (§1.6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from runner.local.errors import RunFailure
from runner.local.sandbox import read_beneath
from runner.local.status import TR_RESULT_TOO_LARGE, TR_VALIDATION_FAILED
from runner.local.substitution import ParamValue


def result_type(decl: dict[str, Any]) -> str:
    """The declared type of a result (`string` unless given, `object` when it has properties)."""
    if decl.get("type"):
        return str(decl["type"])
    return "object" if decl.get("properties") else "string"


def read_result_files(directory: Path, decls: list[dict[str, Any]], into: dict[str, str]) -> None:
    """Adds (or overwrites) the raw value of each declared result whose file exists in `directory`."""
    for decl in decls:
        name = str(decl.get("name"))
        content = read_beneath(directory, name) if "/" not in name else None
        if content is not None:
            into[name] = content.decode(errors="replace")


def typed_results(raw: dict[str, str], decls: list[dict[str, Any]], max_size: int) -> dict[str, ParamValue]:
    """Raw result text as typed values; raises RunFailure with Tekton's reason on any mismatch."""
    declared = {str(d.get("name")): d for d in decls}
    values: dict[str, ParamValue] = {}
    mismatched: list[str] = []
    missing_keys: dict[str, list[str]] = {}
    for name, text in raw.items():
        if len(text.encode()) > max_size:
            raise RunFailure(
                TR_RESULT_TOO_LARGE,
                f"Result exceeded the maximum allowed limit: {name!r} is {len(text.encode())} bytes, "
                f"the limit is {max_size}",
            )
        decl = declared.get(name, {})
        want = result_type(decl)
        if want == "string":
            values[name] = text
            continue
        try:
            parsed = json.loads(text)
        except ValueError:
            continue  # unparsable array/object results are dropped, as Tekton does
        value: ParamValue
        if isinstance(parsed, list):
            value = [v if isinstance(v, str) else json.dumps(v) for v in parsed]
        elif isinstance(parsed, dict):
            value = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in parsed.items()}
        else:
            value = text
        got = "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "string"
        if got != want:
            mismatched.append(
                f' "{name}": task result is expected to be "{want}" type '
                f'but was initialized to a different type "{got}"'
            )
            continue
        if isinstance(value, dict):
            absent = [k for k in decl.get("properties") or {} if k not in value]
            if absent:
                missing_keys[name] = absent
        values[name] = value
    if mismatched:
        raise RunFailure(
            TR_VALIDATION_FAILED,
            "Provided results don't match declared results; may be invalid JSON or missing result declaration: "
            + ",".join(mismatched),
        )
    if missing_keys:
        listed = " ".join(f"{k}:[{' '.join(v)}]" for k, v in missing_keys.items())
        raise RunFailure(
            TR_VALIDATION_FAILED,
            f"missing keys for these results which are required in TaskResult's properties map[{listed}]",
        )
    return values


def status_results(values: dict[str, ParamValue]) -> list[dict[str, Any]]:
    """`status.results` entries (`{name, type, value}`) in first-appearance order."""
    out = []
    for name, value in values.items():
        kind = "array" if isinstance(value, list) else "object" if isinstance(value, dict) else "string"
        out.append({"name": name, "type": kind, "value": value})
    return out
