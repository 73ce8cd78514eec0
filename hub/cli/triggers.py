"""`taskhub triggers serve`: Tekton Triggers as a cluster holds them (EventListeners, Triggers, TriggerBindings,
TriggerTemplates, interceptors and their Secrets, read through the Kubernetes API), with taskhub's sinks in front:
teams with Triggers YAML point their webhooks here, and what the templates render is created in the cluster."""

from __future__ import annotations

import threading
from typing import Any

import click

from catalog.errors import TaskhubError
from hub.cli import main
from hub.cli.context import Context, pass_context
from jobs import CLUSTER_TRIGGER_EVENT, JobContext, Worker
from runner.kube import api_client_from_kubeconfig


@main.group()
def triggers() -> None:
    """Tekton Triggers read from a cluster, with taskhub's sinks in front of its EventListeners."""


@triggers.command("serve")
@click.option("-k", "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
@click.option("-c", "--context", help="kubeconfig context (default: the current one)")
@click.option("-n", "--namespace", help="serve the EventListeners of this namespace (default: the context's)")
@click.option("-A", "--all-namespaces", is_flag=True, help="serve the EventListeners of every namespace")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int, help="the sinks' port (0: any free one)")
@pass_context
def serve(ctx: Context, kubeconfig: str | None, context: str | None, namespace: str | None, all_namespaces: bool,
          host: str, port: int) -> None:  # fmt: skip
    """Serve the sinks of the cluster's EventListeners at http://HOST:PORT/v1/listeners/NAMESPACE/NAME until
    interrupted, answering as upstream's sinks do. Each event is recorded (`taskhub events list`) and processed
    here: interceptors read their Secrets from the cluster, and what the templates render (PipelineRuns, TaskRuns,
    ConfigMaps, ...) is created in the cluster with the kubeconfig's credentials; one line per processed event."""
    from werkzeug.serving import make_server

    from hub.api.listeners import sink_app
    from hub.triggers_service import TriggersService
    from triggers.cluster import ClusterCreator, ClusterTriggers

    if namespace and all_namespaces:
        raise click.UsageError("-n/--namespace and -A/--all-namespaces exclude each other")
    settings, services = ctx.settings, ctx.services
    try:
        api, context_namespace = api_client_from_kubeconfig(kubeconfig, context)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    scope = None if all_namespaces else namespace or context_namespace
    service = TriggersService(settings, ctx.migrated_engine(), services.objects, services.queue, services.runs,
                              resources=ClusterTriggers(api, scope), job_kind=CLUSTER_TRIGGER_EVENT)  # fmt: skip
    processor = service.processor_with(ClusterCreator(api))

    def handle(context: JobContext) -> dict[str, Any]:
        result = processor.handle(context)
        shown = service.events.get(context.target)
        to = f"{shown.namespace}/{shown.name}" if shown else "?"
        made = ", ".join(f"{c['kind']} {c['namespace']}/{c['name']}" for o in (shown.outcomes if shown else [])
                         for c in o.get("created") or [])  # fmt: skip
        click.echo(f"event {context.target} to {to}: {result.get('failed') or 'created ' + (made or 'nothing')}")
        return result

    worker = Worker(services.queue, {CLUSTER_TRIGGER_EVENT.name: handle}, concurrency=settings.worker_concurrency,
                    poll_interval=settings.job_poll_seconds, grace=settings.shutdown_grace_seconds)  # fmt: skip
    try:
        server = make_server(host, port, sink_app(settings, service), threaded=True)
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name="sinks", daemon=True).start()
    where = f"{scope} namespace" if scope else "all namespaces"
    click.echo(f"serving the EventListeners of {where} on {api.configuration.host} at "
               f"http://{host}:{server.server_port}/v1/listeners/NAMESPACE/NAME", err=True)  # fmt: skip
    worker.install_signal_handlers()
    try:
        worker.run()
    finally:
        server.shutdown()
        api.close()
