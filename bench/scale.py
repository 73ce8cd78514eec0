"""Benchmark of a hub as its catalog grows: syncs, database size and uncached reads, each against a peer measured
in the same run.

Generated catalogs of --sizes resources (5 versions each, with realistic manifests and READMEs; 1 in 10 a
Pipeline), each indexed into a database of its own, on SQLite and on PostgreSQL:

1. A cold sync, and an unchanged re-sync (target: at most 10% of the cold one); the database's size.
2. p50 and p99 of the home page, `/v1/query?name=...`, `/v1/resource/tekton/{kind}/{name}` and Artifact Hub's
   `/api/v1/packages/search?ts_query_web=...`, served by `taskhub serve` with the response cache off and no rate
   limits (set explicitly), every request for another resource. Targets: at the largest size, p99 at most 2x the
   p99 at the size before it; `/v1/query` and `/v1/resource` p99 at most 1.3x a bare Flask view running the
   same single SQL statement (bench/query_floor.py), served the same way, measured in alternating rounds.
3. `taskhub --version` and `taskhub catalog list` start-up against `python -c pass` (reported, no target).

Only the answers a client wanted count: a status other than 200, or a body without the resource asked for, stops
the benchmark with the request that failed. The default sizes run in a few minutes; `--full` runs 200, 2,000 and
20,000 resources (the issue's sizes; the largest takes most of an hour on 2 CPUs).

Run it with ``.venv/bin/python bench/scale.py`` (``--help`` for the knobs). PostgreSQL is started on a free
loopback port (TASKHUB_TEST_PG_BIN, default /usr/lib/postgresql/15/bin); everything runs in temp dirs that are
removed at exit, Ctrl-C included. Progress goes to stderr; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from api import (
    free_port,
    interruptible,
    log,
    print_aligned,
    start_server,
    taskhub_command,
    temp_dir,
    wait_until_up,
)
from pg_server import PG_BIN, postgres
from sqlalchemy import text
from sqlalchemy.orm import Session

from catalog.db import make_engine, upgrade
from catalog.metadata import HUB_CATEGORIES
from catalog.sync import add_catalog, sync_by_name

DEFAULT_SIZES = (100, 1000)
FULL_SIZES = (200, 2000, 20000)
VERSIONS = 5
RESYNC_TARGET = 0.10  # unchanged re-sync over cold sync, at most
GROWTH_TARGET = 2.0  # p99 at a size over p99 at the size before it, at most
FLOOR_TARGET = 1.3  # p99 over the bare view's p99, at most

TOOLS = ("git", "kaniko", "buildah", "helm", "kubectl", "trivy", "golang", "maven", "gradle", "npm", "python",
         "docker", "ansible", "terraform", "skopeo", "sonar", "jib", "yaml", "markdown", "slack", "github",
         "gitlab", "argocd", "openshift", "pylint", "shellcheck", "hadolint", "cosign", "syft",
         "kustomize")  # fmt: skip
ACTIONS = ("clone", "build", "push", "scan", "lint", "deploy", "test", "publish", "notify", "sign", "release",
           "verify", "package", "upgrade", "apply", "report", "sync", "check", "cleanup", "promote")  # fmt: skip
TAGS = ("git", "build-tool", "image-build", "security", "deploy", "test", "cli", "kubernetes", "cloud",
        "messaging", "code-quality", "ci", "publishing", "storage", "monitoring", "networking")  # fmt: skip
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/s390x", "linux/ppc64le")

MANIFEST = """\
apiVersion: tekton.dev/v1
kind: {kind}
metadata:
  name: {name}
  labels:
    app.kubernetes.io/version: "{version}"
  annotations:
    tekton.dev/pipelines.minVersion: "0.{min_minor}.0"
    tekton.dev/categories: {category}
    tekton.dev/tags: {tags}
    tekton.dev/displayName: "{display}"
    tekton.dev/platforms: "{platforms}"
spec:
  description: >-
    The {display} {kind_lower} runs {tool} to {action} the sources of a workspace. It is
    version {version} of a catalog entry generated for a benchmark, and reads like one a team
    would publish: it takes a few parameters, writes results, and runs a couple of steps.
{body}"""

TASK_BODY = """\
  workspaces:
    - name: source
      description: The sources to {action}.
  params:
    - name: IMAGE
      description: The image {tool} runs in.
      default: "registry.example.com/{tool}:{version}.0"
    - name: ARGS
      type: array
      description: Extra arguments for {tool}.
      default: []
    - name: CONTEXT
      description: The directory of the workspace to work in.
      default: "."
    - name: VERBOSE
      default: "false"
  results:
    - name: DIGEST
      description: What the {action} produced.
  steps:
    - name: {action}
      image: $(params.IMAGE)
      workingDir: $(workspaces.source.path)/$(params.CONTEXT)
      args: ["$(params.ARGS[*])"]
      script: |
        #!/bin/sh
        set -eu
        [ "$(params.VERBOSE)" = true ] && set -x
        {tool} {action} "$@" | tee /tmp/out
        sha256sum /tmp/out | cut -d' ' -f1 | tr -d '\\n' > $(results.DIGEST.path)
    - name: report
      image: registry.example.com/busybox:1.36
      script: echo "{name} {version} done"
"""

PIPELINE_BODY = """\
  workspaces:
    - name: shared
  params:
    - name: revision
      default: main
  tasks:
    - name: fetch
      taskRef:
        resolver: hub
        params:
          - {{name: name, value: git-clone}}
          - {{name: version, value: "0.9"}}
      workspaces:
        - {{name: output, workspace: shared}}
    - name: {action}
      runAfter: [fetch]
      taskRef:
        resolver: hub
        params:
          - {{name: name, value: {tool}-{action}}}
          - {{name: version, value: ">={version}"}}
      workspaces:
        - {{name: source, workspace: shared}}
"""

README = """\
# {display}

The `{name}` {kind_lower} runs {tool} to {action} the sources in a workspace. This is version {version}.

## Install

```
kubectl apply -f https://hub.example.com/v1/resource/tekton/{kind_lower}/{name}/{version}/raw
```

## Parameters

| name | description | default |
|---|---|---|
| IMAGE | The image {tool} runs in. | `registry.example.com/{tool}:{version}.0` |
| ARGS | Extra arguments for {tool}. | `[]` |
| CONTEXT | The directory of the workspace to work in. | `.` |

## Workspaces

* **source**: the sources to {action}.

## Usage

```yaml
apiVersion: tekton.dev/v1
kind: TaskRun
metadata:
  generateName: {name}-
spec:
  taskRef:
    resolver: hub
    params:
      - name: name
        value: {name}
  workspaces:
    - name: source
      emptyDir: {{}}
```

{tool} must be able to reach the registries the workspace names; see its documentation for the credentials.
"""


@dataclass(frozen=True)
class Generated:
    """A resource of a generated catalog: its URL path kind, name and a search text that only it matches."""

    kind: str  # "task" or "pipeline"
    name: str
    term: str


def resource_name(i: int) -> tuple[str, str, str]:
    tool, action = TOOLS[i % len(TOOLS)], ACTIONS[(i // len(TOOLS)) % len(ACTIONS)]
    return tool, action, f"{tool}-{action}-{i:05d}"


def generate(root: Path, size: int) -> list[Generated]:
    """A catalog of `size` resources with VERSIONS versions each under root; what was written."""
    out = []
    for i in range(size):
        tool, action, name = resource_name(i)
        kind = "pipeline" if i % 10 == 9 else "task"
        rng = random.Random(i)
        tags = ", ".join(rng.sample(TAGS, rng.randint(1, 3)))
        fields = {
            "kind": kind.capitalize(), "kind_lower": kind, "name": name, "tool": tool, "action": action,
            "display": f"{tool.capitalize()} {action} {i}", "tags": tags, "category": rng.choice(HUB_CATEGORIES),
            "platforms": ",".join(PLATFORMS[: rng.randint(1, len(PLATFORMS))]),
        }  # fmt: skip
        for minor in range(1, VERSIONS + 1):
            version = f"0.{minor}"
            folder = root / kind / name / version
            folder.mkdir(parents=True)
            values = {**fields, "version": version, "min_minor": 40 + minor * 4}
            body = (TASK_BODY if kind == "task" else PIPELINE_BODY).format(**values)
            (folder / f"{name}.yaml").write_text(MANIFEST.format(**values, body=body))
            (folder / "README.md").write_text(README.format(**values))
        out.append(Generated(kind, name, f"{action}-{i:05d}"))
    return out


# -- the databases ---------------------------------------------------------------------------------------------


@dataclass
class Database:
    """One database of a dialect at a size: its URL and how to tell its size on disk."""

    dialect: str
    url: str
    size_bytes: Callable[[], int]


@contextlib.contextmanager
def databases(stack: contextlib.ExitStack, dialects: list[str]) -> Iterator[Callable[[str, int], Database]]:
    """A maker of fresh, migrated databases (dialect, catalog size) on SQLite files and one PostgreSQL server."""
    tmp = temp_dir(stack, "taskhub-bench-scale-db-")
    server = stack.enter_context(postgres()) if "postgresql" in dialects else ""

    def make(dialect: str, size: int) -> Database:
        if dialect == "sqlite":
            path = tmp / f"scale{size}.db"
            url = f"sqlite:///{path}"

            def sqlite_bytes() -> int:
                engine = make_engine(url)
                with engine.connect() as conn:
                    conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
                engine.dispose()
                return path.stat().st_size

            database = Database(dialect, url, sqlite_bytes)
        else:
            name = f"scale{size}"
            admin = make_engine(server, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {name}"))
            admin.dispose()
            url = server.rsplit("/", 1)[0] + "/" + name

            def postgres_bytes() -> int:
                engine = make_engine(url)
                with engine.connect() as conn:
                    size = int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)
                engine.dispose()
                return size

            database = Database(dialect, url, postgres_bytes)
        engine = make_engine(database.url)
        upgrade(engine)
        engine.dispose()
        return database

    yield make


# -- syncs -----------------------------------------------------------------------------------------------------


def no_registries(host: str) -> Any:
    raise AssertionError(f"a directory catalog asked for registry {host}")


def timed_sync(url: str, work_dir: Path) -> tuple[float, int, int]:
    """A sync of the "tekton" catalog as `taskhub catalog sync tekton` runs it, with an engine of its own as a
    process has; (seconds, versions indexed, versions changed)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # connecting is not part of a sync's work
        started = time.perf_counter()
        summary = sync_by_name(engine, "tekton", work_dir, no_registries)
        return time.perf_counter() - started, summary.versions, summary.changed
    finally:
        engine.dispose()


# -- reads -----------------------------------------------------------------------------------------------------


@dataclass
class Read:
    """One kind of read: its name, the request for a resource, and what its 200 answer must hold."""

    name: str
    path: Callable[[Generated], str]
    expect: Callable[[Generated, int], bytes]  # (the resource asked for, the catalog size)
    html: bool = False
    floor: bool = False  # bench/query_floor.py answers it too


READS = (
    Read("home page /", lambda r: "/", lambda r, n: f'id="result-count">{n} results'.encode(), html=True),
    Read(
        "/v1/query?name=", lambda r: f"/v1/query?name={quote(r.term)}", lambda r, n: f'"{r.name}"'.encode(), floor=True
    ),
    Read(
        "/v1/resource/tekton/{kind}/{name}",
        lambda r: f"/v1/resource/tekton/{r.kind}/{r.name}",
        lambda r, n: f'"{r.name}"'.encode(),
        floor=True,
    ),
    Read(
        "/api/v1/packages/search",
        lambda r: f"/api/v1/packages/search?ts_query_web={quote(r.term)}",
        lambda r, n: f'"{r.name}"'.encode(),
    ),
)


class Client:
    """One keep-alive connection; each request timed; an answer a client would not want stops the benchmark."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)

    def get(self, path: str, expect: bytes, html: bool) -> float:
        headers = {"Accept": "text/html"} if html else {}
        started = time.perf_counter()
        self.conn.request("GET", path, headers=headers)
        response = self.conn.getresponse()
        body = response.read()
        seconds = time.perf_counter() - started
        if response.status != 200 or expect not in body:
            sys.exit(f"GET {path}: {response.status}, a body without {expect.decode()!r}:\n{body[:500]!r}")
        if response.will_close:
            self.conn.close()
        return seconds


PEERS = ("hub", "bare")


@dataclass
class Latencies:
    """Seconds of each request, by "PEER SIZE READ" (PEER: hub or bare)."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def p(self, key: str, q: int) -> float:
        values = sorted(self.samples[key])
        return values[min(len(values) - 1, round(q / 100 * len(values)) - 1)]


def measure_reads(
    servers: dict[int, tuple[str, str]], resources: dict[int, list[Generated]], requests: int
) -> Latencies:
    """Each read `requests` times at each size on the hub, and on the bare view for the same resource, every
    request for a random resource. Requests go round the sizes and peers one at a time, so that a drift of the
    machine's speed (other work on it) hits every figure alike; the first 10% are a warm-up, not counted.

    The reads the bare view answers too are measured in rounds of their own, so that hub and bare view serve the
    same requests: with the hub's other reads (a home page is 5 ms of work) in the same rounds, the hub answered
    each /v1/resource after one of them and the bare view did not."""
    rng = random.Random(0)
    out = Latencies()
    clients = {
        (size, peer): Client(base) for size, bases in servers.items() for peer, base in zip(PEERS, bases, strict=True)
    }
    warmup = requests // 10
    for reads in ([r for r in READS if r.floor], [r for r in READS if not r.floor]):
        for n in range(warmup + requests):
            for read in reads:
                for size in servers:
                    picked = rng.choice(resources[size])
                    # The same resource from both, in turns first: the second finds the rows cached by the first.
                    for peer in PEERS[:: 1 - 2 * (n % 2)] if read.floor else PEERS[:1]:
                        seconds = clients[(size, peer)].get(read.path(picked), read.expect(picked, size), read.html)
                        if n >= warmup:
                            out.samples.setdefault(f"{peer} {size} {read.name}", []).append(seconds)
    return out


def start_hub(stack: contextlib.ExitStack, database: Database, workers: int) -> str:
    """`taskhub serve` on the database, the response cache off and no rate limits; its base URL."""
    data_dir = temp_dir(stack, "taskhub-bench-scale-hub-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
    env.update(
        TASKHUB_DATA_DIR=str(data_dir),
        TASKHUB_DATABASE_URL=database.url,
        TASKHUB_RESPONSE_CACHE_BYTES="0",  # every read runs
        TASKHUB_RATE_LIMIT_SEARCH="0",  # one client searching hundreds of times a minute
        TASKHUB_RATE_LIMIT_RESOLVE="0",
    )
    port = free_port()
    # The hub only: a job worker beside it would sync and refresh on its own schedule while this measures.
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--no-worker"]
    cmd = [taskhub_command(), *serve]
    proc = start_server(stack, cmd, data_dir / "serve.log", env, 15)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(proc, base + "/v1", data_dir / "serve.log")
    return base


def start_floor(stack: contextlib.ExitStack, database: Database, workers: int) -> str:
    """bench/query_floor.py on the database, served as `taskhub serve` serves the hub; its base URL."""
    port = free_port()
    log_path = temp_dir(stack, "taskhub-bench-scale-floor-") / "serve.log"
    floor = Path(__file__).resolve().parent / "query_floor.py"
    cmd = [sys.executable, str(floor), database.url, "--port", str(port), "--workers", str(workers)]
    proc = start_server(stack, cmd, log_path, dict(os.environ), 15)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(proc, base + "/", log_path)
    return base


# -- the command line's start-up -------------------------------------------------------------------------------


def start_up(database: Database, rounds: int) -> dict[str, tuple[float, float]]:
    """Median (CPU, wall) seconds of `python -c pass`, `taskhub --version` and `taskhub catalog list` on the
    database, interleaved."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
    env["TASKHUB_DATABASE_URL"] = database.url
    taskhub = taskhub_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "taskhub --version": [taskhub, "--version"],
        "taskhub catalog list": [taskhub, "catalog", "list"],
    }
    samples: dict[str, list[tuple[float, float]]] = {c: [] for c in commands}
    for _ in range(rounds):
        for what, cmd in commands.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:
                sys.exit(f"{what} failed:\n{done.stderr}")
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            samples[what].append((cpu, wall))
    return {
        what: (statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs))
        for what, runs in samples.items()
    }


# -- the run ---------------------------------------------------------------------------------------------------


@dataclass
class Synced:
    cold: float
    resync: float
    db_bytes: int


def sync_size(
    stack: contextlib.ExitStack, args: argparse.Namespace, database: Database, catalog: Path, size: int
) -> Synced:
    """A cold sync of the catalog into the database, then unchanged re-syncs."""
    engine = make_engine(database.url)
    with Session(engine) as session, session.begin():
        add_catalog(session, "tekton", str(catalog))
    engine.dispose()
    work = temp_dir(stack, "taskhub-bench-scale-work-")
    cold, versions, _ = timed_sync(database.url, work)
    if versions != size * VERSIONS:
        sys.exit(f"{database.dialect}: the sync indexed {versions} versions of {size * VERSIONS}")
    resyncs = []
    for _ in range(args.resyncs):
        seconds, _, changed = timed_sync(database.url, work)
        if changed:
            sys.exit(f"{database.dialect}: an unchanged re-sync changed {changed} versions")
        resyncs.append(seconds)
    resync = statistics.median(resyncs)
    log(f"  {database.dialect} {size:,}: cold sync {cold:.1f} s, unchanged re-sync {resync:.2f} s")
    return Synced(cold, resync, database.size_bytes())


def read_sizes(
    args: argparse.Namespace, dialect: str, databases: dict[int, Database], resources: dict[int, list[Generated]]
) -> Latencies:
    """The reads at every size of one dialect, with a hub and a bare view up for each."""
    log(f"  {dialect}: {args.requests} rounds of every read at every size")
    with contextlib.ExitStack() as stack:
        servers = {
            size: (start_hub(stack, database, args.workers), start_floor(stack, database, args.workers))
            for size, database in databases.items()
        }
        reads = measure_reads(servers, resources, args.requests)
    for key in reads.samples:
        log(f"    {dialect} {key}: p50 {reads.p(key, 50) * 1000:.1f} ms, p99 {reads.p(key, 99) * 1000:.1f} ms")
    return reads


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def report(
    args: argparse.Namespace,
    synced: dict[tuple[str, int], Synced],
    reads: dict[str, Latencies],
    cli: dict[str, tuple[float, float]],
) -> None:
    print(
        f"\ntaskhub bench/scale.py on {os.cpu_count()} CPUs: sizes {', '.join(f'{s:,}' for s in args.sizes)} "
        f"resources x {VERSIONS} versions; {args.workers} server workers, 1 client; p50/p99 of {args.requests} "
        f"uncached requests each (response cache off, no rate limits)"
    )
    header = ("database, size", "cold sync s", "re-sync s", "re-sync/cold", "target", "result", "db MB", "KB/resource")
    lines: list[tuple[str, ...]] = [header]
    rows: list[tuple[str, float, float]] = []  # (what, ratio, target) of every target
    for (dialect, size), m in synced.items():
        ratio = m.resync / m.cold
        met = ratio <= RESYNC_TARGET
        rows.append((f"{dialect} {size}: re-sync/cold", ratio, RESYNC_TARGET))
        lines.append((f"{dialect} {size:,}", f"{m.cold:.1f}", f"{m.resync:.2f}", f"{ratio:.3f}",
                      f"<= {RESYNC_TARGET:g}", "met" if met else "NOT MET", f"{m.db_bytes / 2**20:.1f}",
                      f"{m.db_bytes / size / 1024:.1f}"))  # fmt: skip
    print()
    print_aligned(lines)

    lines = [("database, size, read", "p50 ms", "p99 ms", f"p99/bare view <= {FLOOR_TARGET:g}",
              f"p99/size before <= {GROWTH_TARGET:g}", "result")]  # fmt: skip
    for dialect, size in synced:
        smaller = [s for s in args.sizes if s < size]
        before = smaller[-1] if smaller and size == args.sizes[-1] else None
        times = reads[dialect]
        for read in READS:
            key = f"hub {size} {read.name}"
            p50, p99 = times.p(key, 50), times.p(key, 99)
            what = f"{dialect} {size:,} {read.name}"
            cells, checks = ["", ""], []
            if read.floor:
                floor99 = times.p(f"bare {size} {read.name}", 99)
                rows.append((f"{what}: p99/bare view", p99 / floor99, FLOOR_TARGET))
                cells[0] = f"{p99 / floor99:.2f} of {ms(floor99)}"
                checks.append(p99 / floor99 <= FLOOR_TARGET)
            if before is not None:
                prior = times.p(f"hub {before} {read.name}", 99)
                rows.append((f"{what}: p99/p99 at {before:,}", p99 / prior, GROWTH_TARGET))
                cells[1] = f"{p99 / prior:.2f} of {ms(prior)} at {before:,}"
                checks.append(p99 / prior <= GROWTH_TARGET)
            result = ("met" if all(checks) else "NOT MET") if checks else ""
            lines.append((what, ms(p50), ms(p99), *cells, result))
    print()
    print_aligned(lines)

    base_cpu, base_wall = cli["python -c pass"]
    lines = [("command", "cpu ms", "ratio", "wall ms", "ratio")]
    for what, (cpu, wall) in cli.items():
        lines.append(
            (what, f"{cpu * 1000:.0f}", f"{cpu / base_cpu:.2f}", f"{wall * 1000:.0f}", f"{wall / base_wall:.2f}")
        )
    print()
    print_aligned(lines)
    print(
        "peers: the cold sync; the same read at the size before; a bare Flask view running the same single SQL "
        "statement\n(bench/query_floor.py) on the same server stack; `python -c pass`. Start-up: medians of "
        f"{args.rounds}, `catalog list` on the SQLite database of {args.sizes[-1]:,}."
    )
    missed = [what for what, ratio, target in rows if ratio > target]
    print("all targets met" if not missed else f"targets missed: {'; '.join(missed)}")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="catalog sizes (resources), ascending")
    p.add_argument("--full", action="store_true", help=f"the issue's sizes: {', '.join(map(str, FULL_SIZES))}")
    p.add_argument("--databases", default="sqlite,postgresql", help="sqlite, postgresql or both")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="hub and bare view server workers")
    # p99 of 1,000 is the 11th slowest: a few preempted requests decide it. Between two --full runs of the same
    # code, a size's /v1/resource ratio to the bare view moved by up to 0.27 (0.18 on average) at 1,000 requests
    # (when the reads shared rounds); by up to 0.17 (0.10 on average) at 4,000, the 41st slowest.
    p.add_argument("--requests", type=int, default=4000, help="requests of each read at each size (p50, p99)")
    p.add_argument("--resyncs", type=int, default=3, help="unchanged re-syncs (median)")
    p.add_argument("--rounds", type=int, default=10, help="runs of each start-up command (median)")
    args = p.parse_args()
    args.sizes = list(FULL_SIZES) if args.full else sorted(int(s) for s in args.sizes.split(","))
    args.databases = [d.strip() for d in args.databases.split(",")]
    if unknown := set(args.databases) - {"sqlite", "postgresql"}:
        p.error(f"unknown databases: {', '.join(sorted(unknown))}")
    if "postgresql" in args.databases and not (PG_BIN / "initdb").exists():
        sys.exit(f"PostgreSQL is not installed in {PG_BIN} (apt-get install postgresql, or --databases sqlite)")
    return args


def main() -> None:
    args = parse_args()
    synced: dict[tuple[str, int], Synced] = {}
    dbs: dict[str, dict[int, Database]] = {dialect: {} for dialect in args.databases}
    resources: dict[int, list[Generated]] = {}
    try:
        with interruptible() as stack:
            make_database = stack.enter_context(databases(stack, args.databases))
            for size in args.sizes:
                catalog = temp_dir(stack, f"taskhub-bench-scale-{size}-")
                started = time.perf_counter()
                resources[size] = generate(catalog, size)
                log(f"generated {size:,} resources x {VERSIONS} versions in {time.perf_counter() - started:.1f} s")
                for dialect in args.databases:
                    dbs[dialect][size] = make_database(dialect, size)
                    synced[(dialect, size)] = sync_size(stack, args, dbs[dialect][size], catalog, size)
            reads = {dialect: read_sizes(args, dialect, dbs[dialect], resources) for dialect in args.databases}
            log("start-up: python -c pass, taskhub --version, taskhub catalog list")
            cli = start_up(dbs[args.databases[0]][args.sizes[-1]], args.rounds)
            report(args, synced, reads, cli)
    except KeyboardInterrupt:
        log("interrupted; servers stopped and temp dirs removed")
        sys.exit(130)


if __name__ == "__main__":
    main()
