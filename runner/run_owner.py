"""Which process runs a run: `host:pid:start` (start is the process's start time in clock ticks since boot, so a
reused pid is not taken for the process that ended). A run whose process has ended can no longer end on its own."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def _start_ticks(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat; None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # the fields after the command name, which may hold spaces


def current_owner() -> str:
    """This process, as the runs it launches record it."""
    return f"{socket.gethostname()}:{os.getpid()}:{_start_ticks(os.getpid()) or ''}"


def owner_ended(owner: str) -> bool:
    """Whether `owner` is a process of this host that has ended (False for other hosts and unreadable owners)."""
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    ticks = _start_ticks(int(pid))
    return ticks is None or (bool(start) and ticks != start)
