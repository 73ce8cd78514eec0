"""Benchmark of the hub's resolver API (GET /v1/resolve, bundles resolver), each figure against a peer measured
in the same run.

1. A cold resolve of a tag (nothing about it cached: a bundle never resolved before), as a ratio to a plain
   http.client GET of the same manifest and layer blob from the registry over one keep-alive connection
   (target: at most 1.3x, on the median of --cold rounds). Beside it, for information, the floor of any Flask
   hub: a bare Flask view doing the same two GETs (bench/proxy_floor.py), served as `taskhub serve` serves the
   hub. The three go in an order that turns round by round.
2. A cached resolve of a digest-pinned bundle under wrk: p50 and p99 latency and requests/s, as ratios to nginx
   serving the very same response bytes as a static file, with the same load generator and connections.
3. --concurrent identical cold requests started together (threads and a barrier) against the hub's
   workers: the manifest and blob GETs the registry served, counted from its access log (target: 1 of each),
   and whether every answer was a 200 and all were identical.

Then, for information, with the registry first hung (SIGSTOP) and then gone (killed): a digest-pinned resolve
of a cached bundle (must be 200) and a resolve of a tag never resolved (must fail; the design target is a clear
error within the resolve timeout, 2 s).

The bundles are the sample catalog's, pushed with `taskhub catalog publish` from a data dir of their own, so
the hub's blob cache starts empty. Everything runs on 127.0.0.1 in temp dirs that are removed at exit, Ctrl-C
included. Progress goes to stderr; the table goes to stdout.

Run it with ``.venv/bin/python bench/resolve.py`` (``--help`` for the knobs).

What moving the registry client from its hand-written http.client pool to urllib3 cost (issue 15), measured with
this script before and after on the same machine, alternating, 6 and 5 runs (2 CPUs shared with other work, so
the spread is wide): cold resolve of a tag, hub ms (ratio to the raw http.client peer), before: 45.6 (2.04),
13.0 (1.53), 26.2 (1.71), 36.7 (2.70), 33.2 (1.36), 39.0 (3.14): median ratio 1.88; after: 18.8 (1.97),
25.4 (2.69), 27.2 (2.07), 24.2 (2.30), 28.4 (3.67): median ratio 2.30. Within the noise of this machine; the
per-request difference measured directly (small keep-alive GETs on docker-registry, interleaved) was
urllib3 +0.1-0.4 ms over http.client, of which a cold resolve makes two.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import json
import os
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from api import (
    DEFAULT_CATALOG,
    free_port,
    interruptible,
    log,
    print_aligned,
    start_nginx,
    start_server,
    taskhub_command,
    temp_dir,
    wait_until_up,
)
from registry_peers import ACCEPT, RegistryServer, describe, start_registry
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.db import make_engine
from catalog.models import Resource, ResourceVersion
from catalog.sync import get_catalog
from hub.config import Settings

REPO = Path(__file__).resolve().parent.parent
COLD_TARGET = 1.3  # cold resolve time over the raw manifest + blob GETs, at most
FETCH_TARGET = 1  # manifest GETs, and blob GETs, for the concurrent identical cold requests
OUTAGE_TARGET = 2.0  # seconds to a clear error for a tag resolve with the registry unreachable (informational)
CATALOG, PREFIX = "tekton", "bench"


@dataclass
class Row:
    what: str
    hub: str
    peer: str
    ratio: str
    target: str
    met: bool | None  # None: informational


@dataclass(frozen=True)
class Bundle:
    kind: str  # lower-case: task, pipeline, stepaction
    name: str
    tag: str

    @property
    def repository(self) -> str:
        return f"{PREFIX}/{self.kind}/{self.name}"


def log_ms(times: list[float]) -> str:
    return "[" + ", ".join(f"{t * 1000:.1f}" for t in times) + "] ms"


# -- setup: the registry, the published bundles, the hub -----------------------------------------------------


def cli(data_dir: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
    env["TASKHUB_DATA_DIR"] = str(data_dir)
    done = subprocess.run([taskhub_command(), *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"taskhub {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def publish_sample(publisher: Path, catalog: Path, registry: RegistryServer) -> list[Bundle]:
    """Index the catalog in a data dir of its own and push every version as a bundle; the bundles pushed."""
    for args in (["db", "upgrade"], ["catalog", "add", CATALOG, str(catalog)], ["catalog", "sync", CATALOG]):
        cli(publisher, *args)
    out = cli(publisher, "catalog", "publish", CATALOG, "--registry", f"{registry.host}/{PREFIX}")
    log(f"  publish: {out.splitlines()[0] if out else '(no output)'}")
    engine = make_engine(Settings(data_dir=publisher).database_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Resource.kind, Resource.name, ResourceVersion.version)
                .join(ResourceVersion.resource)
                .where(Resource.catalog_id == get_catalog(session, CATALOG).id, ResourceVersion.removed_at.is_(None))
                .order_by(Resource.kind, Resource.name, ResourceVersion.version)
            ).all()
    finally:
        engine.dispose()
    served = registry.requests_since_last()
    if served["PUT manifest"] != len(rows):
        sys.exit(f"publish: the registry served {describe(served)} for {len(rows)} versions")
    return [Bundle(kind.lower(), name, version) for kind, name, version in rows]


def start_hub(stack: contextlib.ExitStack, registry: RegistryServer, workers: int) -> tuple[str, Path]:
    """A hub knowing only the registry (`registry add`), served by `taskhub serve`; (base URL, data dir)."""
    data_dir = temp_dir(stack, "taskhub-bench-resolve-hub-")
    cli(data_dir, "db", "upgrade")
    cli(data_dir, "registry", "add", "bundles", f"{registry.host}/{PREFIX}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
    env["TASKHUB_DATA_DIR"] = str(data_dir)
    env["TASKHUB_RATE_LIMIT_RESOLVE"] = "0"  # wrk would be throttled
    port = free_port()
    log_path = data_dir / "serve.log"
    # The hub only: a job worker beside it would sync and refresh on its own schedule while this measures.
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-worker"]
    cmd = [taskhub_command(), *serve]
    proc = start_server(stack, cmd, log_path, env, signal.SIGTERM)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(proc, base + "/", log_path)
    return base, data_dir


def start_floor(stack: contextlib.ExitStack, registry: RegistryServer, workers: int) -> str:
    """bench/proxy_floor.py, served as `taskhub serve` serves the hub; its base URL."""
    port = free_port()
    log_path = temp_dir(stack, "taskhub-bench-resolve-floor-") / "serve.log"
    floor = Path(__file__).resolve().parent / "proxy_floor.py"
    cmd = [sys.executable, str(floor), registry.host, "--port", str(port), "--workers", str(workers)]
    proc = start_server(stack, cmd, log_path, dict(os.environ), signal.SIGTERM)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(proc, base + "/", log_path)
    return base


def resolve_path(registry: RegistryServer, bundle: Bundle, digest: str | None = None) -> str:
    pin = f"@sha256:{digest}" if digest else f":{bundle.tag}"
    query = {"resolver": "bundles", "bundle": f"{registry.host}/{bundle.repository}{pin}", "name": bundle.name}
    return "/v1/resolve?" + urlencode({**query, "kind": bundle.kind})


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float


def request(conn: http.client.HTTPConnection, path: str) -> Answer:
    """One GET over conn (reopened by http.client when the server closed it), timed from send to last byte."""
    started = time.perf_counter()
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        return Answer(0, str(exc).encode(), time.perf_counter() - started)
    elapsed = time.perf_counter() - started
    if response.will_close:
        conn.close()
    return Answer(response.status, body, elapsed)


def connect(base: str, timeout: float = 30) -> http.client.HTTPConnection:
    parts = urlsplit(base)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)


def expect_ok(what: str, answer: Answer) -> dict[str, object]:
    if answer.status != 200:
        sys.exit(f"{what}: HTTP {answer.status}: {answer.body[:500].decode(errors='replace')}")
    return json.loads(answer.body)


# -- 1. cold resolves ----------------------------------------------------------------------------------------


def raw_pull(conn: http.client.HTTPConnection, bundle: Bundle) -> float:
    """The peer of a cold resolve: GET the manifest by tag, pick the object's layer, GET that blob; seconds."""
    started = time.perf_counter()
    conn.request("GET", f"/v2/{bundle.repository}/manifests/{bundle.tag}", headers={"Accept": ACCEPT})
    response = conn.getresponse()
    manifest = json.loads(response.read())
    if response.status != 200:
        sys.exit(f"raw GET manifest of {bundle}: HTTP {response.status}")
    digest = next(
        layer["digest"]
        for layer in manifest["layers"]
        if layer.get("annotations", {}).get("dev.tekton.image.name") == bundle.name
    )
    conn.request("GET", f"/v2/{bundle.repository}/blobs/{digest}")
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"raw GET blob of {bundle}: HTTP {response.status}")
    return time.perf_counter() - started


@dataclass
class Cold:
    hub: list[float]
    raw: list[float]
    floor: list[float]


def floor_pull(conn: http.client.HTTPConnection, bundle: Bundle) -> Answer:
    """The floor's side: the same two GETs through a bare Flask view (bench/proxy_floor.py)."""
    query = urlencode({"repository": bundle.repository, "tag": bundle.tag, "name": bundle.name})
    return request(conn, f"/pull?{query}")


def measure_cold(hub: str, floor: str, registry: RegistryServer, bundles: list[Bundle], warmup: int) -> Cold:
    """Per bundle, never resolved before: the hub's cold resolve, the floor's pull and the raw pull, the order
    turning round by round."""
    hub_conn, floor_conn, raw_conn = connect(hub), connect(floor), connect(f"http://{registry.host}")
    cold = Cold([], [], [])
    try:
        sides: list[tuple[str, Callable[[Bundle], Any]]] = [
            ("hub", lambda bundle: request(hub_conn, resolve_path(registry, bundle))),
            ("floor", lambda bundle: floor_pull(floor_conn, bundle)),
            ("raw", lambda bundle: raw_pull(raw_conn, bundle)),
        ]
        for i, bundle in enumerate(bundles):
            took = {}
            for who, call in sides[i % 3 :] + sides[: i % 3]:
                took[who] = call(bundle)
            expect_ok(f"cold resolve of {bundle}", took["hub"])
            if took["floor"].status != 200:
                sys.exit(f"floor pull of {bundle}: HTTP {took['floor'].status}")
            if i >= warmup:  # the first ones open each worker's connection to the registry, and warm its code
                cold.hub.append(took["hub"].seconds)
                cold.floor.append(took["floor"].seconds)
                cold.raw.append(took["raw"])
    finally:
        for conn in (hub_conn, floor_conn, raw_conn):
            conn.close()
    served = registry.requests_since_last()
    wanted = 3 * len(bundles)  # the hub's, the floor's and the peer's
    if served["GET manifest"] != wanted or served["GET blob"] != wanted:
        sys.exit(f"cold resolves: the registry served {describe(served)}; expected {wanted} of each GET")
    log(f"  hub {log_ms(cold.hub)}")
    log(f"  floor {log_ms(cold.floor)}")
    log(f"  raw {log_ms(cold.raw)}")
    return cold


# -- 2. cached resolves under wrk ----------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50: float  # seconds
    p99: float
    errors: int


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def wrk_latency(url: str, seconds: int, connections: int, threads: int) -> Load:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    percentiles = dict(re.findall(r"^\s*(50|99)%\s+([\d.]+(?:us|ms|s|m))\s*$", out, re.MULTILINE))
    if rps is None or set(percentiles) != {"50", "99"}:
        sys.exit(f"cannot read wrk's output:\n{out}")

    def seconds_of(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
        return float(number) * _UNITS[unit]

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return Load(float(rps.group(1)), seconds_of(percentiles["50"]), seconds_of(percentiles["99"]), errors)


def one_client(url: str, requests: int) -> list[float]:
    """Seconds of each of `requests` sequential GETs by one http.client client (keep-alive where allowed)."""
    conn = connect(url)
    path = url[len(f"http://{urlsplit(url).netloc}") :]
    times = []
    try:
        for _ in range(requests):
            answer = request(conn, path)
            if answer.status != 200:
                sys.exit(f"GET {url}: HTTP {answer.status}")
            times.append(answer.seconds)
    finally:
        conn.close()
    return times


@dataclass
class Cached:
    single: dict[str, list[float]]  # one client's latencies, by peer
    loads: dict[str, list[Load]]  # wrk rounds, by peer


def measure_cached(args: argparse.Namespace, hub_url: str, nginx_url: str) -> Cached:
    """Both peers in alternating rounds, so a drift of the machine's speed hits both alike."""
    peers = {"hub": hub_url, "nginx": nginx_url}
    single: dict[str, list[float]] = {peer: [] for peer in peers}
    for _ in range(2):
        for peer, url in peers.items():
            single[peer] += one_client(url, args.sequential // 2)
    log(
        "  one client: "
        + ", ".join(f"{peer} median {statistics.median(t) * 1000:.2f} ms" for peer, t in single.items())
    )
    for url in peers.values():
        wrk_latency(url, args.warmup, args.connections, args.threads)
    loads: dict[str, list[Load]] = {peer: [] for peer in peers}
    for _ in range(args.rounds):
        for peer, url in peers.items():
            load = wrk_latency(url, args.duration, args.connections, args.threads)
            log(
                f"  wrk on {peer}: {load.rps:,.0f} req/s, p50 {load.p50 * 1000:.2f} ms, "
                f"p99 {load.p99 * 1000:.2f} ms, {load.errors} errors"
            )
            if load.errors:  # wrk counts them in its figures: they would stand for answers nobody wanted
                sys.exit(f"wrk on {peer}: {load.errors} requests failed (not 2xx, or no answer)")
            loads[peer].append(load)
    return Cached(single, loads)


# -- 3. concurrent identical cold requests -------------------------------------------------------------------


@dataclass
class Burst:
    answers: list[Answer]
    manifest_gets: int
    blob_gets: int
    served: str


def measure_burst(hub: str, registry: RegistryServer, bundle: Bundle, clients: int) -> Burst:
    """clients threads, each with its own connection, send the same never-seen tag resolve at one instant."""
    path = resolve_path(registry, bundle)
    barrier = threading.Barrier(clients)
    answers: list[Answer | None] = [None] * clients

    def client(i: int) -> None:
        conn = connect(hub)
        try:
            conn.connect()  # connected before the barrier: the requests leave together
            barrier.wait()
            answers[i] = request(conn, path)
        finally:
            conn.close()

    registry.requests_since_last()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    served = registry.requests_since_last()
    done = [a if a is not None else Answer(0, b"no answer", 0.0) for a in answers]
    return Burst(done, served["GET manifest"], served["GET blob"], describe(served))


# -- the registry unreachable --------------------------------------------------------------------------------


def registry_pid(registry: RegistryServer) -> int:
    """The pid of the docker-registry this script started for registry (found by its config file, our child)."""
    config = str(registry.access_log.parent / "config.yml")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and config.encode() in argv:
            return int(entry.name)
    sys.exit(f"cannot find the registry process serving {registry.host}")


@dataclass
class Outage:
    state: str  # "hung" or "down"
    pinned: Answer
    tag: Answer


def measure_outage(hub: str, registry: RegistryServer, pinned_path: str, fresh: list[Bundle]) -> list[Outage]:
    """With the registry hung (SIGSTOP), then killed: a cached digest-pinned resolve, and a never-resolved tag."""
    pid = registry_pid(registry)
    outages = []
    for (state, sig), bundle in zip((("hung", signal.SIGSTOP), ("down", signal.SIGKILL)), fresh, strict=True):
        os.kill(pid, sig)
        if sig == signal.SIGKILL:
            time.sleep(0.2)  # its listening socket is gone once the process is
        conn = connect(hub)
        try:
            pinned = request(conn, pinned_path)
            tag = request(conn, resolve_path(registry, bundle))
        finally:
            conn.close()
        log(
            f"  registry {state}: digest-pinned HTTP {pinned.status} in {pinned.seconds * 1000:.1f} ms; "
            f"tag HTTP {tag.status} in {tag.seconds * 1000:.0f} ms: {error_text(tag)}"
        )
        outages.append(Outage(state, pinned, tag))
    return outages  # the registry stays dead; the exit stack reaps it


def error_text(answer: Answer) -> str:
    try:
        body = json.loads(answer.body)
    except ValueError:
        return answer.body[:200].decode(errors="replace")
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return body[key]
    return answer.body[:200].decode(errors="replace")


# -- profile -------------------------------------------------------------------------------------------------


def profile(data_dir: Path, registry: RegistryServer, bundles: list[Bundle], top: int) -> None:
    """Where in-process cold resolves spend their time (Flask's test client, a data dir copy), on stderr."""
    from hub.app import create_app

    copy = data_dir.parent / f"{data_dir.name}-profiled"
    shutil.copytree(data_dir, copy, ignore=shutil.ignore_patterns("blobs", "resolve", "*.log"))
    try:
        app = create_app(Settings(data_dir=copy, rate_limit_resolve="0"))
        client = app.test_client()
        paths = [resolve_path(registry, b) for b in bundles]
        if client.get(paths[0]).status_code != 200:  # warms the code and the connection to the registry
            sys.exit("profiled resolve failed")
        profiler = cProfile.Profile()
        started = time.perf_counter()
        for path in paths[1:]:
            profiler.runcall(client.get, path)
        log(f"\n-- {len(paths) - 1} in-process cold resolves took {(time.perf_counter() - started) * 1000:.0f} ms --")
        for order in ("tottime", "cumulative"):
            log(f"\n-- cProfile of in-process cold resolves, top {top} by {order} --")
            pstats.Stats(profiler, stream=sys.stderr).strip_dirs().sort_stats(order).print_stats(top)
    finally:
        shutil.rmtree(copy, ignore_errors=True)


# -- main ----------------------------------------------------------------------------------------------------


def build_rows(cold: Cold, cached: Cached, burst: Burst, outages: list[Outage]) -> list[Row]:
    median = statistics.median
    hub_cold, raw_cold = median(cold.hub), median(cold.raw)
    ratio = hub_cold / raw_cold
    rows = [
        Row(
            "cold resolve of a tag (ms, median)",
            f"{hub_cold * 1000:.2f}",
            f"{raw_cold * 1000:.2f}",
            f"{ratio:.2f}",
            f"<= {COLD_TARGET:g}x",
            ratio <= COLD_TARGET,
        )
    ]
    floor = median(cold.floor)
    rows.append(
        Row(
            "cold: bare Flask proxy, same server (ms)",
            f"{floor * 1000:.2f}",
            f"{raw_cold * 1000:.2f}",
            f"{floor / raw_cold:.2f}",
            "-",
            None,
        )
    )
    rows.append(
        Row(
            "cold: hub over the bare proxy (ms)",
            f"{hub_cold * 1000:.2f}",
            f"{floor * 1000:.2f}",
            f"{hub_cold / floor:.2f}",
            "-",
            None,
        )
    )
    h, n = median(cached.single["hub"]), median(cached.single["nginx"])
    rows.append(
        Row("cached resolve, one client (ms, median)", f"{h * 1000:.2f}", f"{n * 1000:.2f}", f"{h / n:.1f}", "-", None)
    )
    hub, nginx = cached.loads["hub"], cached.loads["nginx"]
    for what, pick in (("p50", lambda load: load.p50), ("p99", lambda load: load.p99)):
        h, n = median(pick(x) for x in hub), median(pick(x) for x in nginx)
        rows.append(
            Row(f"cached resolve, wrk {what} (ms)", f"{h * 1000:.2f}", f"{n * 1000:.2f}", f"{h / n:.1f}", "-", None)
        )
    h, n = median(x.rps for x in hub), median(x.rps for x in nginx)
    rows.append(Row("cached resolve, wrk (req/s)", f"{h:,.0f}", f"{n:,.0f}", f"{h / n:.3f}", "-", None))
    clients = len(burst.answers)
    for kind, count in (("manifest", burst.manifest_gets), ("blob", burst.blob_gets)):
        rows.append(
            Row(
                f"{clients} identical cold requests: GET {kind}",
                str(count),
                "-",
                "-",
                str(FETCH_TARGET),
                count == FETCH_TARGET,
            )
        )
    ok = sum(a.status == 200 for a in burst.answers)
    same = len({a.body for a in burst.answers}) == 1
    rows.append(
        Row(
            f"{clients} identical cold requests: 200s, identical",
            f"{ok}, {'yes' if same else 'no'}",
            "-",
            "-",
            f"{clients}, yes",
            ok == clients and same,
        )
    )
    return rows + outage_rows(outages)


def outage_rows(outages: list[Outage]) -> list[Row]:
    """Informational: their result column says "ok" or "NOT OK", and they are not targets of the issue."""
    rows = []
    for outage in outages:
        pinned, tag = outage.pinned, outage.tag
        rows.append(
            Row(
                f"registry {outage.state}: digest-pinned, HTTP {pinned.status} (ms)",
                f"{pinned.seconds * 1000:.1f}",
                "-",
                "-",
                "200",
                pinned.status == 200,
            )
        )
        rows.append(
            Row(
                f"registry {outage.state}: new tag, HTTP {tag.status} (ms)",
                f"{tag.seconds * 1000:.0f}",
                "-",
                "-",
                f"error, <= {OUTAGE_TARGET * 1000:.0f}",
                tag.status >= 400 and tag.seconds <= OUTAGE_TARGET,
            )
        )
    return rows


def print_table(
    rows: list[Row], args: argparse.Namespace, count: int, cold: Cold, body: int, outages: list[Outage]
) -> None:
    print(
        f"\ntaskhub bench/resolve.py on {os.cpu_count()} CPUs: {count} bundles of the sample catalog in "
        f"docker-registry on 127.0.0.1; the hub on `taskhub serve` with {args.workers} workers, nginx with as many.\n"
        f"cold: median of {len(cold.hub)} tags (after {args.cold_warmup} warm-up ones); cached: a {body:,}-byte "
        f"answer, one client {args.sequential} requests, then wrk --latency with {args.connections} connections, "
        f"median of {args.rounds} rounds of {args.duration} s after {args.warmup} s warm-up"
    )
    informational = len(outage_rows(outages))  # the last rows
    header = ("what", "hub", "peer", "ratio", "target", "result")
    lines: list[tuple[str, ...]] = [header]
    for i, r in enumerate(rows):
        info = i >= len(rows) - informational
        result = "-" if r.met is None else ("ok" if r.met else "NOT OK") if info else ("met" if r.met else "NOT MET")
        lines.append((r.what, r.hub, r.peer, r.ratio, r.target, result))
    print_aligned(lines)
    print("peers: cold: http.client over one keep-alive connection to the registry, GET of the manifest by tag, then")
    print("of the object's layer blob; the hub's side: one keep-alive connection to the hub, which resolves over its")
    print("own keep-alive connections to the registry; floor: a bare Flask view doing the peer's two GETs, served as")
    print("the hub is (bench/proxy_floor.py); cached: nginx serving the hub's exact answer as a static file.")
    print("Registry GETs are counted from its access log. Registry rows are informational: hung = SIGSTOP, down =")
    print("killed; the tag is one never resolved before, the digest-pinned bundle the cached one. The tag errors said:")
    for outage in outages:
        print(f"  {outage.state}: {error_text(outage.tag)}")
    missed = [r.what for r in rows[: len(rows) - informational] if r.met is False]
    failed = [r.what for r in rows[len(rows) - informational :] if r.met is False]
    print("all targets met" if not missed else f"targets missed: {'; '.join(missed)}")
    if failed:
        print(f"informational checks not passed: {'; '.join(failed)}")
    if missed:
        print("(--profile shows where in-process cold resolves spend their time)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG, help="the catalog synced and served")
    p.add_argument("--workers", type=int, default=2, help="hub (taskhub serve) and nginx workers")
    p.add_argument("--cold", type=int, default=40, help="cold resolves measured (median), one fresh tag each")
    p.add_argument("--cold-warmup", type=int, default=4, help="cold resolves before those, not counted")
    p.add_argument("--concurrent", type=int, default=20, help="identical cold requests sent at once")
    p.add_argument("--sequential", type=int, default=400, help="requests of the one-client cached latency")
    p.add_argument("--duration", type=int, default=4, help="seconds of wrk load per measurement")
    p.add_argument("--rounds", type=int, default=2, help="alternating hub/nginx wrk measurements (median)")
    p.add_argument("--warmup", type=int, default=2, help="seconds of wrk load on each peer before measuring")
    p.add_argument("--connections", type=int, default=16, help="wrk connections")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument("--profile", action="store_true", help="cProfile in-process cold resolves")
    p.add_argument("--top", type=int, default=25, help="functions to show per profile")
    args = p.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    if not (args.catalog / "task").is_dir():
        sys.exit(f"no catalog at {args.catalog} (--catalog)")
    if args.cold < 1 or args.cold_warmup < 0 or args.concurrent < 1 or args.rounds < 1:
        sys.exit("--cold, --concurrent and --rounds must be at least 1, --cold-warmup at least 0")
    args.catalog = args.catalog.resolve()
    return args


def cold_digest(hub: str, registry: RegistryServer, bundle: Bundle) -> str:
    """The manifest digest a tag resolved to (from the hub's caches: the tag's TTL has not run out)."""
    conn = connect(hub)
    try:
        body = expect_ok(f"resolve of {bundle}", request(conn, resolve_path(registry, bundle)))
    finally:
        conn.close()
    ref = body.get("refSource")
    if not isinstance(ref, dict):
        sys.exit(f"no refSource in {body}")
    return str(ref["digest"]["sha256"])


def main() -> None:
    args = parse_args()
    try:
        with interruptible() as stack:
            registry = start_registry(stack, "resolve-registry")
            log(f"registry at {registry.host}; publishing {args.catalog} from a data dir of its own")
            bundles = publish_sample(temp_dir(stack, "taskhub-bench-resolve-publisher-"), args.catalog, registry)
            sizes = (args.cold_warmup + args.cold, 1, 12 if args.profile else 0, 2)
            if len(bundles) < sum(sizes):
                sys.exit(f"{len(bundles)} bundles published; {sum(sizes)} fresh tags are needed (lower --cold)")
            cold_set, burst_set, profile_set, outage_set = split(bundles, sizes)
            hub, data_dir = start_hub(stack, registry, args.workers)
            log(f"hub at {hub}, {args.workers} workers; {args.cold_warmup}+{args.cold} cold resolves")
            floor = start_floor(stack, registry, args.workers)
            cold = measure_cold(hub, floor, registry, cold_set, args.cold_warmup)

            pinned_path = resolve_path(registry, cold_set[-1], cold_digest(hub, registry, cold_set[-1]))
            conn = connect(hub)
            body = request(conn, pinned_path)
            conn.close()
            expect_ok("digest-pinned resolve", body)
            static_path = pinned_path.split("?", 1)[0]
            nginx = start_nginx(stack, {static_path: body.body}, args.workers)
            log(f"cached: one client, then wrk, on the hub and on nginx ({len(body.body):,}-byte answer)")
            cached = measure_cached(args, hub + pinned_path, nginx + static_path)

            log(f"concurrent: {args.concurrent} identical cold requests")
            burst = measure_burst(hub, registry, burst_set[0], args.concurrent)
            log(f"  the registry served {burst.served}; HTTP {sorted({a.status for a in burst.answers})}")
            if args.profile:
                profile(data_dir, registry, profile_set, args.top)
            log("registry unreachable: hung (SIGSTOP), then down (killed)")
            outages = measure_outage(hub, registry, pinned_path, outage_set)
            print_table(build_rows(cold, cached, burst, outages), args, len(bundles), cold, len(body.body), outages)
    except KeyboardInterrupt:
        log("interrupted; servers stopped and temp dirs removed")
        sys.exit(130)


def split(bundles: list[Bundle], sizes: tuple[int, ...]) -> list[list[Bundle]]:
    """Consecutive slices of the given sizes: each phase gets tags no other phase resolves."""
    parts, start = [], 0
    for size in sizes:
        parts.append(bundles[start : start + size])
        start += size
    return parts


if __name__ == "__main__":
    main()
