"""`taskhub run -f FILE`: the runs of a file (after its other documents are applied), each resolved and pinned,
then run on the embedded executor or a cluster through runner.launch, which records it (`taskhub runs`)."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
import yaml

from catalog.errors import TaskhubError
from hub.cli import main
from hub.cli.context import Context, cli_user, pass_context
from hub.objects import ObjectService
from hub.registries import local_containers
from hub.services import RunService
from runner.backends import RunBackend, backend_named
from runner.launch import InvalidRun, LaunchResult, parse_run_file
from runner.pinning import CatalogReferenceResolver, pin_references_only

PASS_THROUGH_HELP = (
    "Leave references only a cluster resolves (git, cluster, http, resolver: taskhub, ...) to the cluster's "
    "resolvers, as written; pin the rest. With --backend kubernetes or --pin-only."
)
NAMESPACE_HELP = (
    "The namespace of runs and documents that name none (default: the kubeconfig context's with --backend "
    "kubernetes, else default); plain-name references are read from it."
)


@main.command("run")
@click.option("-f", "--filename", "source", type=click.File("r"), required=True,
              help="The runs' YAML or JSON (several documents, as kubectl create -f takes); - for stdin.")  # fmt: skip
@click.option("--backend", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True,
              help="local: on this host, steps in containers of their images where podman works, else as "
                   "processes (TASKHUB_LOCAL_CONTAINERS); kubernetes: a PipelineRun on a cluster.")  # fmt: skip
@click.option("-k", "--kubeconfig", help="Kubeconfig file for --backend kubernetes (default: $KUBECONFIG).")
@click.option("-c", "--context", "kube_context", help="Kubeconfig context for --backend kubernetes.")
@click.option("--pin-only", is_flag=True,
              help="Print the runs with their references pinned (bundles by digest); do not run them.")  # fmt: skip
@click.option("--pass-through", is_flag=True, help=PASS_THROUGH_HELP)
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "name"]), default="name", show_default=True)
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Overrides one of spec.params.")
@click.option("-n", "--namespace", help=NAMESPACE_HELP)
@pass_context
def run(
    ctx: Context,
    source: Any,
    backend: str,
    kubeconfig: str | None,
    kube_context: str | None,
    pin_only: bool,
    pass_through: bool,
    output: str,
    params: tuple[str, ...],
    namespace: str | None,
) -> None:
    """Run every TaskRun and PipelineRun of a file, as `kubectl create -f` would create them, after its other
    documents (Tasks, Pipelines, StepActions, ConfigMaps, Secrets, PersistentVolumeClaims) are applied to the local
    store as `taskhub apply -f` applies them. Each run's references are resolved and locked (versions and digests
    in its `taskhub.dev/lock` annotation) and it is recorded (`taskhub runs show ID`); exits 0 only when every run
    succeeded. With --backend kubernetes, a run's plain-name references (`taskRef: {name: ...}`) are read from its
    namespace of the cluster."""
    if pass_through and backend == "local" and not pin_only:
        raise click.UsageError("--pass-through leaves references to a cluster's resolvers: use --backend kubernetes")
    try:
        file = parse_run_file(source.read())
    except InvalidRun as exc:
        raise click.ClickException(str(exc)) from None
    runs = ctx.services.runs
    objects = ctx.services.objects
    containers = None
    if backend == "local" and not pin_only:
        try:
            containers, how = local_containers(ctx.settings, ctx.migrated_engine())
        except TaskhubError as exc:
            raise click.ClickException(str(exc)) from None
        if how:
            click.echo(how, err=True)
    chosen = backend_named(
        backend, ctx.settings.data_dir, namespace, objects=objects, kubeconfig=kubeconfig, context=kube_context,
        containers=lambda: containers,
    )  # fmt: skip
    for obj in file.runs:
        _override_params(obj, params)
        try:  # as kubectl: -n, else the run's own namespace, else the context's; a run naming another is refused
            obj["metadata"]["namespace"] = chosen.namespace_for(obj)
        except TaskhubError as exc:
            raise click.ClickException(f'{obj["kind"]} "{_name(obj)}": {exc}') from None

    def resolver(run: dict[str, Any], pending: list[dict[str, Any]]) -> CatalogReferenceResolver:
        return runs.reference_resolver(runs.installed(chosen, run["metadata"]["namespace"], pending))

    service = ObjectService(objects)
    try:
        if pin_only:  # nothing is written: the file's own objects are read from it
            ready = service.admit(file.objects, namespace=namespace)
            for obj in ready:
                obj.setdefault("metadata", {}).setdefault("namespace", namespace or "default")
            pinned = [pin_references_only(obj, resolver(obj, ready), pass_through=pass_through)[0] for obj in file.runs]
            click.echo(_render(pinned, output), nl=False)
            return
        if file.objects and backend != "local":
            raise click.ClickException(
                "--backend kubernetes runs files of TaskRuns and PipelineRuns only; "
                "create their other objects with kubectl"
            )
        for applied in service.apply(file.objects, namespace=namespace, created_by=cli_user()):
            click.echo(applied.describe(), err=True)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    unavailable = chosen.unavailable_reason()
    if unavailable is not None:
        raise click.ClickException(unavailable)
    several = len(file.runs) > 1
    cancel = threading.Event()  # the first Ctrl-C cancels the run going and those not started yet
    with _cancel_on_interrupt(cancel):
        ended = [_launch(runs, chosen, obj, cancel, several, pass_through) for obj in file.runs]
    click.echo(_render([result.object for result in ended if result.object is not None], output), nl=False)
    failed = [result for result in ended if result.object is None]
    if failed and not several:
        raise click.ClickException(failed[0].message)
    sys.exit(0 if all(result.succeeded for result in ended) else 1)


def _launch(
    runs: RunService, backend: RunBackend, obj: dict[str, Any], cancel: threading.Event, several: bool,
    pass_through: bool,
) -> LaunchResult:  # fmt: skip
    """Runs one run of the file here, its logs and how it ended on stderr (for a file of one run, a run that did
    not start is left to the caller to say)."""
    result = runs.launch_here(
        obj,
        backend,
        created_by=cli_user(),
        cancel=cancel,
        log=_print_log,
        on_event=lambda line: click.echo(line, err=True),
        on_started=lambda run_id, _pinned: click.echo(f"run {run_id}", err=True),
        pass_through=pass_through,
    )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.object is None:
        if several:
            click.echo(f"{obj['kind'].lower()}/{_name(obj)}: {result.reason}: {result.message}", err=True)
        return result
    name = result.object["metadata"].get("name")
    click.echo(
        f"{result.object['kind'].lower()}/{name}: {result.reason or result.status}"
        + (f": {result.message}" if result.message else ""),
        err=True,
    )
    return result


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("name") or obj["metadata"].get("generateName"))


def _print_log(task_run: str, container: str, text: str) -> None:
    click.echo(f"[{task_run}/{container.removeprefix('step-')}] {text.rstrip()}", err=True)


@contextmanager
def _cancel_on_interrupt(cancel: threading.Event) -> Iterator[None]:
    """The first Ctrl-C cancels the run (it is recorded Cancelled); a second one stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum: int, frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        click.echo("cancelling the runs (Ctrl-C again to stop at once)", err=True)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _override_params(obj: dict[str, Any], overrides: tuple[str, ...]) -> None:
    if not overrides:
        return  # the run goes as written: no `params: []` added to a run without params
    current = obj["spec"].setdefault("params", [])
    for override in overrides:
        name, equals, value = override.partition("=")
        if not equals or not name:
            raise click.UsageError(f"expected NAME=VALUE, got {override!r}")
        for param in current:
            if isinstance(param, dict) and param.get("name") == name:
                param["value"] = value
                break
        else:
            current.append({"name": name, "value": value})


def _render(objects: list[dict[str, Any]], output: str) -> str:
    """Each object as -o asks: JSON documents one after another, YAML documents separated by `---`, or names."""
    if output == "json":
        return "".join(json.dumps(obj, indent=2) + "\n" for obj in objects)
    if output == "yaml":
        return "---\n".join(yaml.safe_dump(obj, sort_keys=False, allow_unicode=True) for obj in objects)
    return "".join(
        f"{obj['kind'].lower()}.tekton.dev/{obj['metadata'].get('name') or obj['metadata'].get('generateName')}\n"
        for obj in objects
    )
