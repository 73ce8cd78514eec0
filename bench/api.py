"""Benchmark of the hub's read API and of a catalog sync, each against a peer measured in the same run.

1. Requests/s of two Tekton Hub API URLs on the hub served by `taskhub serve`, as a ratio to nginx serving the
   very same response bytes as static files, with the same load generator and concurrency (target: at least 1/20).
2. The time of a sync of the sample catalog (cold into a fresh database, and an unchanged re-sync), as a ratio
   to reading and YAML-parsing the same files (target: at most 2x).

Run it with ``.venv/bin/python bench/api.py`` (``--help`` for the knobs). Everything runs on 127.0.0.1 in temp
dirs that are removed at exit, Ctrl-C included. Progress goes to stderr; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import text
from sqlalchemy.orm import Session

from catalog.db import make_engine, upgrade
from catalog.indexing import known_versions
from catalog.sync import SyncSummary, add_catalog, apply_tree, fetch_catalog, get_catalog

REPO = Path(__file__).resolve().parent.parent
# Python puts bench/ first on the path, where bench/jobs.py would stand for the jobs package (which the migrations
# import): the repository goes first. The benchmarks' own modules (api, pg_server, ...) are still found in bench/.
sys.path.insert(0, str(REPO))
# The real tektoncd/catalog subset when $TASKHUB_CONFORMANCE_DATA has it (the figures in the commits were measured on
# it), else the tests' own catalog.
_UPSTREAM = Path(os.environ.get("TASKHUB_CONFORMANCE_DATA", "/nonexistent")) / "catalog-sample"
DEFAULT_CATALOG = _UPSTREAM if _UPSTREAM.is_dir() else REPO / "tests" / "fixtures" / "catalog"
URLS = ("/v1/resource/tekton/task/git-clone", "/v1/query?name=git")
HTTP_TARGET = 1 / 20  # hub requests/s over nginx requests/s, at least
SYNC_TARGET = 2.0  # sync time over read-and-parse time, at most
KIND_FOLDERS = ("task", "pipeline", "stepaction")


@dataclass
class Row:
    what: str
    hub: str
    peer: str
    ratio: float
    target: str
    met: bool


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def temp_dir(stack: contextlib.ExitStack, prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    stack.callback(shutil.rmtree, path, ignore_errors=True)
    return path


def stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Stop a server started in its own session: signal its process group, kill it if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group is still ours: its leader is not reaped yet
        proc.wait()


def start_server(
    stack: contextlib.ExitStack, cmd: list[str], log_path: Path, env: dict[str, str], stop_signal: int
) -> subprocess.Popen[bytes]:
    out = stack.enter_context(log_path.open("wb"))
    # A session of its own: Ctrl-C reaches only this script, which then stops the server in order.
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    stack.callback(stop, proc, stop_signal)
    return proc


def wait_until_up(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            sys.exit(f"{url}: the server exited with code {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                response.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"{url}: no answer after {timeout:.0f} s:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        if response.status != 200:
            sys.exit(f"{url}: HTTP {response.status}")
        return bytes(response.read())


# -- the servers ---------------------------------------------------------------------------------------------


def taskhub_command() -> str:
    beside = Path(sys.executable).parent / "taskhub"
    found = str(beside) if beside.exists() else shutil.which("taskhub")
    if found is None:
        sys.exit("the taskhub command is not installed (pip install -e . in the virtualenv)")
    return found


def start_hub(stack: contextlib.ExitStack, catalog: Path, workers: int) -> str:
    """A hub with the sample catalog synced, served by `taskhub serve`; returns its base URL."""
    data_dir = temp_dir(stack, "taskhub-bench-hub-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
    env["TASKHUB_DATA_DIR"] = str(data_dir)
    # The limits this load needs, set explicitly: one client asks for thousands of searches a second, and the
    # response cache answers the repeated URLs (its default size).
    env["TASKHUB_RATE_LIMIT_SEARCH"] = "0"
    env["TASKHUB_RESPONSE_CACHE_BYTES"] = str(32 * 1024 * 1024)
    taskhub = taskhub_command()
    for args in (
        ["db", "upgrade"],
        ["catalog", "add", "tekton", str(catalog)],
        ["catalog", "sync", "tekton"],
    ):
        done = subprocess.run([taskhub, *args], env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"taskhub {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    port = free_port()
    log_path = data_dir / "serve.log"
    # The hub only: a job worker beside it would sync and refresh on its own schedule while this measures.
    cmd = [taskhub, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-worker"]
    proc = start_server(stack, cmd, log_path, env, signal.SIGTERM)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(proc, base + "/", log_path)
    return base


NGINX_CONF = """\
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    default_type application/json;
    client_body_temp_path {tmp}/client_body;
    server {{
        listen 127.0.0.1:{port};
        root {docroot};
    }}
}}
"""


def start_nginx(stack: contextlib.ExitStack, bodies: dict[str, bytes], workers: int) -> str:
    """nginx serving each body at its URL's path (a query string is ignored for static files)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        sys.exit("nginx is not installed: apt-get install nginx-light (the peer serving the hub's bytes as files)")
    tmp = temp_dir(stack, "taskhub-bench-nginx-")
    tmp.chmod(0o755)  # workers run as nobody when this runs as root; they only read the docroot
    docroot = tmp / "docroot"
    for url, body in bodies.items():
        path = docroot / url.split("?", 1)[0].lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, tmp=tmp, port=port, docroot=docroot))
    cmd = [nginx, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf), "-g", "daemon off;"]
    proc = start_server(stack, cmd, tmp / "stdout.log", dict(os.environ), signal.SIGQUIT)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(proc, base + next(iter(bodies)).split("?", 1)[0], tmp / "error.log")
    for url, body in bodies.items():
        if fetch(base + url) != body:
            sys.exit(f"nginx does not serve the hub's bytes for {url}")
    return base


# -- load ----------------------------------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    errors: int  # answers other than 200 (wrk: other than 2xx and 3xx; python_load: or another body), socket errors


def wrk_load(url: str, seconds: int, connections: int, threads: int) -> Load:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if match is None:
        sys.exit(f"cannot read wrk's output:\n{out}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    return Load(float(match.group(1)), errors + (int(non_2xx.group(1)) if non_2xx else 0))


def python_load(url: str, seconds: int, connections: int, _threads: int) -> Load:
    """One thread per connection, keep-alive with http.client, reconnecting when the server closes; an answer
    other than 200 with the body the URL had before the load is an error."""
    expected = fetch(url)
    parsed = urllib.request.urlparse(url)
    target = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    counts = [0] * connections
    errors = [0] * connections
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        while time.perf_counter() < deadline:
            try:
                conn.request("GET", target)
                response = conn.getresponse()
                body = response.read()
                if response.status == 200 and body == expected:
                    counts[i] += 1
                else:
                    errors[i] += 1
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
        conn.close()

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return Load(sum(counts) / (time.perf_counter() - started), sum(errors))


def measure_http(args: argparse.Namespace, hub: str, nginx: str, bodies: dict[str, bytes]) -> list[Row]:
    """Each URL on both peers in alternating rounds, so a drift of the machine's speed hits both alike. Only 200
    answers count; any other stops the benchmark, as does an answer other than `bodies` after the load."""
    load = wrk_load if args.loadgen == "wrk" else python_load
    peers = {"hub": hub, "nginx": nginx}
    rows = []
    for url in URLS:
        for base in peers.values():
            load(base + url, args.warmup, args.connections, args.threads)
        figures: dict[str, list[float]] = {peer: [] for peer in peers}
        for _ in range(args.rounds):
            for peer, base in peers.items():
                result = load(base + url, args.duration, args.connections, args.threads)
                log(f"  GET {url} on {peer}: {result.rps:,.0f} req/s")
                if result.errors:
                    sys.exit(f"GET {url} on {peer}: {result.errors} requests failed (not 200, or no answer)")
                if fetch(base + url) != bodies[url]:
                    sys.exit(f"GET {url} on {peer}: the answer changed under load")
                figures[peer].append(result.rps)
        hub_rps, nginx_rps = statistics.median(figures["hub"]), statistics.median(figures["nginx"])
        ratio = hub_rps / nginx_rps
        target = f">= 1/{round(1 / HTTP_TARGET)}"
        rows.append(
            Row(f"GET {url} (req/s)", f"{hub_rps:,.0f}", f"{nginx_rps:,.0f}", ratio, target, ratio >= HTTP_TARGET)
        )
    return rows


# -- catalog sync --------------------------------------------------------------------------------------------


def read_and_parse(catalog: Path) -> int:
    """The peer of a sync: read and YAML-parse every manifest, read every README.md and sample; files read."""
    files = 0
    for kind in KIND_FOLDERS:
        for manifest in sorted((catalog / kind).glob("*/*/*.yaml")):
            version_dir = manifest.parent
            if manifest.stem != version_dir.parent.name:
                continue  # only <kind>/<name>/<version>/<name>.yaml is a manifest
            with contextlib.suppress(yaml.YAMLError):
                yaml.load(manifest.read_bytes().decode(), Loader=yaml.CSafeLoader)
            files += 1
            readme = version_dir / "README.md"
            if readme.is_file():
                readme.read_bytes().decode()
                files += 1
            samples = version_dir / "samples"
            # The sync reads samples/ recursively, .yaml and .yml alike.
            for sample in sorted(samples.rglob("*")) if samples.is_dir() else ():
                if sample.suffix in (".yaml", ".yml") and sample.is_file():
                    sample.read_bytes().decode()
                    files += 1
    return files


def sync(engine_url: str, work_dir: Path) -> tuple[float, SyncSummary]:
    """Fetch, walk and index the "tekton" catalog the way `taskhub catalog sync` does; (seconds, summary).

    A new engine each time, as each `taskhub catalog sync` is a process of its own: SQLAlchemy's statement cache
    starts empty, so compiling the statements counts, while opening the connection does not.
    """
    engine = make_engine(engine_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # connecting is not part of a sync's work
        started = time.perf_counter()
        with Session(engine) as session:
            catalog = get_catalog(session, "tekton")
            files, tree = fetch_catalog(catalog, work_dir, known_versions(session, catalog))
        with Session(engine) as session, session.begin():
            summary = apply_tree(session, get_catalog(session, "tekton"), files, tree)
        return time.perf_counter() - started, summary
    finally:
        engine.dispose()


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure_sync(stack: contextlib.ExitStack, catalog: Path, repeats: int) -> list[Row]:
    tmp = temp_dir(stack, "taskhub-bench-sync-")
    template = tmp / "template.db"
    engine = make_engine(f"sqlite:///{template}")
    upgrade(engine)
    with engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()

    files = read_and_parse(catalog)  # warms the page cache for both sides
    parse, cold, resync = [], [], []
    # Rounds alternate the peer and the syncs, so a drift of the machine's speed hits both alike.
    for i in range(repeats + 1):  # the first round warms up imports and caches and is not counted
        parsed = timed(lambda: read_and_parse(catalog))
        db = tmp / f"run{i}.db"
        shutil.copy(template, db)
        url = f"sqlite:///{db}"
        engine = make_engine(url)
        with Session(engine) as session, session.begin():
            add_catalog(session, "tekton", str(catalog))
        engine.dispose()
        first, summary = sync(url, tmp / "catalogs")
        again, unchanged = sync(url, tmp / "catalogs")
        if summary.added == 0 or unchanged.changed:
            sys.exit(f"unexpected sync results: {summary.lines()} then {unchanged.lines()}")
        if i:
            parse.append(parsed)
            cold.append(first)
            resync.append(again)
    log(f"  sync: {summary.versions} versions indexed; peer read {files} files")
    log(f"  read+parse {_ms_list(parse)}; cold sync {_ms_list(cold)}; re-sync {_ms_list(resync)}")
    peer = statistics.median(parse)
    rows = []
    for what, times in (("catalog sync, cold (ms)", cold), ("catalog sync, unchanged (ms)", resync)):
        median = statistics.median(times)
        ratio = median / peer
        target = f"<= {SYNC_TARGET:g}x"
        rows.append(Row(what, f"{median * 1000:.1f}", f"{peer * 1000:.1f}", ratio, target, ratio <= SYNC_TARGET))
    return rows


def _ms_list(times: list[float]) -> str:
    return "[" + ", ".join(f"{t * 1000:.0f}" for t in times) + "] ms"


# -- main ----------------------------------------------------------------------------------------------------


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        f"\ntaskhub bench/api.py on {os.cpu_count()} CPUs: {args.workers} hub and nginx workers; load by "
        f"{args.loadgen}, {args.connections} connections, median of {args.rounds} rounds of {args.duration} s "
        f"after {args.warmup} s warm-up; sync figures are medians of {args.repeats}"
    )
    header = ("what", "hub", "peer", "ratio", "target", "result")
    lines = [header] + [
        (r.what, r.hub, r.peer, f"{r.ratio:.3f}", r.target, "met" if r.met else "NOT MET") for r in rows
    ]
    print_aligned(lines)
    print("peers: nginx serving the hub's exact response bytes as static files; reading and YAML-parsing")
    print("(CSafeLoader) the manifests the sync parses, plus their README.md and samples")
    if args.loadgen == "python":
        print("CAUTION: the Python load generator is slower than nginx, so the nginx figures are its own ceiling and")
        print("the req/s ratios overstate the hub; install wrk (apt-get install wrk) for figures worth comparing")
    missed = [r.what for r in rows if not r.met]
    print("all targets met" if not missed else f"targets missed: {', '.join(missed)}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help="the catalog synced and served")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="hub (taskhub serve) and nginx workers")
    p.add_argument("--duration", type=int, default=4, help="seconds of load per measurement")
    p.add_argument("--rounds", type=int, default=2, help="alternating hub/nginx measurements per URL (median)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of load on each target before measuring")
    p.add_argument("--connections", type=int, default=16, help="concurrent connections")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--repeats", type=int, default=7, help="sync and read+parse repetitions (median)")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto", help="load generator")
    args = p.parse_args()
    if args.loadgen == "auto":
        args.loadgen = "wrk" if shutil.which("wrk") else "python"
        if args.loadgen == "python":
            log("wrk not found (apt-get install wrk): the Python load generator limits both peers")
    if not (args.catalog / "task").is_dir():
        sys.exit(f"no catalog at {args.catalog} (--catalog)")
    args.catalog = args.catalog.resolve()
    return args


@contextlib.contextmanager
def interruptible() -> Iterator[contextlib.ExitStack]:
    """An exit stack whose cleanup runs on Ctrl-C and SIGTERM too, and is not cut short by a second Ctrl-C."""

    def on_term(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, on_term)
    stack = contextlib.ExitStack()
    try:
        yield stack
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.close()


def print_aligned(lines: list[tuple[str, ...]]) -> None:
    """Rows under a header line, numbers right-aligned: the closing table of every benchmark here."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for n, line in enumerate(lines):
        print(
            "  ".join(
                cell.rjust(w) if 0 < i < 4 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    args = parse_args()
    try:
        with interruptible() as stack:
            log(f"hub: syncing {args.catalog} and serving it with {args.workers} workers")
            hub = start_hub(stack, args.catalog, args.workers)
            bodies = {url: fetch(hub + url) for url in URLS}
            log("nginx: serving " + ", ".join(f"{url} ({len(b):,} bytes)" for url, b in bodies.items()))
            nginx = start_nginx(stack, bodies, args.workers)
            rows = measure_http(args, hub, nginx, bodies)
            log(f"sync: {args.repeats} cold syncs and re-syncs against {args.repeats} reads+parses")
            rows += measure_sync(stack, args.catalog, args.repeats)
            print_table(rows, args)
    except KeyboardInterrupt:
        log("interrupted; servers stopped and temp dirs removed")
        sys.exit(130)


if __name__ == "__main__":
    main()
