"""`taskhub cancel`: cancel a PipelineRun or TaskRun on a cluster by patching its spec.status."""

from __future__ import annotations

import click

from catalog.errors import TaskhubError
from hub.cli import main
from runner.kube_backend import CANCEL_STATUS, cancel_run

KINDS = {"pipelinerun": "PipelineRun", "taskrun": "TaskRun"}


@main.command("cancel")
@click.argument("name")
@click.option("-n", "--namespace", help="namespace of the run (default: the context's, else default)")
@click.option("--kind", type=click.Choice(sorted(KINDS)), default="pipelinerun", show_default=True)
@click.option("-k", "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
@click.option("-c", "--context", help="kubeconfig context (default: the current one)")
def cancel(name: str, namespace: str | None, kind: str, kubeconfig: str | None, context: str | None) -> None:
    """Cancel the run NAME on the cluster (PipelineRun: spec.status Cancelled; TaskRun: TaskRunCancelled)."""
    tekton_kind = KINDS[kind]
    try:
        patched = cancel_run(name, kind=tekton_kind, namespace=namespace, kubeconfig=kubeconfig, context=context)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    where = (patched.get("metadata") or {}).get("namespace") or namespace
    click.echo(f"{tekton_kind} {name} in {where} namespace: spec.status set to {CANCEL_STATUS[tekton_kind]}")
