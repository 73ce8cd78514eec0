"""`taskhub run -f run.yaml`: resolve and pin a TaskRun or PipelineRun, then run it on the embedded executor."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import click
import yaml

from catalog.errors import TaskhubError
from hub.cli import Context, main, pass_context
from hub.registries import Resolvers
from runner.local import InvalidRunObject, LocalExecutor, ResolutionError
from runner.local_store import InstalledStore, default_root
from runner.pinning import CatalogReferenceResolver, pin_references_only, pin_run, step_action_resolver


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
    `taskhub.dev/lock` annotation, and run it; exits 0 only when the run succeeded."""
    obj = _read_run(source.read())
    _override_params(obj, params)
    engine = ctx.migrated_engine()
    resolvers = Resolvers(ctx.settings, engine)
    store = InstalledStore(default_root(ctx.settings.data_dir), namespace)
    base = ctx.settings.public_url or "http://127.0.0.1:8000/"
    resolve_ref = CatalogReferenceResolver(engine, resolvers.bundles, resolvers.hub, store, base)
    try:
        if pin_only:
            pinned, _lock = pin_references_only(obj, resolve_ref)
            click.echo(_render(pinned, output), nl=False)
            return
        pinned, lock = pin_run(obj, resolve_ref)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    if backend == "kubernetes":
        _run_on_kubernetes(pinned, namespace, kubeconfig, kube_context, output)

    def installed(ref: dict[str, Any], kind: str) -> dict[str, Any]:
        if ref.get("resolver") or kind not in ("Task", "Pipeline", "StepAction"):
            raise ResolutionError(f"{kind} {ref.get('name') or ref.get('resolver')} is not available locally")
        found = store.get(kind, str(ref.get("name") or ""))
        if found is None:
            raise ResolutionError(f'{kind.lower()} "{ref.get("name")}" not found in the {store.description}')
        return found

    def log_line(taskrun: str, container: str, line: str) -> None:
        step = container.removeprefix("step-")
        click.echo(f"[{taskrun}/{step}] {line.rstrip()}", err=True)

    executor = LocalExecutor(
        ctx.settings.data_dir / "local-runs",
        step_action_resolver(lock, installed),
        log_sink=log_line,
        namespace=namespace,
    )
    cancel = threading.Event()
    try:
        result = executor.run(pinned, cancel)
    except KeyboardInterrupt:
        cancel.set()
        raise
    except InvalidRunObject as exc:
        raise click.ClickException(str(exc)) from None
    condition = result.condition
    click.echo(
        f"{pinned['kind'].lower()}/{result.object['metadata']['name']}: {condition.get('reason', 'Unknown')}"
        + (f": {condition['message']}" if condition.get("message") else ""),
        err=True,
    )
    click.echo(_render(result.object, output), nl=False)
    sys.exit(0 if result.succeeded else 1)


def _run_on_kubernetes(
    pinned: dict[str, Any], namespace: str, kubeconfig: str | None, kube_context: str | None, output: str
) -> None:
    """Create the pinned, self-contained run on the cluster with one call, follow it, exit as it ended."""
    from runner.kube_backend import LogLine, RunEvent, run_on_kubernetes

    def on_event(event: RunEvent) -> None:
        click.echo(f"{event.kind.lower()}/{event.name}: {event.reason or event.status}", err=True)

    def on_log(line: LogLine) -> None:
        click.echo(f"[{line.task_run}/{line.step}] {line.text}", err=True)

    cancel = threading.Event()
    try:
        result = run_on_kubernetes(
            pinned,
            namespace=namespace,
            kubeconfig=kubeconfig,
            context=kube_context,
            on_event=on_event,
            on_log=on_log,
            cancel=cancel,
        )
    except KeyboardInterrupt:
        cancel.set()
        raise
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(_render(result.object, output), nl=False)
    sys.exit(0 if result.succeeded else 1)


def _read_run(text: str) -> dict[str, Any]:
    try:
        obj = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.ClickException(f"not YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(obj, dict) or obj.get("kind") not in ("TaskRun", "PipelineRun"):
        raise click.ClickException("not a run: expected one TaskRun or PipelineRun document")
    if not str(obj.get("apiVersion", "")).startswith("tekton.dev/"):
        raise click.ClickException(f"{obj['kind']} has apiVersion {obj.get('apiVersion')!r}: expected tekton.dev")
    return obj


def _override_params(obj: dict[str, Any], overrides: tuple[str, ...]) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec, dict):
        raise click.ClickException(f"{obj['kind']} spec must be a mapping")
    current = spec.setdefault("params", [])
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
