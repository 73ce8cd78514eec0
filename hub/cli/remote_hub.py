"""`taskhub hub ...`: `tkn hub` for any Tekton-Hub-compatible or Artifact Hub API (this hub by default).

search, info and get read the hub; install, reinstall, upgrade, downgrade and check-upgrade also write to a
cluster (kubeconfig, context and namespace as kubectl picks them) or, with --local, to the local store the
embedded runner reads. Errors are one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from catalog.errors import InvalidVersion, TaskhubError
from catalog.versions import Version
from hub.cli import main
from hub.cli.context import Context, pass_context
from runner.local_store import InstalledStore
from runner.remote_hub.client import (
    API_TYPES,
    ARTIFACT,
    KINDS,
    TEKTON,
    RemoteHub,
    SearchFilter,
    SearchHit,
    make_remote_hub,
)
from runner.remote_hub.install import DEFAULT_TEKTON_CATALOG, Installer, Outcome, Target, UpgradeReport

DEFAULT_API_SERVER = "http://127.0.0.1:8000"
# As tkn hub reads them, one per hub type.
API_SERVER_ENV = {TEKTON: "TEKTON_HUB_API_SERVER", ARTIFACT: "ARTIFACT_HUB_API_SERVER"}
KIND = click.Choice(list(KINDS), case_sensitive=False)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None


def _validated_version(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        Version.parse(value)
    except InvalidVersion as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`tkn hub --type artifact install ...`: the group's flags are the defaults of the subcommand's."""
    key = f"taskhub.hub.{param.name}"
    if value is None:
        return ctx.meta.get(key, TEKTON if param.name == "hub_type" else None)
    ctx.meta[key] = value
    return value


def _hub_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--type",
        "hub_type",
        type=click.Choice(API_TYPES),
        callback=_remember,
        help=f"The API the server speaks: Tekton Hub v1 or Artifact Hub [default: {TEKTON}].",
    )(f)
    f = click.option(
        "--token",
        envvar="TASKHUB_API_TOKEN",
        callback=_remember,
        help="API token for a private hub (default: $TASKHUB_API_TOKEN).",
    )(f)
    return click.option(
        "--api-server",
        callback=_remember,
        help=f"Hub API address (default: ${API_SERVER_ENV[TEKTON]} or ${API_SERVER_ENV[ARTIFACT]} by --type, "
        f"else TASKHUB_PUBLIC_URL, else {DEFAULT_API_SERVER}).",
    )(f)


def _kube_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("-k", "--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config)."),
            click.option("-c", "--context", "kube_context", help="Kubeconfig context (default: the current one)."),
            click.option("-n", "--namespace", help="Namespace (default: the context's, else default)."),
            click.option("--local", is_flag=True, help="Use the local store the embedded runner reads, not a cluster."),
        ]
    ):
        f = option(f)
    return f


def _output_option(*choices: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("-o", "--output", type=click.Choice(choices), default=choices[0], show_default=True)


def _client(ctx: Context, hub_type: str, api_server: str | None) -> RemoteHub:
    server = api_server or os.environ.get(API_SERVER_ENV[hub_type]) or ctx.settings.public_url or DEFAULT_API_SERVER
    return make_remote_hub(hub_type, server, token=click.get_current_context().meta.get("taskhub.hub.token"))


def _catalog(hub_type: str, catalog: str | None) -> str:
    if catalog:
        return catalog
    if hub_type == ARTIFACT:
        raise click.UsageError("missing catalog name for artifact type, please specify catalog name by --from flag")
    return DEFAULT_TEKTON_CATALOG


def _target(
    ctx: Context, kubeconfig: str | None, kube_context: str | None, namespace: str | None, local: bool
) -> Target:
    if local:
        if kubeconfig or kube_context:
            raise click.UsageError("--local does not use a cluster: drop -k/--kubeconfig and -c/--context")
        return InstalledStore(ctx.migrated_engine(), namespace or "default")
    from runner.kube import Cluster  # the Kubernetes client: search, info, get and --local do without it

    return Cluster.from_kubeconfig(kubeconfig, kube_context, namespace)


def _installer(ctx: Context, opts: dict[str, Any], force: bool = False) -> Installer:
    target = _target(ctx, opts["kubeconfig"], opts["kube_context"], opts["namespace"], opts["local"])
    return Installer(_client(ctx, opts["hub_type"], opts["api_server"]), target, force=force)


def _report(outcome: Outcome, output: str) -> None:
    for warning in outcome.warnings:
        click.echo(f"WARN: {warning}", err=True)
    if output == "json":
        click.echo(json.dumps(outcome.obj, indent=2, sort_keys=True))
    else:
        click.echo(outcome.message)


def _install_command(name: str, help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options every cluster-writing command shares, and the one-line error handling."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def run(ctx: Context, **opts: Any) -> None:
            with _one_line_errors():
                f(ctx, opts)

        command = _output_option("table", "json")(_kube_options(_hub_options(run)))
        return hub_group.command(name, help=help_text)(pass_context(command))

    return decorate


@main.group("hub")
@_hub_options
def hub_group(hub_type: str, api_server: str | None, token: str | None) -> None:
    """Search catalogs and install their resources, like `tkn hub`, against a Tekton Hub or Artifact Hub API."""


@hub_group.command("search")
@click.argument("name", required=False, default="")
@click.option("--kinds", multiple=True, help="Comma-separated kinds (task, pipeline, stepaction).")
@click.option("--tags", multiple=True, help="Comma-separated tags.")
@click.option("--categories", multiple=True, help="Comma-separated categories.")
@click.option("--platforms", multiple=True, help="Comma-separated platforms.")
@click.option("-l", "--limit", type=click.IntRange(min=0), default=0, help="At most this many (0: the hub's limit).")
@click.option("--match", type=click.Choice(["contains", "exact"]), default="contains", show_default=True)
@_output_option("table", "wide", "json")
@_hub_options
@pass_context
def hub_search(ctx: Context, name: str, limit: int, match: str, output: str, **opts: Any) -> None:
    """Search resources by name, kind, tag, category or platform."""
    lists = {key: [v.strip() for raw in opts[key] for v in raw.split(",") if v.strip()]
             for key in ("kinds", "tags", "categories", "platforms")}  # fmt: skip
    if not name.strip() and not any(lists.values()):
        raise click.UsageError(
            "please specify a resource name, --tags, --platforms, --categories or --kinds flag to search"
        )
    for kind in lists["kinds"]:
        if kind.lower() not in KINDS:
            raise click.UsageError(
                f"invalid value {kind!r} set for option kinds. supported kinds: [{', '.join(KINDS)}]"
            )
    query = SearchFilter(text=name.strip(), limit=limit, match=match, **lists)
    with _one_line_errors():
        hits, raw = _client(ctx, opts["hub_type"], opts["api_server"]).search(query)
    if output == "json":
        click.echo(json.dumps(raw, indent=2))
    elif not hits:
        click.echo("No Resources found")
    else:
        _print_table(_search_rows(hits, wide=output == "wide"))


def _search_rows(hits: list[SearchHit], *, wide: bool) -> list[list[str]]:
    def listed(values: list[str]) -> str:
        return ", ".join(values) or "---"

    header = ["NAME", "KIND", "CATALOG", "DESCRIPTION"] + (["PLATFORMS", "TAGS", "CATEGORIES"] if wide else [])
    rows = [header]
    for hit in hits:
        description = " ".join(hit.description.split())
        description = description[:40] + "..." if len(description) > 40 else description
        row = [f"{hit.name} ({hit.version})", hit.kind, hit.catalog.title(), description or "---"]
        if wide:
            row += [listed(hit.platforms), listed(hit.tags), listed(hit.categories)]
        rows.append(row)
    return rows


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@hub_group.command("info")
@click.argument("kind", type=KIND)
@click.argument("name")
@click.option("--from", "catalog", help="Catalog (Artifact Hub: repository) the resource is in [tekton].")
@click.option("--version", callback=_validated_version, help="Version (default: the latest).")
@_output_option("table", "json")
@_hub_options
@pass_context
def hub_info(ctx: Context, kind: str, name: str, catalog: str | None, version: str | None, output: str,
             **opts: Any) -> None:  # fmt: skip
    """Show a resource version: description, minimum Pipelines version, tags, platforms, install command."""
    with _one_line_errors():
        info = _client(ctx, opts["hub_type"], opts["api_server"]).resource(
            _catalog(opts["hub_type"], catalog), kind, name, version
        )
    if output == "json":
        click.echo(json.dumps(info.__dict__, indent=2))
        return
    latest = " (latest)" if info.version == info.latest else ""
    lines = [f"Name: {info.name}"]
    if info.display_name:
        lines.append(f"Display Name: {info.display_name}")
    lines += [
        f"Version: {info.version}{latest}{' (deprecated)' if info.deprecated else ''}",
        f"Description: {info.description}",
        f"Minimum Pipeline Version: {info.min_pipelines_version or 'unknown'}",
    ]
    for title, values in (("Categories", info.categories), ("Tags", info.tags), ("Platforms", info.platforms)):
        if values:
            lines.append(f"{title}:\n" + "\n".join(f"  - {v}" for v in values))
    type_flag = " --type artifact" if opts["hub_type"] == ARTIFACT else ""
    lines.append(f"Install Command:\n  taskhub hub install {kind.lower()} {info.name} --version {info.version}"
                 f" --from {info.catalog}{type_flag}")  # fmt: skip
    click.echo("\n".join(lines))


@hub_group.command("get")
@click.argument("kind", type=KIND)
@click.argument("name")
@click.option("--from", "catalog", help="Catalog (Artifact Hub: repository) the resource is in [tekton].")
@click.option("--version", callback=_validated_version, help="Version (default: the latest).")
@_hub_options
@pass_context
def hub_get(ctx: Context, kind: str, name: str, catalog: str | None, version: str | None, **opts: Any) -> None:
    """Print a resource version's YAML as the catalog holds it."""
    with _one_line_errors():
        client = _client(ctx, opts["hub_type"], opts["api_server"])
        catalog = _catalog(opts["hub_type"], catalog)
        info = client.resource(catalog, kind, name, version)
        click.echo(client.manifest(catalog, kind, name, info.version), nl=False)


@_install_command("install", "Install a resource from a catalog by its kind, name and version (default: latest).")
@click.argument("kind", type=KIND)
@click.argument("name")
@click.option("--from", "catalog", help="Catalog (Artifact Hub: repository; required there) [tekton].")
@click.option("--version", callback=_validated_version, help="Version (default: the latest).")
@click.option("--if-not-exists", is_flag=True, help="Do nothing (and succeed) if the resource is already there.")
@click.option("--force", is_flag=True, help="Install even if the cluster's Tekton Pipelines is older than required.")
def hub_install(ctx: Context, opts: dict[str, Any]) -> None:
    outcome = _installer(ctx, opts, opts["force"]).install(
        KINDS[opts["kind"].lower()],
        opts["name"],
        _catalog(opts["hub_type"], opts["catalog"]),
        opts["version"],
        if_not_exists=opts["if_not_exists"],
    )
    _report(outcome, opts["output"])


@_install_command("reinstall", "Overwrite an installed resource with a catalog version (its own by default).")
@click.argument("kind", type=KIND)
@click.argument("name")
@click.option("--from", "catalog", help="Catalog (default: the resource's catalog label).")
@click.option("--version", callback=_validated_version, help="Version (default: the installed one).")
@click.option("--force", is_flag=True, help="Install even if the cluster's Tekton Pipelines is older than required.")
def hub_reinstall(ctx: Context, opts: dict[str, Any]) -> None:
    outcome = _installer(ctx, opts, opts["force"]).reinstall(
        KINDS[opts["kind"].lower()], opts["name"], opts["catalog"], opts["version"]
    )
    _report(outcome, opts["output"])


def _move_command(name: str, direction: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(
            [
                click.argument("kind", type=KIND),
                click.argument("name"),
                click.option(
                    "--to",
                    "--version",
                    "to",
                    callback=_validated_version,
                    help=f"Version to {name} to (default: the {direction} one).",
                ),
                click.option("--from", "catalog", help="Catalog (default: the resource's catalog label)."),
                click.option("--force", is_flag=True, help="Install even if Tekton Pipelines is older than required."),
            ]
        ):
            f = option(f)
        return _install_command(name, f"{name.title()} an installed resource ({direction} version by default).")(f)

    return decorate


@_move_command("upgrade", "latest")
def hub_upgrade(ctx: Context, opts: dict[str, Any]) -> None:
    outcome = _installer(ctx, opts, opts["force"]).upgrade(
        KINDS[opts["kind"].lower()], opts["name"], opts["to"], opts["catalog"]
    )
    _report(outcome, opts["output"])


@_move_command("downgrade", "previous")
def hub_downgrade(ctx: Context, opts: dict[str, Any]) -> None:
    outcome = _installer(ctx, opts, opts["force"]).downgrade(
        KINDS[opts["kind"].lower()], opts["name"], opts["to"], opts["catalog"]
    )
    _report(outcome, opts["output"])


@_install_command("check-upgrade", "List installed resources from a hub that have a newer version.")
@click.argument("kind", type=KIND)
def hub_check_upgrade(ctx: Context, opts: dict[str, Any]) -> None:
    report = _installer(ctx, opts).check_upgrade(KINDS[opts["kind"].lower()])
    if opts["output"] == "json":
        click.echo(json.dumps(_report_json(report), indent=2))
        return
    click.echo("Upgrades Available\n")
    if report.upgrades:
        latest = "LATEST_COMPATIBLE_VERSION" if report.pipelines_version else "LATEST_VERSION"
        rows = [["NAME", "CATALOG", "CURRENT_VERSION", latest]]
        rows += [[u.name, u.catalog.title(), u.current, u.latest] for u in report.upgrades]
        _print_table(rows)
    else:
        click.echo(f"No {report.kind} for upgrade")
    if report.skipped:
        click.echo("\nSkipped Resources\n")
        _print_table([["NAME", "REASON"], *([name, reason] for name, reason in report.skipped)])
    if report.pipelines_version is None and opts["local"] is False:
        click.echo("\nWARN: Pipelines version unknown. Check your pipelines version before upgrading.")


def _report_json(report: UpgradeReport) -> dict[str, Any]:
    return {
        "kind": report.kind,
        "pipelinesVersion": report.pipelines_version,
        "upgrades": [
            {"name": u.name, "catalog": u.catalog, "currentVersion": u.current, "latestVersion": u.latest}
            for u in report.upgrades
        ],
        "skipped": [{"name": name, "reason": reason} for name, reason in report.skipped],
    }
