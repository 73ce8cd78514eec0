"""`taskhub resolver serve`: answer a cluster's `resolver: taskhub` ResolutionRequests from this hub's index and
registries (runner.cluster_resolver.requests), until interrupted."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy import Engine

from catalog.errors import TaskhubError
from catalog.resolver import Resolved, params_mapping
from hub.cli import main
from hub.cli.context import Context, pass_context, start_probes
from hub.config import Settings
from hub.registries import Resolvers
from runner.cluster_resolver.answers import Answer
from runner.cluster_resolver.requests import RESOLVER_TYPE, TYPE_LABEL, ResolutionRequestWatcher
from runner.kube import api_client_from_kubeconfig


class IndexResolvers:
    """The ReferenceResolver of this hub: its bundles resolver and its hub resolver over its own index."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.resolvers = Resolvers(settings, engine)
        self.base_url = settings.hub_url

    def resolve(self, resolver: str, params: Any) -> Resolved:
        return self.resolvers.resolve(resolver, params_mapping(params), self.base_url)


@main.group()
def resolver() -> None:
    """taskhub as a cluster's Tekton resolver (`resolver: taskhub` in a PipelineRun)."""


@resolver.command("serve")
@click.option("-k", "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
@click.option("-c", "--context", help="kubeconfig context (default: the current one)")
@click.option("-n", "--namespace", help="answer requests of this namespace (default: the context's, else default)")
@click.option("-A", "--all-namespaces", is_flag=True, help="answer requests of every namespace")
@click.option("--metrics-address", metavar="HOST:PORT", help="serve /livez and /metrics there (e.g. 0.0.0.0:9000)")
@pass_context
def serve(ctx: Context, kubeconfig: str | None, context: str | None, namespace: str | None,
          all_namespaces: bool, metrics_address: str | None) -> None:  # fmt: skip
    """Answer the ResolutionRequests labelled resolution.tekton.dev/type=taskhub until interrupted: one line per
    answered request, a summary at exit. Params with `bundle` go to the bundles resolver (bundle, name, kind,
    cache), the others to the hub resolver (name, version, kind, catalog, type)."""
    if namespace and all_namespaces:
        raise click.UsageError("-n/--namespace and -A/--all-namespaces exclude each other")
    engine = ctx.migrated_engine()
    try:
        api, context_namespace = api_client_from_kubeconfig(kubeconfig, context)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    if metrics_address:
        start_probes(metrics_address, engine)
    scope = None if all_namespaces else namespace or context_namespace

    def answered(answer: Answer) -> None:
        click.echo(("resolved " if answer.succeeded else "") + answer.line())

    def retrying(message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    watcher = ResolutionRequestWatcher(
        api, IndexResolvers(ctx.settings, engine), scope, on_answer=answered, on_retry=retrying
    )
    started = time.monotonic()
    where = f"{scope} namespace" if scope else "all namespaces"

    def ready() -> None:
        click.echo(f"answering {TYPE_LABEL}={RESOLVER_TYPE} requests in {where} on {api.configuration.host}", err=True)

    try:
        with _stop_on_signals(watcher):
            watcher.run(ready)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        api.close()
    counts = watcher.counts
    click.echo(
        f"stopped after {time.monotonic() - started:.0f} s: {counts.resolved} resolved, {counts.failed} failed, "
        f"{counts.writes} status writes" + (f", {counts.skipped} answered elsewhere" if counts.skipped else ""),
        err=True,
    )


@contextmanager
def _stop_on_signals(watcher: ResolutionRequestWatcher) -> Iterator[None]:
    """SIGINT and SIGTERM stop the watcher cleanly (requests being answered are finished)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = lambda signum, frame: watcher.stop()  # noqa: E731
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
