"""The spool under `taskhub serve`, on SQLite and PostgreSQL: its mover records what the sink accepted, and what a
hub answered 202 before it was killed, mover and all, is recorded by `taskhub events ingest` afterwards."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import requests

from tests.conftest import free_port
from tests.jobs.processes import wait_until
from tests.test_cli import TASKHUB, run  # noqa: F401 (run: the fixture)
from tests.triggers.test_spool import LISTENER_YAML

BODY = b'{"after": "0123abcd"}'


def children(pid: int) -> dict[int, str]:
    """The child processes of `pid`: their command lines."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == pid:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):  # ended meanwhile
            continue
    return out


def ended(pid: int) -> bool:
    """Whether a process has exited (gone, or a zombie: its descriptors, and so its locks, are released)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def spool_counts(port: int) -> dict[str, int]:
    metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    found = re.findall(r'^taskhub_trigger_spool_events_total\{stage="(\w+)"\} (\d+)\.0$', metrics, re.MULTILINE)
    return {stage: int(count) for stage, count in found}


def listed(run) -> dict[str, dict]:  # noqa: F811
    return {e["eventID"]: e for e in json.loads(run("events", "list", "-o", "json", "--limit", "100").stdout)["data"]}


def test_what_a_killed_hub_answered_202_is_recorded_by_events_ingest(run, tmp_path):  # noqa: F811
    run("db", "upgrade")
    run("apply", "-f", "-", "-n", "ns1", stdin=LISTENER_YAML)
    spool = tmp_path / "spool"
    run.env["TASKHUB_TRIGGERS_SPOOL"] = str(spool)  # on PostgreSQL too: "auto" spools on SQLite only
    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [TASKHUB, "serve", "--port", str(port), "--workers", "1", "--no-worker"], env=run.env,
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1/listeners/ns1/el1"
    try:

        def up() -> bool:
            try:
                return requests.get(url + "/live", timeout=5).status_code == 200
            except requests.ConnectionError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                return False

        wait_until(up, "taskhub serve to answer")
        first = requests.post(url, data=BODY, timeout=30).json()["eventID"]
        wait_until(lambda: first in listed(run), "serve's mover to record the event")
        busy = run("events", "ingest", check=False)
        assert busy.returncode == 1 and "another process is moving the spool" in busy.stderr

        # The mover's counts are in the hub's /metrics (it counts just after its commit).
        wait_until(lambda: spool_counts(port) == {"spooled": 1, "recorded": 1}, "the mover's count in /metrics")

        (mover,) = [pid for pid, cmd in children(server.pid).items() if "events ingest --follow" in cmd]
        os.kill(mover, signal.SIGSTOP)  # it records nothing more
        answered = []
        for _ in range(3):
            answer = requests.post(url, data=BODY, timeout=30)
            assert answer.status_code == 202
            answered.append(answer.json()["eventID"])
        assert not set(answered) & set(listed(run))
        assert spool_counts(port) == {"spooled": 4, "recorded": 1}  # what an operator's alert sees
    finally:
        movers = [pid for pid, cmd in children(server.pid).items() if "events ingest" in cmd]
        os.killpg(server.pid, signal.SIGKILL)  # the hub and its web worker, as a power cut leaves them
        for pid in movers:  # and the mover, in a session of its own
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda pid=pid: ended(pid), f"the mover {pid} to end")
        server.wait()

    assert "recorded 3 events from the spool" in run("events", "ingest").stderr
    events = listed(run)
    assert set(events) == {first, *answered} and {events[e]["status"] for e in answered} == {"queued"}
    assert "recorded 0 events" in run("events", "ingest").stderr
    assert list(spool.glob("*.spool")) == []


def test_events_ingest_by_hand_needs_the_hubs_secrets_key(run, tmp_path):  # noqa: F811
    run("db", "upgrade")
    run.env["TASKHUB_TRIGGERS_SPOOL"] = str(tmp_path / "spool")
    refused = run("events", "ingest", check=False)
    assert refused.returncode == 1 and "no secrets key" in refused.stderr  # a new key would open nothing
    assert not (tmp_path / "data" / "secrets.key").exists()
    run("secret", "create", "s", "--from-literal", "k=v")  # the hub makes its key
    assert "recorded 0 events" in run("events", "ingest").stderr
