"""The `taskhub` command line: the root group `main` (the console script), and one module per command group."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from hub.cli.catalogs import catalog
from hub.cli.database import db
from hub.cli.lazy import LazyCommand, LazyGroup
from hub.cli.serve import serve


class _Commands(LazyGroup):
    """The top-level group: a database that cannot be reached is a one-line error, not a traceback."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        if args is None:  # the taskhub process itself (arguments from sys.argv), not a caller running it in-process
            # What is imported by now lives as long as the process: spare the garbage collector walking it at every
            # collection and once more at exit (bench/cli.py: without it, `--help` takes 1.3x the CPU time).
            gc.freeze()
        return super().main(args, *rest, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            raise click.ClickException(f"the database is unavailable: {' '.join(str(exc.orig).split())}") from None


@click.group(
    cls=_Commands,
    lazy={
        "apply": LazyCommand(
            "hub.cli.objects", "Create or update the objects of a file, admitted as a cluster admits them."
        ),
        "bundle": LazyCommand(
            "hub.cli.bundles", "Tekton bundles in OCI registries, in the format `tkn bundle` writes."
        ),
        "cancel": LazyCommand(
            "hub.cli.cancel",
            "Cancel the run NAME on the cluster (PipelineRun: spec.status Cancelled; TaskRun: TaskRunCancelled).",
        ),
        "delete": LazyCommand("hub.cli.objects", "Delete the object NAME of KIND."),
        "events": LazyCommand(
            "hub.cli.events",
            "Events received by EventListener sinks and catalog webhooks, and what each trigger did with them.",
        ),
        "get": LazyCommand(
            "hub.cli.objects",
            "List the objects of KIND (or show the one named NAME); a Secret's values are never shown.",
        ),
        "hub": LazyCommand(
            "hub.cli.remote_hub",
            "Search catalogs and install their resources, like `tkn hub`, against a Tekton Hub or Artifact Hub API.",
        ),
        "jobs": LazyCommand(
            "hub.cli.jobs",
            "Background jobs (syncs, publishes, runs, Triggers events): state, progress, result and error.",
        ),
        "registry": LazyCommand("hub.cli.registries", "Registries of Tekton bundles, indexed like catalogs."),
        "resolve": LazyCommand("hub.cli.resolve", "Resolve a reference with Tekton's resolver params, e.g."),
        "resolver": LazyCommand(
            "hub.cli.cluster_resolver", "taskhub as a cluster's Tekton resolver (`resolver: taskhub` in a PipelineRun)."
        ),
        "run": LazyCommand(
            "hub.cli.run",
            "Run every TaskRun and PipelineRun of a file, as `kubectl create -f` would create them, after its other "
            "documents (Tasks, Pipelines, StepActions, ConfigMaps, Secrets, PersistentVolumeClaims) are applied to "
            "the local store as `taskhub apply -f` applies them.",
        ),
        "runs": LazyCommand(
            "hub.cli.runs", "Recorded runs (`taskhub run`, POST /v1/runs): status, timings, lock and step logs."
        ),
        "secret": LazyCommand(
            "hub.cli.objects", "Secrets that interceptors and runs read; their values are sealed and never shown again."
        ),
        "triggers": LazyCommand(
            "hub.cli.triggers",
            "Tekton Triggers read from a cluster, with taskhub's sinks in front of its EventListeners.",
        ),
        "worker": LazyCommand(
            "hub.cli.worker",
            "Do queued jobs (syncs, publishes, runs, Triggers events) and queue the syncs that are due.",
        ),
        "token": LazyCommand(
            "hub.cli.tokens", "API tokens for writes and admin operations (and for reading a private hub)."
        ),
    },
)
@click.version_option(package_name="taskhub", message="%(prog)s %(version)s")
def main() -> None:
    """taskhub: a self-hosted hub for Tekton Tasks, Pipelines and StepActions."""


main.add_command(db)
main.add_command(catalog)
main.add_command(serve)
