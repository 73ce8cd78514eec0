"""Step processes on the host: process groups, logs, step timeouts, and interruption by cancel or timeout."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runner.local.status import timestamp

LineSink = Callable[[str], None]

# Running as root, a step would write through every permission bit; without CAP_DAC_OVERRIDE the mode bits of
# read-only mounts and other steps' /tekton/run directories hold for it, as read-only mounts do in a pod.
_SETPRIV = shutil.which("setpriv")
DROP_DAC = [_SETPRIV, "--bounding-set=-dac_override", "--"] if _SETPRIV and os.geteuid() == 0 else []


class Interrupt:
    """A request to stop a run (cancellation or a timeout): kills the process groups attached to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._event = threading.Event()
        self._procs: set[subprocess.Popen[bytes]] = set()
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
            kill_group(proc)
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

    def attach(self, proc: subprocess.Popen[bytes]) -> None:
        """Kills `proc` on a stop, at once if one was already requested."""
        with self._lock:
            self._procs.add(proc)
            stopped = self._event.is_set()
        if stopped:
            kill_group(proc)

    def detach(self, proc: subprocess.Popen[bytes]) -> None:
        """Forgets a process that has ended."""
        with self._lock:
            self._procs.discard(proc)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kills a step's whole process group (the step and anything it left running), as deleting a pod does."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclass
class ProcessResult:
    """How a step process ended."""

    exit_code: int
    timed_out: bool
    started_at: str
    finished_at: str


def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    interrupt: Interrupt,
    timeout: float | None,
    sink: LineSink | None,
    drop_dac: bool,
) -> ProcessResult:
    """Runs one step to its end, output (stdout and stderr merged) to `log_path` and to `sink` line by line."""
    command = [*DROP_DAC, *argv] if drop_dac else argv
    started = timestamp()
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if sink else log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            # What a container runtime reports for a missing binary: exit code 127 and a message in the log.
            log.write(f"{argv[0]}: {exc.strerror or exc}\n".encode())
            return ProcessResult(127, False, started, timestamp())
        interrupt.attach(proc)
        timed_out = threading.Event()
        timer = None
        if timeout:

            def expire() -> None:
                timed_out.set()
                kill_group(proc)

            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        reader = None
        if sink is not None and proc.stdout is not None:
            reader = threading.Thread(target=_copy_lines, args=(proc.stdout, log, sink), daemon=True)
            reader.start()
        code = proc.wait()
        # Whatever the step left running dies with it, as it would when its container exits.
        kill_group(proc)
        if timer is not None:
            timer.cancel()
        if reader is not None:
            reader.join()
        interrupt.detach(proc)
    if code < 0:
        code = 128 - code  # killed by a signal: 137 for SIGKILL, as container runtimes report
    return ProcessResult(code, timed_out.is_set(), started, timestamp())


class BackgroundProcess:
    """A sidecar process: started, left running while the steps run, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        argv: list[str] | None,
        *,
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        sink: LineSink | None,
        not_started: str = "",
    ) -> None:
        """Starts `argv`; with None, writes `not_started` to the log and ends at once with exit code 127."""
        self.started_at = timestamp()
        self.finished_at: str | None = None
        self.exit_code: int | None = None
        self.stopped = False
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in _ended, when the process is done
        self._reader: threading.Thread | None = None
        if argv is None:
            self._log.write(not_started.encode())
            self._ended(127)
            return
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if sink else self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._log.write(f"{argv[0]}: {exc.strerror or exc}\n".encode())
            self._ended(127)
            return
        if sink is not None and self.proc.stdout is not None:
            self._reader = threading.Thread(target=_copy_lines, args=(self.proc.stdout, self._log, sink), daemon=True)
            self._reader.start()

    def poll(self) -> int | None:
        """The exit code if the process has ended by itself (or was stopped), else None."""
        if self.exit_code is None and self.proc is not None and self.proc.poll() is not None:
            self._ended(self.proc.returncode)
        return self.exit_code

    def stop(self, grace: float) -> None:
        """SIGTERM to the process (a container's PID 1), SIGKILL to all it started after `grace` seconds, as a
        container runtime stops a container."""
        if self.poll() is not None or self.proc is None:
            return
        self.stopped = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            self.proc.wait()
        self._ended(self.proc.returncode)

    def _ended(self, code: int) -> None:
        if self.proc is not None:
            kill_group(self.proc)  # whatever it left running goes with it
        if self._reader is not None:
            self._reader.join()
        self._log.close()
        self.exit_code = 128 - code if code < 0 else code
        self.finished_at = timestamp()


def _copy_lines(stream: object, log: object, sink: LineSink) -> None:
    for line in stream:  # type: ignore[attr-defined]
        log.write(line)  # type: ignore[attr-defined]
        log.flush()  # type: ignore[attr-defined]
        sink(line.decode(errors="replace"))
    stream.close()  # type: ignore[attr-defined]
