"""A Task's sidecars as host processes: started before the steps, awaited until ready, stopped after (§1.8)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from runner.local.process import BackgroundProcess, Interrupt, Launch
from runner.local.status import STEP_COMPLETED, STEP_ERROR, TR_SIDECAR_FAILED

# A pod's deletion gives containers SIGTERM, then SIGKILL once the grace period is over (shortened here).
STOP_GRACE = 2.0
# Readiness probes are polled this often, not every `periodSeconds`, so steps start as soon as they can.
READY_POLL = 0.05


def sidecar_name(sidecar: dict[str, Any], index: int) -> str:
    """The status name of a sidecar: its own, or `unnamed-<index>`."""
    return str(sidecar.get("name") or f"unnamed-{index}")


@dataclass
class Sidecar:
    """One started sidecar."""

    name: str
    spec: dict[str, Any]
    launch: Launch
    process: BackgroundProcess
    started: float
    ready: bool = False

    @property
    def container(self) -> str:
        """The container name, `sidecar-<name>`."""
        return f"sidecar-{self.name}"


class SidecarGroup:
    """The sidecars of one pod: started, awaited, stopped, reported in `status.sidecars`."""

    def __init__(self, interrupt: Interrupt) -> None:
        self.interrupt = interrupt
        self.sidecars: list[Sidecar] = []

    def start(self, name: str, spec: dict[str, Any], launch: Launch, process: BackgroundProcess) -> None:
        """Registers a sidecar whose process was just started; a cancel or timeout kills it."""
        if process.proc is not None:
            self.interrupt.attach(process.proc)
        self.sidecars.append(Sidecar(name, spec, launch, process, time.monotonic()))

    def wait_ready(self) -> None:
        """Returns once every sidecar is ready (its readinessProbe passes, or it has none) or has ended, as
        Tekton's await-sidecar-readiness does, or when the run is interrupted."""
        while not self.interrupt.triggered:
            for sidecar in self.sidecars:
                if not sidecar.ready:
                    sidecar.ready = sidecar.process.poll() is not None or self._probe_passes(sidecar)
            if all(s.ready for s in self.sidecars):
                return
            self.interrupt.wait(READY_POLL)

    def stop(self) -> tuple[str, str] | None:
        """Stops the sidecars still running; the failure of one that exited non-zero on its own before, if any
        (its pod would end Failed: `SidecarFailed`)."""
        failure = None
        for sidecar in self.sidecars:
            code = sidecar.process.poll()
            if code not in (None, 0) and failure is None and not self.interrupt.triggered:
                failure = (TR_SIDECAR_FAILED, f'"{sidecar.container}" exited with code {code}: Error')
        for sidecar in self.sidecars:
            sidecar.process.stop(STOP_GRACE)
            if sidecar.process.proc is not None:
                self.interrupt.detach(sidecar.process.proc)
        return failure

    def states(self) -> list[dict[str, Any]]:
        """`status.sidecars[]` entries in Tekton's shape."""
        out = []
        for sidecar in self.sidecars:
            code = sidecar.process.exit_code if sidecar.process.exit_code is not None else 0
            out.append(
                {
                    "name": sidecar.name,
                    "container": sidecar.container,
                    "imageID": sidecar.launch.image_id,
                    "terminated": {
                        "exitCode": code,
                        "reason": STEP_COMPLETED if code == 0 else STEP_ERROR,
                        "startedAt": sidecar.process.started_at,
                        "finishedAt": sidecar.process.finished_at or sidecar.process.started_at,
                    },
                }
            )
        return out

    def _probe_passes(self, sidecar: Sidecar) -> bool:
        probe = sidecar.spec.get("readinessProbe")
        if not isinstance(probe, dict):
            return True
        if time.monotonic() - sidecar.started < float(probe.get("initialDelaySeconds") or 0):
            return False
        timeout = float(probe.get("timeoutSeconds") or 1)
        if isinstance(probe.get("exec"), dict):
            command = [sidecar.launch.paths.rewrite(str(c)) for c in probe["exec"].get("command") or []]
            if not command:
                return False
            proc = sidecar.launch.probe(command)
            try:
                return proc.wait(timeout) == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return False
        for kind in ("httpGet", "tcpSocket", "grpc"):
            action = probe.get(kind)
            if isinstance(action, dict):
                return _network_probe(kind, action, sidecar.spec, timeout, sidecar.launch.probe_address)
        return True


def _port(value: Any, spec: dict[str, Any]) -> int | None:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    for port in spec.get("ports") or []:
        if isinstance(port, dict) and port.get("name") == value:
            return int(port.get("containerPort") or 0) or None
    return None


def _network_probe(kind: str, action: dict[str, Any], spec: dict[str, Any], timeout: float, address: str) -> bool:
    # As the kubelet probes, at the pod's address unless the probe names a host.
    port = _port(action.get("port"), spec)
    host = str(action.get("host") or address)
    if port is None:
        return False
    if kind != "httpGet":
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=timeout).close()
            return True
        return False
    scheme = str(action.get("scheme") or "HTTP").lower()
    path = str(action.get("path") or "/")
    try:
        with urllib.request.urlopen(f"{scheme}://{host}:{port}{path}", timeout=timeout) as answer:
            return 200 <= answer.status < 400
    except (OSError, urllib.error.URLError, ValueError):
        return False
