"""What every run object of one `LocalExecutor.run` call shares: its directory, resolver, logs and children."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.local.errors import ResolutionError
from runner.local.pod import Services
from runner.local.sandbox import shared_dir

Resolver = Callable[[dict[str, Any], str], dict[str, Any]]
# The directory of a PersistentVolumeClaim by name; ResolutionError when there is no such claim.
ClaimSource = Callable[[str], Path]
# Told the child runs as they stand whenever one starts or ends: the finished ones, then the running ones.
ProgressSink = Callable[[list[dict[str, Any]]], None]


def describe_ref(ref: dict[str, Any]) -> str:
    """A short human name for a reference: `"name"` or `resolver "hub"`."""
    if ref.get("resolver"):
        return f'with resolver "{ref["resolver"]}"'
    return f'"{ref.get("name", "")}"'


@dataclass
class RunEnv:
    """The shared context of one run: where pods and logs go, how references resolve, the child runs made."""

    root: Path
    services: Services
    resolver: Resolver | None
    namespace: str
    default_timeout: float | None
    children: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    claims_root: Path | None = None
    # Claims made from a PipelineRun's volumeClaimTemplate: private to the run, under its directory.
    private_claims: dict[str, Path] = field(default_factory=dict)
    progress: ProgressSink | None = None
    claim_source: ClaimSource | None = None
    running: dict[str, dict[str, Any]] = field(default_factory=dict)  # child runs started, not yet ended, by name

    def resolve(self, ref: dict[str, Any], kind: str) -> tuple[dict[str, Any], str]:
        """The spec a reference points at, and the referenced object's name; ResolutionError if it cannot."""
        if self.resolver is None:
            raise ResolutionError(
                f"cannot resolve {kind} {describe_ref(ref)}: the local executor was given no resolver, "
                "so only inline specs can run"
            )
        try:
            obj = self.resolver(ref, kind)
        except ResolutionError:
            raise
        except Exception as exc:  # the callback is someone else's code: any failure is a resolution failure
            raise ResolutionError(f"{kind} {describe_ref(ref)}: {exc}") from exc
        if not isinstance(obj, dict):
            raise ResolutionError(f"{kind} {describe_ref(ref)}: the resolver returned no object")
        if "spec" in obj and ("kind" in obj or "metadata" in obj):
            spec = obj.get("spec") or {}
            name = str((obj.get("metadata") or {}).get("name") or ref.get("name") or "")
        else:
            spec, name = obj, str(ref.get("name") or "")
        if not isinstance(spec, dict):
            raise ResolutionError(f"{kind} {describe_ref(ref)}: its spec is not a mapping")
        return copy.deepcopy(spec), name

    def lookup(self, kind: str, name: str) -> dict[str, Any]:
        """A ConfigMap or Secret by name, through the same resolver callback."""
        if self.resolver is None:
            raise ResolutionError(f"no resolver was given, so {kind} objects cannot be looked up")
        try:
            obj = self.resolver({"name": name}, kind)
        except ResolutionError:
            raise
        except Exception as exc:
            raise ResolutionError(str(exc)) from exc
        if not isinstance(obj, dict):
            raise ResolutionError(f"{kind} {name!r} not found")
        return obj

    def claim_dir(self, claim: str) -> Path:
        """The directory standing in for a PersistentVolumeClaim: the run's own for a volumeClaimTemplate's, else
        `claim_source`'s, else one shared by every run under the same work root."""
        if claim in self.private_claims:
            path = self.private_claims[claim]
        elif self.claim_source is not None:
            path = self.claim_source(claim)
        else:
            if "/" in claim or claim in (".", "..") or not claim:
                raise ResolutionError(f"invalid claim name {claim!r}")
            path = (self.claims_root or self.root / "claims") / claim
        path.parent.mkdir(parents=True, exist_ok=True)
        return shared_dir(path.parent, path.name)

    def child_started(self, obj: dict[str, Any], start_time: str) -> None:
        """A child run was started: the caller hears of it, Running since start_time, until it ends."""
        running = {**obj, "status": {"conditions": [{"type": "Succeeded", "status": "Unknown", "reason": "Running"}],
                                     "startTime": start_time}}  # fmt: skip
        with self.lock:
            self.running[str(obj["metadata"]["name"])] = running
            self._tell()

    def add_child(self, obj: dict[str, Any]) -> None:
        """Records a finished child run (TaskRun or PipelineRun) for the caller."""
        with self.lock:
            self.children.append(obj)
            self.running.pop(str(obj["metadata"].get("name")), None)
            self._tell()

    def _tell(self) -> None:
        if self.progress is not None:
            self.progress([*self.children, *self.running.values()])
