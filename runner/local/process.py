"""Step and sidecar processes (each in its sandbox, runner/local/sandbox.py, or its container,
runner/local/podman_pod.py): logs, step timeouts, and interruption by cancel or timeout."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from runner.local.hostpaths import PathMap
from runner.local.status import timestamp

LineSink = Callable[[str], None]


class Running(Protocol):
    """A container's process as it runs: a sandboxed host process (sandbox.Confined) or a podman container
    (podman_pod.ContainerProcess). `proc` is the local process whose output is the container's."""

    proc: subprocess.Popen[bytes]

    def signal(self, sig: int) -> None:
        """Sends `sig` to the container's PID 1 while it runs."""
        ...

    def kill(self) -> None:
        """Ends the container and all it started."""
        ...

    def wait(self, timeout: float | None = None) -> int:
        """The exit code (128 + N for signal N) once it has ended; TimeoutExpired after `timeout` seconds."""
        ...

    def poll(self) -> int | None:
        """The exit code if it has ended, else None."""
        ...


class Launch(Protocol):
    """How to start one container of a pod (step or sidecar), as a host process or in podman.

    `argv` is the container's command, None when the image's entrypoint is unknown (host processes only);
    `paths` maps container paths in text (an exec probe's command) to where the process sees them;
    `probe_address` is where network probes reach the container (the pod's address); `image_id` is what the
    container's status reports as its imageID.
    """

    paths: PathMap
    probe_address: str
    image_id: str

    @property
    def argv(self) -> list[str] | None: ...

    def start(self, stdout: IO[bytes] | int) -> Running:
        """Starts the container's command, output (stderr with it) to `stdout`."""
        ...

    def probe(self, argv: list[str]) -> Running:
        """Starts an exec probe's command beside the container's, with its mounts and environment."""
        ...

    def missing_program(self) -> str | None:
        """What a container runtime says when the command does not exist, or None when it does (or cannot be
        known before it starts)."""
        ...


class Interrupt:
    """A request to stop a run (cancellation or a timeout): kills the processes attached to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._procs: set[Running] = set()
        self._children: list[Interrupt] = []
        self.reason: str | None = None
        self.message: str | None = None

    def child(self) -> Interrupt:
        """An interrupt that also fires, with the same reason, when this one does (e.g. one TaskRun attempt)."""
        child = Interrupt()
        with self._lock:
            self._children.append(child)
            fired = self._event.is_set()
        if fired:
            child.trigger(self.reason or "", self.message or "")
        return child

    def trigger(self, reason: str, message: str) -> bool:
        """Stops everything attached, once; the first reason wins. True if this call did it."""
        with self._lock:
            if self._event.is_set():
                return False
            self.reason, self.message = reason, message
            self._event.set()
            procs = list(self._procs)
            children = list(self._children)
        for proc in procs:
            proc.kill()
        for child in children:
            child.trigger(reason, message)
        return True

    @property
    def triggered(self) -> bool:
        """True once a stop was requested."""
        return self._event.is_set()

    def wait(self, timeout: float | None) -> bool:
        """Waits until a stop is requested or `timeout` seconds pass; True if stopped."""
        return self._event.wait(timeout)

    def attach(self, proc: Running) -> None:
        """Kills `proc` on a stop, at once if one was already requested."""
        with self._lock:
            self._procs.add(proc)
            stopped = self._event.is_set()
        if stopped:
            proc.kill()

    def detach(self, proc: Running) -> None:
        """Forgets a process that has ended."""
        with self._lock:
            self._procs.discard(proc)


@dataclass
class ProcessResult:
    """How a step process ended."""

    exit_code: int
    timed_out: bool
    started_at: str
    finished_at: str


def run_process(
    launch: Launch,
    *,
    log_path: Path,
    interrupt: Interrupt,
    timeout: float | None,
    sink: LineSink | None,
) -> ProcessResult:
    """Runs a step's command to its end, output (stdout and stderr merged) to `log_path` and to `sink` line by line;
    when it returns, nothing the step started is left running."""
    started = timestamp()
    with open(log_path, "wb") as log:
        missing = launch.missing_program()
        if missing is not None:
            # What a container runtime reports for a missing binary: exit code 127 and a message in the log.
            log.write(missing.encode())
            return ProcessResult(127, False, started, timestamp())
        proc = launch.start(subprocess.PIPE if sink else log)
        interrupt.attach(proc)
        timed_out = threading.Event()
        timer = None
        if timeout:

            def expire() -> None:
                timed_out.set()
                proc.kill()

            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        reader = None
        if sink is not None and proc.proc.stdout is not None:
            reader = threading.Thread(target=_copy_lines, args=(proc.proc.stdout, log, sink), daemon=True)
            reader.start()
        code = proc.wait()
        if timer is not None:
            timer.cancel()
        if reader is not None:
            reader.join()
        interrupt.detach(proc)
    return ProcessResult(code, timed_out.is_set(), started, timestamp())


class BackgroundProcess:
    """A sidecar process: started, left running while the steps run, stopped with SIGTERM then SIGKILL."""

    def __init__(self, launch: Launch, *, log_path: Path, sink: LineSink | None, not_started: str = "") -> None:
        """Starts the launch's command; without one, writes `not_started` to the log and ends at once with exit
        code 127."""
        self.started_at = timestamp()
        self.finished_at: str | None = None
        self.exit_code: int | None = None
        self.stopped = False
        self.proc: Running | None = None
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in _ended, when the process is done
        self._reader: threading.Thread | None = None
        missing = not_started if launch.argv is None else launch.missing_program()
        if launch.argv is None or missing is not None:
            self._log.write((missing or "").encode())
            self._ended(127)
            return
        self.proc = launch.start(subprocess.PIPE if sink else self._log)
        stdout = self.proc.proc.stdout
        if sink is not None and stdout is not None:
            self._reader = threading.Thread(target=_copy_lines, args=(stdout, self._log, sink), daemon=True)
            self._reader.start()

    def poll(self) -> int | None:
        """The exit code if the process has ended by itself (or was stopped), else None."""
        if self.exit_code is None and self.proc is not None:
            code = self.proc.poll()
            if code is not None:
                self._ended(code)
        return self.exit_code

    def stop(self, grace: float) -> None:
        """SIGTERM to the container's PID 1, SIGKILL to all it started after `grace` seconds, as a container
        runtime stops a container (PID 1 gets SIGTERM only if it handles it)."""
        if self.poll() is not None or self.proc is None:
            return
        self.stopped = True
        self.proc.signal(signal.SIGTERM)
        try:
            code = self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._ended(code)

    def _ended(self, code: int) -> None:
        if self._reader is not None:
            self._reader.join()
        self._log.close()
        self.exit_code = code
        self.finished_at = timestamp()


def _copy_lines(stream: object, log: object, sink: LineSink) -> None:
    for line in stream:  # type: ignore[attr-defined]
        log.write(line)  # type: ignore[attr-defined]
        log.flush()  # type: ignore[attr-defined]
        sink(line.decode(errors="replace"))
    stream.close()  # type: ignore[attr-defined]
