"""`taskhub apply|get|delete` and `taskhub secret create`: the hub's objects (Triggers resources, Tasks,
Pipelines, StepActions, ConfigMaps, Secrets, PersistentVolumeClaims), as kubectl handles a cluster's."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml

from catalog.errors import TaskhubError
from hub.cli import main
from hub.cli.context import Context, fail, pass_context
from hub.objects import ObjectService, object_store
from runner.objects import kind_named
from runner.objects.documents import documents_of

SUFFIXES = (".yaml", ".yml", ".json")


def _service(ctx: Context) -> ObjectService:
    return ObjectService(object_store(ctx.settings, ctx.migrated_engine()))


def _texts(filename: str, recursive: bool) -> list[tuple[str, str]]:
    """(where, text) of `-f`: a file, `-` for standard input, or a directory's YAML and JSON files."""
    if filename == "-":
        return [("standard input", sys.stdin.read())]
    path = Path(filename)
    if path.is_dir():
        files = sorted(p for p in (path.rglob("*") if recursive else path.iterdir()) if p.suffix in SUFFIXES)
        if not files:
            raise click.ClickException(f"{path} holds no .yaml, .yml or .json file")
    else:
        files = [path]
    out = []
    for file in files:
        try:
            out.append((str(file), file.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    return out


@main.command()
@click.option("-f", "--filename", required=True, help="A YAML or JSON file (several documents), a directory, or -.")
@click.option("-R", "--recursive", is_flag=True, help="With a directory, its subdirectories' files too.")
@click.option("-n", "--namespace", help="The namespace of objects that name none (default: default).")
@pass_context
def apply(ctx: Context, filename: str, recursive: bool, namespace: str | None) -> None:
    """Create or update the objects of a file, admitted as a cluster admits them. Objects: Triggers resources,
    Tasks, Pipelines, StepActions, ConfigMaps, Secrets, PersistentVolumeClaims; nothing is applied if one is
    refused."""
    objects = []
    for where, text in _texts(filename, recursive):
        try:
            objects.extend(documents_of(text))
        except TaskhubError as exc:
            raise click.ClickException(f"{where}: {exc}") from None
    try:
        applied = _service(ctx).apply(objects, namespace=namespace, created_by="cli")
    except TaskhubError as exc:
        raise fail(exc) from None
    for item in applied:
        click.echo(item.describe())


@main.command()
@click.argument("kind")
@click.argument("name", required=False)
@click.option("-n", "--namespace", help="The namespace (default: default).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Objects of every namespace.")
@click.option("-o", "--output", type=click.Choice(["table", "yaml", "json", "name"]), default="table")
@pass_context
def get(ctx: Context, kind: str, name: str | None, namespace: str | None, all_namespaces: bool, output: str) -> None:
    """List the objects of KIND (or show the one named NAME); a Secret's values are never shown."""
    try:
        info = kind_named(kind)
        store = object_store(ctx.settings, ctx.migrated_engine())
        if name:
            items = [store.require(info.kind, namespace, name)]
        else:
            items = store.list(info.kind, None if all_namespaces else (namespace or "default"))
    except TaskhubError as exc:
        raise fail(exc) from None
    if output == "yaml":
        documents = items if name else [{"apiVersion": "v1", "kind": "List", "items": items}]
        click.echo(yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True), nl=False)
    elif output == "json":
        click.echo(json.dumps(items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
    elif output == "name":
        group = f".{info.group}" if info.group else ""
        for item in items:
            click.echo(f"{info.kind.lower()}{group}/{item['metadata']['name']}")
    elif not items:
        where = (
            "" if not info.namespaced else " in any namespace" if all_namespaces else f" in {namespace or 'default'}"
        )
        click.echo(f"No {info.plural} found{where}.", err=True)
    else:
        show_ns = all_namespaces and info.namespaced
        rows = [(["NAMESPACE"] if show_ns else []) + ["NAME", "AGE"]]
        rows += [
            ([item["metadata"].get("namespace", "")] if show_ns else [])
            + [item["metadata"]["name"], _age(item["metadata"].get("creationTimestamp"))]
            for item in items
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            click.echo("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@main.command()
@click.argument("kind")
@click.argument("name")
@click.option("-n", "--namespace", help="The namespace (default: default).")
@pass_context
def delete(ctx: Context, kind: str, name: str, namespace: str | None) -> None:
    """Delete the object NAME of KIND."""
    try:
        info = kind_named(kind)
        object_store(ctx.settings, ctx.migrated_engine()).delete(info.kind, namespace, name)
    except TaskhubError as exc:
        raise fail(exc) from None
    group = f".{info.group}" if info.group else ""
    click.echo(f'{info.kind.lower()}{group} "{name}" deleted')


@main.group()
def secret() -> None:
    """Secrets that interceptors and runs read; their values are sealed and never shown again."""


@secret.command("create")
@click.argument("name")
@click.option("--from-literal", "literals", multiple=True, required=True, help="KEY=VALUE; repeat for more keys.")
@click.option("-n", "--namespace", help="The namespace (default: default).")
@pass_context
def secret_create(ctx: Context, name: str, literals: tuple[str, ...], namespace: str | None) -> None:
    """Create the Secret NAME from literal values, as `kubectl create secret generic NAME --from-literal`."""
    values: dict[str, str] = {}
    for literal in literals:
        key, sep, value = literal.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--from-literal {literal.split('=')[0]!r}...: expected KEY=VALUE")
        values[key] = value
    try:
        _service(ctx).create_secret(name, values, namespace=namespace, created_by="cli")
    except TaskhubError as exc:
        raise fail(exc) from None
    click.echo(f"secret/{name} created")


def _age(stamp: Any) -> str:
    try:
        created = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"
