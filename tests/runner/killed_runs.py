"""`taskhub run` killed with SIGKILL while a step runs, for the tests that nothing of the step outlives it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

TASKHUB = str(Path(sys.executable).parent / "taskhub")


def kill_run_once_locked(run_file: Path, env: dict[str, str], claim_dir: Path) -> None:
    """Runs `taskhub run -f run_file` and kills it with SIGKILL once its step wrote `claim_dir/ready` (after taking
    a lock on `claim_dir/lock`); returns when that lock is free, AssertionError if it is still held after 60 s."""
    subprocess.run([TASKHUB, "db", "upgrade"], env=env, check=True, capture_output=True)
    worker = subprocess.Popen([TASKHUB, "run", "-f", str(run_file)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (claim_dir / "ready").exists():  # the event: the step holds the lock
            assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    # Blocks until the lock's holder is gone; -w only bounds a failure, the pass comes as soon as it dies.
    done = subprocess.run(["flock", "-w", "60", str(claim_dir / "lock"), "true"], check=False)
    assert done.returncode == 0, "a process of the killed run's step still holds its lock"
