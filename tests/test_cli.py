"""The taskhub command line, run as a user runs it: real processes, real databases, real servers."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.db import make_engine
from hub.config import Settings
from jobs.leases import Leases, catalog_lease
from jobs.worker import CANCEL_SECONDS
from tests.conftest import free_port
from tests.jobs.processes import wait_until
from tests.jobs.test_syncs import SLOW_GIT, add_version, git_catalog, process_ended
from tests.test_migrations import HEAD

TASKHUB = str(Path(sys.executable).parent / "taskhub")


@pytest.fixture
def run(tmp_path, empty_database_url):
    env = {
        **os.environ,
        "TASKHUB_DATA_DIR": str(tmp_path / "data"),
        "TASKHUB_DATABASE_URL": empty_database_url,
    }

    def run(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([TASKHUB, *args], input=stdin, env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    run.env = env
    return run


def test_add_sync_errors(run, fixture_catalog):
    assert f"database at revision {HEAD}" in run("db", "upgrade").stdout
    assert "taskhub catalog sync tekton" in run("catalog", "add", "tekton", str(fixture_catalog)).stdout
    synced = run("catalog", "sync")
    assert "tekton: 19 resources, 47 versions" in synced.stdout
    assert "47 added, 0 updated, 0 removed" in synced.stdout
    # the 5 warnings include a sample that is not YAML and the platform linux/390x
    assert "problems: 5 error, 5 warning, 14 info" in synced.stdout
    assert "[1/1] tekton" in synced.stderr  # progress goes to stderr, the summary to stdout
    assert "no changes" in run("catalog", "sync", "tekton").stdout
    errors = run("catalog", "errors", "tekton").stdout.splitlines()
    assert "error\ttask/yq/0.5/yq.yaml\tversion label '0.4' does not match the folder version '0.5'" in errors
    assert any(line.startswith("info\ttask/artifacthub-repo.yml\tplain file") for line in errors)
    only = run("catalog", "errors", "tekton", "--level", "error").stdout.splitlines()
    assert len(only) == 5 and all(line.startswith("error\t") for line in only)
    assert run("catalog", "list").stdout.startswith(f"tekton\tcommunity\t{fixture_catalog}\trefresh 30m\tlast sync 20")


def test_clear_errors_and_exit_codes(run, fixture_catalog, tmp_path):
    before = run("catalog", "add", "x", str(fixture_catalog), check=False)
    assert before.returncode == 1 and "run `taskhub db upgrade` first" in before.stderr
    run("db", "upgrade")
    missing = run("catalog", "sync", "nope", check=False)
    assert missing.returncode == 1 and "catalog 'nope' not found" in missing.stderr
    assert "no catalogs" in run("catalog", "sync", check=False).stderr
    bad_type = run("catalog", "add", "y", str(fixture_catalog), "--type", "weird", check=False)
    assert bad_type.returncode == 2 and "weird" in bad_type.stderr

    copy = tmp_path / "copy"
    shutil.copytree(fixture_catalog, copy, symlinks=True)
    run("catalog", "add", "moving", str(copy))
    run("catalog", "sync", "moving")
    copy.rename(tmp_path / "moved-away")
    failed = run("catalog", "sync", "moving", check=False)
    assert failed.returncode == 1
    assert "sync failed, the previous index is kept" in failed.stderr and "does not exist" in failed.stderr
    assert "last sync failed" in run("catalog", "errors", "moving").stdout
    assert "47 versions" not in failed.stdout
    listed = next(line for line in run("catalog", "list").stdout.splitlines() if line.startswith("moving\t"))
    assert " UTC failed: catalog directory " in listed and "does not exist" in listed


def test_three_concurrent_syncs_of_one_git_catalog_all_succeed(run, tmp_path):
    """Held back together by the catalog's lease and then let go at once, each sync waits for the one before it
    instead of failing on the checkout's .git/index.lock."""
    run("db", "upgrade")
    run("catalog", "add", "hello", f"file://{git_catalog(tmp_path, '0.1', '0.2')}")
    leases = Leases(make_engine(run.env["TASKHUB_DATABASE_URL"]))
    assert leases.acquire(catalog_lease("hello"), "the test", 60)
    logs = [tmp_path / f"sync-{n}.log" for n in range(3)]
    syncs = []  # in the order of logs
    for log in logs:
        with log.open("w") as err:
            syncs.append(subprocess.Popen([TASKHUB, "catalog", "sync", "hello"], env=run.env, stdout=subprocess.PIPE,
                                          stderr=err, text=True))  # fmt: skip
    wait_until(
        lambda: all("waiting for the sync of hello that the test runs" in log.read_text() for log in logs),
        "every sync to wait for the catalog's lease",
    )
    leases.release(catalog_lease("hello"), "the test")
    outcomes = [
        (sync.wait(timeout=120), sync.communicate()[0], log.read_text()) for sync, log in zip(syncs, logs, strict=True)
    ]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes
    assert all("hello: 1 resources, 2 versions" in out for _, out, _ in outcomes)
    assert " UTC succeeded\t" in run("catalog", "list").stdout


def test_a_sync_killed_during_checkout_leaves_nothing_that_stops_the_next(run, tmp_path):
    """kill -9 of `taskhub catalog sync` while git holds .git/index.lock: the next sync waits out the killed one's
    lease, removes the lock and succeeds."""
    run("db", "upgrade")
    repo = git_catalog(tmp_path, "0.1")
    run("catalog", "add", "hello", f"file://{repo}")
    run("catalog", "sync", "hello")
    add_version(repo, "0.2")
    marker, bin_dir = tmp_path / "checkout-started", tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(SLOW_GIT.format(marker=marker))
    (bin_dir / "git").chmod(0o755)
    env = {**run.env, "TASKHUB_JOB_LEASE_SECONDS": "2"}
    killed = subprocess.Popen([TASKHUB, "catalog", "sync", "hello"], env={**env, "PATH": f"{bin_dir}:{env['PATH']}"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    git_pid = int(wait_until(lambda: marker.exists() and marker.read_text().strip(), "the checkout to hang"))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    wait_until(lambda: process_ended(git_pid), "the killed sync's git to end with it")
    lock = Path(run.env["TASKHUB_DATA_DIR"]) / "catalogs" / "hello" / ".git" / "index.lock"
    assert lock.exists()
    later = subprocess.run([TASKHUB, "catalog", "sync", "hello"], env=env, capture_output=True, text=True, timeout=120)
    assert later.returncode == 0, later.stderr
    assert "removed index.lock left by an interrupted sync" in later.stderr
    assert "hello: 1 resources, 2 versions" in later.stdout
    assert not lock.exists()


def test_refresh_intervals_are_set_on_add_changed_later_and_listed(run, fixture_catalog):
    run("db", "upgrade")
    bad = run("catalog", "add", "tekton", str(fixture_catalog), "--refresh", "10x", check=False)
    assert bad.returncode == 2
    assert "Invalid value for '--refresh': refresh interval '10x': expected 'never' or a number" in bad.stderr
    assert "tekton" not in run("catalog", "list").stdout  # nothing was added
    added = run("catalog", "add", "tekton", str(fixture_catalog), "--refresh", "5m").stdout
    assert "added catalog tekton (local: " in added and "refresh 5m" in added

    def listed(*group: str) -> list[str]:
        return run(*(group or ("catalog",)), "list").stdout.splitlines()[0].split("\t")

    assert listed()[3:] == ["refresh 5m", "last sync never synced", "next sync due now"]
    run("catalog", "sync", "tekton")
    refresh, last, following = listed()[3:]
    assert refresh == "refresh 5m" and last.startswith("last sync 20") and last.endswith(" UTC succeeded")
    assert following.startswith("next sync 20") and following.endswith(" UTC")  # about 5 minutes after the sync
    assert run("catalog", "set", "tekton", "--refresh", "never").stdout == "tekton: refresh never, next sync never\n"
    assert listed()[3:][::2] == ["refresh never", "next sync never"]
    unknown = run("catalog", "set", "nope", "--refresh", "5m", check=False)
    assert unknown.returncode == 1 and "catalog 'nope' not found" in unknown.stderr
    assert run("catalog", "set", "tekton", "--refresh", "0m", check=False).returncode == 2
    not_a_registry = run("registry", "set", "tekton", "--refresh", "1h", check=False)
    assert not_a_registry.returncode == 1 and "registry 'tekton' not found" in not_a_registry.stderr
    assert run("registry", "list").stdout == ""
    run("registry", "add", "bundles", "127.0.0.1:5999/catalog", "--refresh", "never")
    assert listed("registry")[:4] == ["bundles", "community", "127.0.0.1:5999/catalog", "refresh never"]
    assert "bundles: refresh 1h, next sync due now" in run("registry", "set", "bundles", "--refresh", "1h").stdout


def _serve_stop_bound(env: dict[str, str]) -> float:
    """The longest `taskhub serve` may take to stop on SIGTERM: granian kills a web worker still stopping after the
    grace period (workers_kill_timeout, hub/wsgi/server.py; a CI run saw one not stop), then each of serve's
    children (job worker, spool's mover) gets the grace period and CANCEL_SECONDS (hub/cli/serve.py, _stop)."""
    grace = float(env.get("TASKHUB_SHUTDOWN_GRACE_SECONDS", Settings().shutdown_grace_seconds))
    return grace + 2 * (grace + CANCEL_SECONDS + 5) + 5


@contextlib.contextmanager
def serving(run, *options: str) -> Iterator[tuple[str, subprocess.Popen[str], list[str], list[str]]]:
    """`taskhub serve` on a free port until the block ends (SIGTERM); (base URL, process, the lines of its standard
    output and of its standard error so far), once it answers."""
    port = free_port()
    server = subprocess.Popen(
        [TASKHUB, "serve", "--host", "127.0.0.1", "--port", str(port), *options],
        env=run.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base, output, errors = f"http://127.0.0.1:{port}", [], []
    threading.Thread(target=lambda: output.extend(server.stdout), daemon=True).start()
    # Read standard error too: a full pipe would block the server (and its job worker) on their next message.
    reader = threading.Thread(target=lambda: errors.extend(server.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/v1/openapi.json", timeout=5) as response:
                    response.read()
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield base, server, output, errors
    finally:
        server.terminate()
        try:
            server.wait(timeout=_serve_stop_bound(run.env))
        except subprocess.TimeoutExpired:
            server.kill()
            raise AssertionError("taskhub serve did not stop on SIGTERM:\n" + "".join(errors[-40:])) from None
        reader.join(timeout=30)  # standard error read to its end


def test_serve_with_granian(run, fixture_catalog):
    run("db", "upgrade")
    run("catalog", "add", "tekton", str(fixture_catalog))
    run("catalog", "sync")
    with serving(run, "--workers", "1", "--access-log") as (base, server, output, errors):
        with urllib.request.urlopen(f"{base}/v1/resource/tekton/task/git-clone", timeout=5) as response:
            body = response.read().decode()
        assert '"latestVersion":{"id":' in body and '"version":"0.10"' in body
        request = urllib.request.Request(f"{base}/?q=clone", headers={"Accept": "text/html"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert "git clone" in response.read().decode()
        deadline = time.monotonic() + 10  # the access log line is written once the answer is out
        while not any('"GET /?q=clone HTTP/1.1" 200' in line for line in output):  # query included
            assert time.monotonic() < deadline, output
            time.sleep(0.05)
        # and a path without a query is written without a "?"
        assert any('"GET /v1/resource/tekton/task/git-clone HTTP/1.1" 200' in line for line in output), output
    assert server.returncode == 0  # SIGTERM is a clean stop
    assert f"taskhub serving on {base}/" in "".join(errors)


def test_a_resolve_waiting_on_a_hung_registry_holds_a_thread_not_the_worker(run, fixture_catalog):
    run("db", "upgrade")
    run("catalog", "add", "tekton", str(fixture_catalog))
    run("catalog", "sync")
    hung = socket.create_server(("127.0.0.1", 0))  # accepts, and never answers
    hung.settimeout(30)
    host = f"127.0.0.1:{hung.getsockname()[1]}"
    run.env["TASKHUB_RESOLVE_REGISTRIES"] = host
    with hung, serving(run, "--workers", "1", "--threads", "2") as (base, _, _, _):
        resolved = []
        query = urllib.parse.urlencode({"resolver": "bundles", "bundle": f"{host}/task/x:1", "name": "x"})
        waiting = threading.Thread(target=lambda: resolved.append(_status(f"{base}/v1/resolve?{query}")))
        waiting.start()
        asked, _ = hung.accept()  # the resolve is now waiting on the registry
        with asked:
            assert _status(f"{base}/v1/resource/tekton/task/git-clone") == 200
            assert waiting.is_alive() and resolved == []  # answered while the resolve still waits
            waiting.join(30)
    assert resolved == [502]  # and the resolve gave up with a clear error


SLEEPING_RUN = {
    "apiVersion": "tekton.dev/v1",
    "kind": "TaskRun",
    "metadata": {"name": "sleeper"},
    "spec": {"taskSpec": {"steps": [{"name": "nap", "image": "alpine", "script": "echo napping; sleep 120"}]}},
}


def test_stopping_the_server_cancels_the_runs_it_was_running(run):
    # The run sleeps 120 s; the embedded worker gives it one second of grace, then cancels it.
    run.env["TASKHUB_SHUTDOWN_GRACE_SECONDS"] = "1"
    run("db", "upgrade")
    token = run("token", "create", "ci", "--scope", "runs:write").stdout.split()[0]
    with serving(run, "--workers", "1") as (base, _, _, _):
        started = urllib.request.Request(
            f"{base}/v1/runs", data=json.dumps(SLEEPING_RUN).encode(), method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(started, timeout=30) as response:
            run_id = json.load(response)["data"]["id"]
        deadline = time.monotonic() + 30
        while "napping" not in run("runs", "logs", str(run_id)).stdout:
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.2)
    shown = run("runs", "show", str(run_id)).stdout
    assert "Status:     Cancelled" in shown, shown


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_bundles_and_registries(run, fixture_catalog, registry, auth_registry, tmp_path):
    run("db", "upgrade")
    run("catalog", "add", "tekton", str(fixture_catalog))
    run("catalog", "sync")
    published = run("catalog", "publish", "tekton", "--registry", f"{registry.host}/catalog")
    assert "tekton -> " in published.stdout and "47 pushed, 0 already there, 0 failed" in published.stdout
    assert "[47/47]" in published.stderr
    again = run("catalog", "publish", "tekton", "--registry", f"{registry.host}/catalog").stdout
    assert "0 pushed, 47 already there" in again
    assert "added registry local" in run("registry", "add", "local", f"{registry.host}/catalog").stdout
    synced = run("registry", "sync")
    assert "local: 19 resources, 47 versions" in synced.stdout and "47 added" in synced.stdout
    assert "no changes" in run("registry", "sync", "local").stdout
    listed = run("bundle", "list", f"{registry.host}/catalog/task/git-clone:0.10").stdout
    assert listed == "task.tekton.dev/git-clone\n"
    as_yaml = run("bundle", "list", f"{registry.host}/catalog/task/git-clone:0.10", "-o", "yaml").stdout
    assert "name: git-clone" in as_yaml and "kind: Task" in as_yaml

    task = tmp_path / "hello.yaml"
    task.write_text((fixture_catalog / "task/shellcheck/0.1/shellcheck.yaml").read_text())
    ref = f"{auth_registry.host}/mine/shellcheck:0.1"
    refused = run("bundle", "push", ref, "-f", str(task), check=False)
    assert refused.returncode == 1 and "denied access (HTTP 401) (no credentials were given)" in refused.stderr
    pushed = subprocess.run(
        [TASKHUB, "bundle", "push", ref, "-f", str(task), "--username", "alice", "--password-stdin"],
        input="s3cret\n", env=run.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    assert f"Pushed Tekton Bundle to {auth_registry.host}/mine/shellcheck@sha256:" in pushed.stdout
    assert "Added Task: shellcheck to image" in pushed.stderr
    added = subprocess.run(
        [TASKHUB, "registry", "add", "mine", f"{auth_registry.host}/mine", "--username", "alice", "--password-stdin"],
        input="s3cret\n", env=run.env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "mine: 1 resources, 1 versions" in run("registry", "sync", "mine").stdout
    assert "s3cret" not in run("catalog", "list").stdout

    registry.stop()
    down = run("registry", "sync", "local", check=False)
    assert down.returncode == 1 and "sync failed, the previous index is kept" in down.stderr
    assert "connection refused" in down.stderr.lower() or "unreachable" in down.stderr.lower()


def test_unreachable_database_is_one_clear_line(tmp_path):
    env = {
        **os.environ,
        "TASKHUB_DATA_DIR": str(tmp_path),
        "TASKHUB_DATABASE_URL": f"postgresql+psycopg://x@127.0.0.1:{free_port()}/x",
    }
    done = subprocess.run([TASKHUB, "catalog", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: the database is unavailable:") and "Traceback" not in done.stderr


def test_resolve_on_the_command_line(run, fixture_catalog, registry):
    import hashlib

    run("db", "upgrade")
    run("catalog", "add", "tekton", str(fixture_catalog))
    run("catalog", "sync")
    data = run("resolve", "hub", "name=git-clone", "version=>=0.7, <0.10")
    assert data.stdout.encode() == (fixture_catalog / "task/git-clone/0.9/git-clone.yaml").read_bytes()
    assert "task git-clone 0.9 from" in data.stderr
    answer = json.loads(run("resolve", "hub", "name=git-clone", "version=~>0.9", "-o", "json").stdout)
    assert answer["version"] == "0.10"
    assert answer["refSource"]["digest"]["sha256"] == hashlib.sha256(answer["data"].encode()).hexdigest()
    none = run("resolve", "hub", "name=git-clone", "version=>=9", check=False)
    assert none.returncode == 1 and "no version found for constraint >=9" in none.stderr

    run("catalog", "publish", "tekton", "--registry", f"{registry.host}/cat")
    ref = f"bundle={registry.host}/cat/task/yq:0.4"
    refused = run("resolve", "bundles", ref, "name=yq", check=False)
    assert refused.returncode == 1 and "is not on this hub's allowlist" in refused.stderr
    run("registry", "add", "bundles", f"{registry.host}/cat")
    bundle = json.loads(run("resolve", "bundles", ref, "name=yq", "-o", "json").stdout)
    assert bundle["version"] == "0.4" and bundle["refSource"]["uri"] == f"{registry.host}/cat/task/yq"
    # `resolver: taskhub`, as `taskhub resolver serve` answers it: the bundles resolver with a bundle, else the hub's.
    assert json.loads(run("resolve", "taskhub", ref, "name=yq", "-o", "json").stdout) == bundle
    hub_params = ("name=git-clone", "version=~>0.9", "-o", "json")
    assert json.loads(run("resolve", "taskhub", *hub_params).stdout) == json.loads(
        run("resolve", "hub", *hub_params).stdout
    )
    assert run("resolve", "hub", "nonsense", check=False).returncode == 2  # a usage error


def test_a_catalog_command_does_not_load_what_only_other_commands_need(tmp_path):
    """Start-up is most of a short command's time: `catalog list` must not import the Kubernetes client, Flask or
    the local executor, which only the cluster, server and run commands use, nor Alembic, which only migrating
    needs (the other commands check the schema exists by reading its version row), nor what syncing needs."""
    unwanted = ("kubernetes", "flask", "runner.local", "celpy", "alembic", "catalog.sync")
    probe = (
        "import sys\n"
        "from hub.cli import main\n"
        "main(['catalog', 'list'], standalone_mode=False)\n"
        f"print(sorted(m for m in {unwanted!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "TASKHUB_DATA_DIR": str(tmp_path)}
    env.pop("TASKHUB_DATABASE_URL", None)
    subprocess.run([TASKHUB, "db", "upgrade"], env=env, check=True, capture_output=True)
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    listed = subprocess.run([TASKHUB, "--help"], env=env, capture_output=True, text=True, timeout=60)
    assert all(f"  {name} " in listed.stdout for name in ("hub", "run", "runs", "resolver", "registry", "token"))


def test_help_lists_every_command_without_importing_their_modules():
    """`taskhub --help` and `taskhub catalog --help` list the commands that live in other modules by a summary kept
    in hub/cli/__init__.py and hub/cli/catalogs.py: the listing must read exactly as the commands' own help would
    make it, at any width."""
    probe = (
        "import json, sys, click\n"
        "from hub.cli import catalog, main\n"
        "groups = {'taskhub': main, 'catalog': catalog}\n"
        "def listings():\n"
        "    return [g.get_help(click.Context(g, info_name=n, terminal_width=w, max_content_width=w))\n"
        "            for n, g in groups.items() for w in (80, 1000)]\n"
        "before = listings()\n"
        "modules = {lazy.module for g in groups.values() for lazy in g.lazy.values()}\n"
        "imported = sorted(m for m in modules if m in sys.modules)\n"
        "for g in groups.values():\n"
        "    for name in g.lazy:\n"
        "        g.get_command(click.Context(g), name)\n"
        "print(json.dumps({'imported': imported, 'before': before, 'after': listings()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["imported"] == []
    assert shown["before"] == shown["after"]
    assert "  publish  Push every indexed version of NAME" in shown["before"][3]


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("::", True), ("127.0.0.1", False), ("::1", False)])
def test_serving_plain_http_off_this_machine_warns(run, host, warned):
    """What `taskhub serve --host` says before it serves (the server itself is replaced: no test listens off
    loopback)."""
    run("db", "upgrade")
    probe = (
        "import sys, hub.wsgi.server\n"
        "hub.wsgi.server.serve = lambda app, **kwargs: print('served on', kwargs['host'])\n"
        "from hub.cli import main\n"
        "main(['serve', '--host', sys.argv[1], '--port', '8000'])\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, host], env=run.env, capture_output=True, text=True, timeout=60)
    assert f"served on {host}" in done.stdout, done.stderr
    assert ("warning: plain HTTP on" in done.stderr) is warned
    assert ("TLS-terminating reverse proxy" in done.stderr) is warned
