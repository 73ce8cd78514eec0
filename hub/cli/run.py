"""`taskhub run -f run.yaml`: resolve and pin a TaskRun or PipelineRun, then run it on the embedded executor or a
cluster through runner.launch, which records it (`taskhub runs`)."""

from __future__ import annotations

import getpass
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
from hub.cli.context import Context, pass_context
from hub.registries import Resolvers
from runner.backends import backend_named
from runner.launch import InvalidRun, RunLauncher, parse_run
from runner.local_store import InstalledStore
from runner.pinning import CatalogReferenceResolver, pin_references_only
from runner.records import RunRecords


@main.command("run")
@click.option("-f", "--filename", "source", type=click.File("r"), required=True, help="The run's YAML; - for stdin.")
@click.option("--backend", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True,
              help="local: steps run as processes on this host; kubernetes: a PipelineRun on a cluster.")  # fmt: skip
@click.option("-k", "--kubeconfig", help="Kubeconfig file for --backend kubernetes (default: $KUBECONFIG).")
@click.option("-c", "--context", "kube_context", help="Kubeconfig context for --backend kubernetes.")
@click.option("--pin-only", is_flag=True,
              help="Print the run with its references pinned (bundles by digest); do not run it.")  # fmt: skip
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "name"]), default="name", show_default=True)
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE", help="Overrides one of spec.params.")
@click.option("-n", "--namespace", default="default", show_default=True, help="Namespace of installed objects.")
@pass_context
def run(
    ctx: Context,
    source: Any,
    backend: str,
    kubeconfig: str | None,
    kube_context: str | None,
    pin_only: bool,
    output: str,
    params: tuple[str, ...],
    namespace: str,
) -> None:
    """Resolve every reference of a TaskRun or PipelineRun, record a lock of versions and digests in its
    `taskhub.dev/lock` annotation, and run it; exits 0 only when the run succeeded. Every run is recorded:
    `taskhub runs show ID` and `taskhub runs logs ID` read it back."""
    try:
        obj = parse_run(source.read())
    except InvalidRun as exc:
        raise click.ClickException(str(exc)) from None
    _override_params(obj, params)
    engine = ctx.migrated_engine()
    resolvers = Resolvers(ctx.settings, engine)
    store = InstalledStore(engine, namespace)
    base = ctx.settings.public_url or "http://127.0.0.1:8000/"
    resolve_ref = CatalogReferenceResolver(engine, resolvers.bundles, resolvers.hub, store, base)
    if pin_only:
        try:
            pinned, _lock = pin_references_only(obj, resolve_ref)
        except TaskhubError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(_render(pinned, output), nl=False)
        return
    chosen = backend_named(
        backend, ctx.settings.data_dir, namespace, engine=engine, kubeconfig=kubeconfig, context=kube_context
    )
    unavailable = chosen.unavailable_reason()
    if unavailable is not None:
        raise click.ClickException(unavailable)
    launcher = RunLauncher(RunRecords(engine), resolve_ref, chosen)
    cancel = threading.Event()
    with _cancel_on_interrupt(cancel):
        result = launcher.launch(
            obj,
            created_by=_user(),
            cancel=cancel,
            log=_print_log,
            on_event=lambda line: click.echo(line, err=True),
            on_started=lambda run_id, _pinned: click.echo(f"run {run_id}", err=True),
        )
    if result.object is None:
        raise click.ClickException(result.message)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    name = result.object["metadata"].get("name")
    click.echo(
        f"{result.object['kind'].lower()}/{name}: {result.reason or result.status}"
        + (f": {result.message}" if result.message else ""),
        err=True,
    )
    click.echo(_render(result.object, output), nl=False)
    sys.exit(0 if result.succeeded else 1)


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
        click.echo("cancelling the run (Ctrl-C again to stop at once)", err=True)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container, say)
        return ""


def _override_params(obj: dict[str, Any], overrides: tuple[str, ...]) -> None:
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


def _render(obj: dict[str, Any], output: str) -> str:
    if output == "json":
        return json.dumps(obj, indent=2) + "\n"
    if output == "yaml":
        return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True)
    return f"{obj['kind'].lower()}.tekton.dev/{obj['metadata'].get('name') or obj['metadata'].get('generateName')}\n"
