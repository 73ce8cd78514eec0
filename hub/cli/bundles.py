"""`taskhub bundle push|list`: Tekton bundles in OCI registries, in the format `tkn bundle` writes."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml
from sqlalchemy import Engine, inspect

from catalog.bundle_manifests import bundle_entries
from catalog.bundles import DOCKER_MANIFEST, build_bundle, read_layer, read_object
from catalog.errors import TaskhubError
from catalog.manifests import KINDS, MAX_FILE_BYTES, load_documents
from catalog.references import parse_reference
from catalog.registry_sync import bundle_manifest
from hub.cli import main
from hub.cli.context import Context, pass_context, registry_login
from hub.registries import registry_client


def _logins(ctx: Context) -> Engine | None:
    """The database of the registry logins `registry add` stored; None before `taskhub db upgrade` made their table:
    bundles can be pushed and listed with no hub database."""
    return ctx.engine if inspect(ctx.engine).has_table("registry_credentials") else None


def _key_values(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, equals, rest = value.partition("=")
        if not equals or not key.strip():
            raise click.UsageError(f"invalid {what} {value!r}: expected key=value")
        out[key.strip()] = rest.strip()
    return out


@main.group()
def bundle() -> None:
    """Tekton bundles in OCI registries, in the format `tkn bundle` writes."""


@bundle.command("push")
@click.argument("ref")
@click.option("-f", "--filenames", "files", multiple=True, required=True, help="YAML or JSON file; - for stdin")
@click.option("--annotate", multiple=True, help="Manifest annotation key=value.")
@click.option("--label", multiple=True, help="Image config label key=value.")
@click.option("--username", help="Registry user (else the credentials stored by `registry add`).")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input.")
@pass_context
def bundle_push(
    ctx: Context,
    ref: str,
    files: tuple[str, ...],
    annotate: tuple[str, ...],
    label: tuple[str, ...],
    username: str | None,
    password_stdin: bool,
) -> None:
    """Build a Tekton bundle from the files and push it to REF (host[:port]/repo:tag)."""
    try:
        target = parse_reference(ref)
        if not target.tag:
            raise click.UsageError(f"{ref}: name a tag, e.g. {ref}:v1")
        texts = []
        for name in files:
            try:
                texts.append(sys.stdin.read() if name == "-" else Path(name).read_text())
            except (OSError, UnicodeDecodeError) as exc:
                raise click.ClickException(f"failed to find and read file {name}: {exc}") from None
        built = build_bundle(texts, annotations=_key_values(annotate, "annotation"), labels=_key_values(label, "label"))
        click.echo("Creating Tekton Bundle:", err=True)
        for layer in built.layers:
            click.echo(f"\t- Added {KINDS.get(layer.kind, layer.kind)}: {layer.name} to image", err=True)
        login = registry_login(username, password_stdin)
        registry = registry_client(ctx.settings, _logins(ctx), target.registry, login)
        for blob in built.blobs().values():
            registry.push_blob(target.name, blob)
        digest = registry.push_manifest(ref, built.manifest, DOCKER_MANIFEST)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Pushed Tekton Bundle to {target.name}@{digest}")


@bundle.command("list")
@click.argument("ref")
@click.option("--kind", help="Only objects of this kind (task, pipeline, stepaction).")
@click.option("--name", help="Only objects with this name.")
@click.option("-o", "--output", type=click.Choice(["name", "yaml"]), default="name", show_default=True)
@pass_context
def bundle_list(ctx: Context, ref: str, kind: str | None, name: str | None, output: str) -> None:
    """List the objects of the bundle at REF, in manifest order."""
    try:
        target = parse_reference(ref)
        registry = registry_client(ctx.settings, _logins(ctx), target.registry)
        _, parsed = bundle_manifest(registry, target.name, ref, registry.get_manifest(ref))
        wanted = kind.lower().removesuffix("s") if kind else None
        entries = [e for e in bundle_entries(parsed) if wanted in (None, e.kind.lower()) and name in (None, e.name)]
        if not entries:
            named = f" named {name!r}" if name else ""
            raise click.ClickException(f'no objects of kind "{wanted or "any"}"{named} found in img')
        documents = []
        for entry in entries:
            if output == "name":
                click.echo(f"{entry.kind.lower()}.tekton.dev/{entry.name}")
                continue
            blob = registry.get_blob(target.name, entry.digest, entry.size, MAX_FILE_BYTES)
            text = read_object(read_layer(blob, MAX_FILE_BYTES), entry).text
            documents.append(yaml.safe_dump(load_documents(text)[0]))
        if documents:
            click.echo("---\n".join(documents), nl=False)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
