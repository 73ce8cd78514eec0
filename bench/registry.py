"""Benchmark of indexing an OCI registry and of publishing to one, each against raw HTTP done in the same run.

1. A cold `registry sync` of a synthetic catalog's bundles (an empty blob cache), as a ratio to a plain
   http.client loop over one keep-alive connection fetching what that sync needs: the /v2/_catalog pages, each
   repository's tags, each manifest and each layer blob (target: at most 1.5x).
2. An unchanged re-sync as a fraction of the cold one (target: at most 5%), and the blob GETs the registry
   served during re-syncs, counted from its access log (target: none). Release tags (tags that read as
   versions) are read once, so this re-sync lists tags and asks for no manifest. Beside it, its floors: the raw
   listings over one connection, and over as many at once as the sync uses (the registry's own limit). A full
   re-sync (`--full`, every tag asked for again) is shown beside the raw listings plus one HEAD per tag.
3. `catalog publish` of those bundles into a fresh prefix, as a ratio to uploading their exact bytes with
   http.client over one keep-alive connection (POST and PUT per blob, PUT per manifest) into another fresh
   prefix (target: at most 1.5x).

Each is measured twice: once through the `taskhub` command, process start-up included (one run), and once by
calling the library in-process as the command does (median of --repeats). Both sides talk to the same local
docker-registry. Everything runs on 127.0.0.1 in temp dirs that are removed at exit, Ctrl-C included. Progress
goes to stderr; the table goes to stdout.

Run it with ``.venv/bin/python bench/registry.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from api import interruptible, log, print_aligned, taskhub_command, temp_dir
from registry_peers import (
    REGISTRY_BIN,
    RawBundle,
    RegistryServer,
    describe,
    raw_check,
    raw_fetch,
    raw_list_parallel,
    raw_upload,
    start_registry,
)
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from catalog.bundles import build_bundle
from catalog.db import make_engine, upgrade
from catalog.models import Resource, ResourceVersion
from catalog.publish import PublishSummary, publish_catalog
from catalog.registry_sync import PARALLEL_REQUESTS as PARALLEL  # the sync's connections
from catalog.sync import SyncSummary, add_catalog, get_catalog, sync_by_name
from hub.config import Settings
from hub.registries import registry_client

SYNC_TARGET = 1.5  # cold sync time over the raw fetch time, at most
RESYNC_TARGET = 0.05  # unchanged re-sync time over cold sync time, at most
PUBLISH_TARGET = 1.5  # publish time over the raw upload time, at most
CATALOG, REGISTRY = "synth", "reg"  # names of the synthetic catalog and of the registry catalog in taskhub
PREFIX = "bench"

TASK_YAML = """\
apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: {name}
  labels:
    app.kubernetes.io/version: "{version}"
  annotations:
    tekton.dev/pipelines.minVersion: "0.50.0"
    tekton.dev/categories: Developer Tools
    tekton.dev/tags: bench
    tekton.dev/displayName: "{name} {version}"
    tekton.dev/platforms: "linux/amd64,linux/arm64"
spec:
  description: >-
    A synthetic Task of the registry benchmark, {name} at version {version}.
  params:
    - name: message
      type: string
      default: hello
  steps:
    - name: say
      image: docker.io/library/busybox:1.36
      script: |
        echo "$(params.message) from {name} {version}"
"""


@dataclass
class Row:
    what: str
    taskhub: str
    peer: str
    ratio: str
    target: str
    met: bool


def write_catalog(root: Path, tasks: int, versions: int) -> int:
    """A catalog in the tektoncd/catalog layout: task/<name>/<version>/<name>.yaml and README.md."""
    for t in range(tasks):
        name = f"bench-task-{t:03d}"
        for v in range(versions):
            folder = root / "task" / name / f"0.{v + 1}"
            folder.mkdir(parents=True)
            (folder / f"{name}.yaml").write_text(TASK_YAML.format(name=name, version=f"0.{v + 1}"))
            (folder / "README.md").write_text(f"# {name}\n\nVersion 0.{v + 1} of a synthetic Task.\n")
    return tasks * versions


# -- taskhub: the synthetic catalog's bundles, the command, and the calls the command makes ------------------


def built_bundles(database_url: str) -> list[RawBundle]:
    """The bytes `catalog publish` pushes for each live version of the synthetic catalog."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Resource.kind, Resource.name, ResourceVersion.version, ResourceVersion.manifest)
                .join(ResourceVersion.resource)
                .where(Resource.catalog_id == get_catalog(session, CATALOG).id, ResourceVersion.removed_at.is_(None))
            ).all()
    finally:
        engine.dispose()
    bundles = []
    for kind, name, version, manifest in rows:
        built = build_bundle([manifest])
        bundles.append(RawBundle(f"{kind.lower()}/{name}", version, built.manifest, built.blobs()))
    return bundles


def cli(data_dir: Path, *args: str) -> tuple[float, str]:
    """Run `taskhub ARGS` with its own data dir; returns (wall time, standard output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKHUB_")}
    env["TASKHUB_DATA_DIR"] = str(data_dir)
    started = time.perf_counter()
    done = subprocess.run([taskhub_command(), *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"taskhub {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return elapsed, done.stdout


@contextlib.contextmanager
def connected_engine(settings: Settings) -> Iterator[Engine]:
    """A new engine per run, as each command is a process of its own; connecting is not part of the work."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        yield engine
    finally:
        engine.dispose()


def sync_in_process(data_dir: Path, *, full: bool = False) -> tuple[float, SyncSummary]:
    """`taskhub registry sync` as hub/cli/catalogs.py does it (catalog.sync.sync_by_name); (seconds, summary)."""
    settings = Settings(data_dir=data_dir)
    with connected_engine(settings) as engine:
        started = time.perf_counter()
        registries = lambda host: registry_client(settings, engine, host)  # noqa: E731
        summary = sync_by_name(engine, REGISTRY, settings.catalogs_dir, registries, full=full)
        return time.perf_counter() - started, summary


def publish_in_process(data_dir: Path, target: str) -> tuple[float, PublishSummary]:
    """`taskhub catalog publish` as hub/cli/registries.py does it, in one transaction; (seconds, summary)."""
    settings = Settings(data_dir=data_dir)
    with connected_engine(settings) as engine:
        started = time.perf_counter()
        registry = registry_client(settings, engine, target.split("/", 1)[0])
        with Session(engine) as session, session.begin():
            summary = publish_catalog(session, get_catalog(session, CATALOG), registry, target)
        return time.perf_counter() - started, summary


def fresh_registry_catalog(template: Path, data_dir: Path) -> Path:
    """A data dir whose database knows the registry catalog and nothing else; its blob cache is empty."""
    data_dir.mkdir(parents=True)
    shutil.copy(template, data_dir / "taskhub.db")
    return data_dir


def registry_template(tmp: Path, source: str) -> Path:
    template = tmp / "template.db"
    if template.exists():
        return template
    engine = make_engine(f"sqlite:///{template}")
    upgrade(engine)
    with Session(engine) as session, session.begin():
        add_catalog(session, REGISTRY, source, repositories=[])
    with engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()
    return template


# -- the measurements ----------------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def expect(what: str, counts: Counter[str], wanted: dict[str, int]) -> None:
    """Stop when the registry did not serve what a phase must make it serve (a skipped or repeated upload)."""
    wrong = {kind: counts[kind] for kind, n in wanted.items() if counts[kind] != n}
    if wrong:
        sys.exit(f"{what}: the registry served {describe(counts)}; expected {wanted}")


def ratio_row(what: str, taskhub: float, peer: float, target: float) -> Row:
    ratio = taskhub / peer
    return Row(what, f"{taskhub * 1000:.0f}", f"{peer * 1000:.0f}", f"{ratio:.3f}", f"<= {target:g}x", ratio <= target)


@dataclass
class Setup:
    tmp: Path
    source: RegistryServer  # bundles published by the command, indexed by every sync
    scratch: RegistryServer  # the raw uploads, and the in-process publishes
    publisher: Path  # the data dir holding the synthetic catalog
    bundles: list[RawBundle]
    startup: float  # seconds of `taskhub --help`


def prepare(stack: contextlib.ExitStack, args: argparse.Namespace) -> Setup:
    tmp = temp_dir(stack, "taskhub-bench-registry-")
    count = write_catalog(tmp / "catalog", args.tasks, args.versions)
    log(f"catalog: {count} versions of {args.tasks} synthetic Tasks; indexing them with the taskhub command")
    publisher = tmp / "publisher"
    for command in (["db", "upgrade"], ["catalog", "add", CATALOG, str(tmp / "catalog")], ["catalog", "sync"]):
        cli(publisher, *command)
    startup = statistics.median(cli(publisher, "--help")[0] for _ in range(3))
    bundles = built_bundles(Settings(data_dir=publisher).database_url)
    if len(bundles) != count:
        sys.exit(f"the synthetic catalog indexed {len(bundles)} versions, not {count}")
    source, scratch = start_registry(stack, "source"), start_registry(stack, "scratch")
    log(f"registries: source at {source.host}, scratch at {scratch.host}")
    return Setup(tmp, source, scratch, publisher, bundles, startup)


@dataclass
class CommandRun:
    """Seconds of one run of each command, and of the raw upload beside the publish."""

    publish: float
    upload: float
    cold: float
    again: float
    blob_gets: int  # during the re-sync


def measure_cli(s: Setup) -> CommandRun:
    """Publish into the fresh source registry (the raw upload goes to the fresh scratch one), then sync it twice."""
    count = len(s.bundles)
    published, out = cli(s.publisher, "catalog", "publish", CATALOG, "--registry", f"{s.source.host}/{PREFIX}")
    expect("taskhub catalog publish", s.source.requests_since_last(), {"PUT manifest": count})
    uploaded = timed(lambda: raw_upload(s.scratch.host, PREFIX, s.bundles))
    expect("raw upload", s.scratch.requests_since_last(), {"PUT manifest": count})
    log(f"  publish {published * 1000:.0f} ms ({out.splitlines()[0]}); raw upload {uploaded * 1000:.0f} ms")
    syncer = s.tmp / "syncer"
    cli(syncer, "db", "upgrade")
    cli(syncer, "registry", "add", REGISTRY, f"{s.source.host}/{PREFIX}")
    if (syncer / "blobs").exists():
        sys.exit(f"{syncer / 'blobs'} exists before the cold sync")
    s.source.requests_since_last()
    cold, out = cli(syncer, "registry", "sync", REGISTRY)
    served = s.source.requests_since_last()
    expect("taskhub registry sync (cold)", served, {"GET blob": count})
    log(f"  cold sync {cold * 1000:.0f} ms ({' '.join(out.split()[:5])}); the registry served {describe(served)}")
    again, out = cli(syncer, "registry", "sync", REGISTRY)
    served = s.source.requests_since_last()
    if "no changes" not in out:
        sys.exit(f"the unchanged re-sync changed the index:\n{out}")
    log(f"  re-sync {again * 1000:.0f} ms; the registry served {describe(served)}")
    return CommandRun(published, uploaded, cold, again, served["GET blob"])


@dataclass
class Rounds:
    """Seconds of each in-process round."""

    fetch: list[float] = field(default_factory=list)  # the cold sync's peer
    listing: list[float] = field(default_factory=list)  # the floor of an unchanged sync, over one connection
    parallel: list[float] = field(default_factory=list)  # the same over PARALLEL connections: the registry's limit
    check: list[float] = field(default_factory=list)  # listings and HEADs: the floor of a full unchanged sync
    cold: list[float] = field(default_factory=list)
    again: list[float] = field(default_factory=list)
    full: list[float] = field(default_factory=list)
    upload: list[float] = field(default_factory=list)
    publish: list[float] = field(default_factory=list)
    blob_gets: int = 0  # during the re-syncs, the warm-up's included
    re_syncs: int = 0


def measure_in_process(s: Setup, repeats: int) -> Rounds:
    """Rounds alternating the peers and taskhub, so a drift of the machine's speed hits both alike."""
    count = len(s.bundles)
    template = registry_template(s.tmp, f"{s.source.host}/{PREFIX}")
    rounds = Rounds()
    for i in range(repeats + 1):  # the first round warms up imports and caches and is not counted
        fetched = timed(lambda: raw_fetch(s.source.host, PREFIX))
        peer_served = s.source.requests_since_last()
        expect("raw fetch", peer_served, {"GET blob": count})
        checked = timed(lambda: raw_check(s.source.host, PREFIX))
        listed = timed(lambda: raw_check(s.source.host, PREFIX, heads=False))
        started = time.perf_counter()
        if raw_list_parallel(s.source.host, PREFIX, PARALLEL) != count:
            sys.exit("the parallel raw listings did not list every tag")
        in_parallel = time.perf_counter() - started
        s.source.requests_since_last()
        data_dir = fresh_registry_catalog(template, s.tmp / f"sync{i}")
        cold, summary = sync_in_process(data_dir)
        cold_served = s.source.requests_since_last()
        expect("cold sync", cold_served, {"GET blob": count})
        again, unchanged = sync_in_process(data_dir)
        full, full_unchanged = sync_in_process(data_dir, full=True)
        rounds.blob_gets += s.source.requests_since_last()["GET blob"]
        rounds.re_syncs += 2
        if summary.added != count or unchanged.changed or full_unchanged.changed:
            sys.exit(f"unexpected sync results: {summary.lines()} then {unchanged.lines()}")
        if i == 0:
            log(f"  raw fetch: the registry served {describe(peer_served)}")
            log(f"  cold sync: the registry served {describe(cold_served)}")
            continue
        rounds.fetch.append(fetched)
        rounds.listing.append(listed)
        rounds.parallel.append(in_parallel)
        rounds.check.append(checked)
        rounds.cold.append(cold)
        rounds.again.append(again)
        rounds.full.append(full)
    # No warm-up round here: the code is warm, and the scratch registry has stored these blobs once already.
    for i in range(repeats):
        rounds.upload.append(timed(lambda prefix=f"raw{i}": raw_upload(s.scratch.host, prefix, s.bundles)))
        published, summary = publish_in_process(s.publisher, f"{s.scratch.host}/hub{i}")
        expect("raw upload and publish", s.scratch.requests_since_last(), {"PUT manifest": 2 * count})
        if summary.pushed != count:
            sys.exit(f"unexpected publish results: {summary.lines()}")
        rounds.publish.append(published)
    log(f"  raw fetch {_ms_list(rounds.fetch)}; cold sync {_ms_list(rounds.cold)}")
    log(f"  raw listings {_ms_list(rounds.listing)}, over {PARALLEL} connections {_ms_list(rounds.parallel)}")
    log(f"  re-sync {_ms_list(rounds.again)}")
    log(f"  raw listings+HEADs {_ms_list(rounds.check)}; full re-sync {_ms_list(rounds.full)}")
    log(f"  raw upload {_ms_list(rounds.upload)}; publish {_ms_list(rounds.publish)}")
    return rounds


def _ms_list(times: list[float]) -> str:
    return "[" + ", ".join(f"{t * 1000:.0f}" for t in times) + "] ms"


def profile(s: Setup, top: int) -> None:
    """Where an in-process cold sync, an unchanged re-sync and a publish spend their time, on stderr."""
    data_dir = fresh_registry_catalog(registry_template(s.tmp, f"{s.source.host}/{PREFIX}"), s.tmp / "profiled")
    runs: list[tuple[str, Callable[[], object]]] = [
        ("cold registry sync", lambda: sync_in_process(data_dir)),
        ("unchanged registry sync", lambda: sync_in_process(data_dir)),
        ("catalog publish", lambda: publish_in_process(s.publisher, f"{s.scratch.host}/profiled")),
    ]
    for what, run in runs:
        profiler = cProfile.Profile()
        profiler.runcall(run)
        for order in ("tottime", "cumulative"):
            log(f"\n-- cProfile of one in-process {what}, top {top} by {order} --")
            pstats.Stats(profiler, stream=sys.stderr).strip_dirs().sort_stats(order).print_stats(top)


# -- main ----------------------------------------------------------------------------------------------------


def build_rows(command: CommandRun, rounds: Rounds) -> list[Row]:
    median = statistics.median
    fetched, cold = median(rounds.fetch), median(rounds.cold)
    blob_gets, re_syncs = command.blob_gets + rounds.blob_gets, 1 + rounds.re_syncs
    return [
        ratio_row("registry sync, cold, CLI (ms)", command.cold, fetched, SYNC_TARGET),
        ratio_row("registry sync, cold, in-process (ms)", cold, fetched, SYNC_TARGET),
        ratio_row("registry sync, unchanged, CLI (ms)", command.again, command.cold, RESYNC_TARGET),
        ratio_row("registry sync, unchanged, in-process (ms)", median(rounds.again), cold, RESYNC_TARGET),
        Row(f"blob GETs in {re_syncs} unchanged syncs", str(blob_gets), "-", "-", "0", blob_gets == 0),
        ratio_row("catalog publish, CLI (ms)", command.publish, command.upload, PUBLISH_TARGET),
        ratio_row("catalog publish, in-process (ms)", median(rounds.publish), median(rounds.upload), PUBLISH_TARGET),
    ]


def print_table(rows: list[Row], args: argparse.Namespace, s: Setup, rounds: Rounds) -> None:
    version = subprocess.run([str(REGISTRY_BIN), "--version"], capture_output=True, text=True).stdout.split()[-1:]
    print(
        f"\ntaskhub bench/registry.py on {os.cpu_count()} CPUs: {len(s.bundles)} bundles ({args.tasks} Tasks x "
        f"{args.versions} versions) in docker-registry {' '.join(version)} on 127.0.0.1, access log on.\n"
        f"CLI rows: one run of the taskhub command each (`taskhub --help` alone takes {s.startup * 1000:.0f} ms); "
        f"in-process rows: the library calls the command makes, medians of {args.repeats}"
    )
    header = ("what", "taskhub", "peer", "ratio", "target", "result")
    lines = [header] + [(r.what, r.taskhub, r.peer, r.ratio, r.target, "met" if r.met else "NOT MET") for r in rows]
    print_aligned(lines)
    listing, parallel, check, again, full, cold = (
        statistics.median(t)
        for t in (rounds.listing, rounds.parallel, rounds.check, rounds.again, rounds.full, rounds.cold)
    )
    print("peers, each http.client over one keep-alive connection to the same registry: cold sync: GET /v2/_catalog")
    print("(every page), tags/list of each repository, each manifest and each layer blob; unchanged sync: the cold")
    print("sync above it; publish: the same bundles' bytes (catalog.bundles.build_bundle) uploaded into a fresh")
    print("prefix, POST + PUT per blob and PUT per manifest. Blob GETs are counted from the registry's access log.")
    print(f"floor of an unchanged sync: the listings, raw, take {listing * 1000:.0f} ms ({listing / cold:.1%} of the")
    print(f"in-process cold sync); the re-sync takes {again / listing:.2f}x that. Over {PARALLEL} connections at once,")
    print(
        f"the registry's own limit, they take {parallel * 1000:.0f} ms ({parallel / cold:.1%}). A full re-sync (--full,"
    )
    print(f"every tag asked for) takes {full * 1000:.0f} ms ({full / cold:.1%} of the cold sync), {full / check:.2f}x")
    print(f"the raw listings plus one HEAD per tag ({check * 1000:.0f} ms).")
    missed = [r.what for r in rows if not r.met]
    if missed:
        print(f"targets missed: {'; '.join(missed)}")
        print("(--profile shows where the in-process time goes)")
    else:
        print("all targets met")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--tasks", type=int, default=70, help="synthetic Tasks in the catalog")
    p.add_argument("--versions", type=int, default=3, help="versions of each Task (one bundle each)")
    p.add_argument("--repeats", type=int, default=3, help="in-process rounds of each measurement (median)")
    p.add_argument("--profile", action="store_true", help="cProfile a cold sync, re-sync and publish")
    p.add_argument("--top", type=int, default=25, help="functions to show per profile")
    args = p.parse_args()
    if args.tasks < 1 or not 1 <= args.versions <= 9 or args.repeats < 1:
        sys.exit("--tasks and --repeats must be at least 1, --versions from 1 to 9")
    return args


def main() -> None:
    args = parse_args()
    try:
        with interruptible() as stack:
            setup = prepare(stack, args)
            log("taskhub command: publish, cold sync, unchanged re-sync, one run each")
            command = measure_cli(setup)
            log(f"in-process: {args.repeats} rounds of raw fetch and check, cold sync, re-sync; raw upload, publish")
            rounds = measure_in_process(setup, args.repeats)
            if args.profile:
                profile(setup, args.top)
            print_table(build_rows(command, rounds), args, setup, rounds)
    except KeyboardInterrupt:
        log("interrupted; registries stopped and temp dirs removed")
        sys.exit(130)


if __name__ == "__main__":
    main()
