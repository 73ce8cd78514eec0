"""Command line for Tekton bundles and registries: bundle push/list, registry add/sync, catalog publish."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from catalog.bundles import (
    DOCKER_MANIFEST,
    build_bundle,
    bundle_entries,
    read_layer,
    read_object,
)
from catalog.errors import TaskhubError
from catalog.manifests import KINDS, MAX_FILE_BYTES
from catalog.models import CATALOG_TYPES, OCI, Catalog
from catalog.publish import bundle_target, publish_catalog
from catalog.references import parse_reference
from catalog.registry_sync import bundle_manifest
from catalog.sync import add_catalog, get_catalog
from hub.cli import Context, catalog, main, pass_context, sync_catalogs
from hub.registries import credential_store, registry_client


def _password(username: str | None, password_stdin: bool) -> tuple[str, str] | None:
    if password_stdin and not username:
        raise click.UsageError("--password-stdin needs --username")
    if not username:
        return None
    if not password_stdin:
        raise click.UsageError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\n")
    if not password:
        raise click.UsageError("no password on standard input")
    return username, password


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
        registry = registry_client(ctx.settings, target.registry, _password(username, password_stdin))
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
        registry = registry_client(ctx.settings, target.registry)
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
            documents.append(yaml.safe_dump(yaml.safe_load(read_object(read_layer(blob, MAX_FILE_BYTES), entry).text)))
        if documents:
            click.echo("---\n".join(documents), nl=False)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None


@catalog.command("publish")
@click.argument("name")
@click.option("--registry", "target", required=True, help="host[:port]/prefix to push the bundles under.")
@click.option("--username", help="Registry user (else the credentials stored by `registry add`).")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input.")
@pass_context
def catalog_publish(ctx: Context, name: str, target: str, username: str | None, password_stdin: bool) -> None:
    """Push every indexed version of NAME as a bundle PREFIX/<kind>/<name>:<version>, skipping what is there."""
    engine = ctx.migrated_engine()
    try:
        host, _ = bundle_target(target)
        registry = registry_client(ctx.settings, host, _password(username, password_stdin))
        with Session(engine) as session, session.begin():
            summary = publish_catalog(
                session, get_catalog(session, name), registry, target, lambda line: click.echo(line, err=True)
            )
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    for line in summary.lines():
        click.echo(line)
    if summary.failed or summary.stopped:
        raise click.ClickException("some versions were not published")


@main.group()
def registry() -> None:
    """Registries of Tekton bundles, indexed like catalogs."""


@registry.command("add")
@click.argument("name")
@click.argument("target")
@click.option("--username", help="Registry user.")
@click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input.")
@click.option(
    "--repository", "repositories", multiple=True, help="Repository under the prefix to read, for registries "
    "that do not list theirs (/v2/_catalog); repeat for more.",
)  # fmt: skip
@click.option("--type", "catalog_type", type=click.Choice(CATALOG_TYPES), default="community", show_default=True)
@pass_context
def registry_add(
    ctx: Context,
    name: str,
    target: str,
    username: str | None,
    password_stdin: bool,
    repositories: tuple[str, ...],
    catalog_type: str,
) -> None:
    """Register the bundles under TARGET (host[:port]/prefix) as catalog NAME; index it with `registry sync`."""
    try:
        host, prefix = bundle_target(target)
        credentials = _password(username, password_stdin)
        with Session(ctx.migrated_engine()) as session, session.begin():
            repos = [r if r.startswith(f"{prefix}/") else f"{prefix}/{r}" for r in repositories]
            add_catalog(session, name, target, type=catalog_type, repositories=repos)
        if credentials:
            credential_store(ctx.settings).set(host, *credentials)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added registry {name} ({host}/{prefix}); index it with:\n  taskhub registry sync {name}")


@registry.command("sync")
@click.argument("name", required=False)
@click.option("--full", is_flag=True, help="Re-check release tags too (e.g. after a version tag was re-pushed).")
@pass_context
def registry_sync(ctx: Context, name: str | None, full: bool) -> None:
    """Index the bundles of one registry, or of all; only bundles not seen before are downloaded.

    Tags that read as versions are releases: once indexed they are not asked for again unless --full is given.
    """
    with Session(ctx.migrated_engine()) as session:
        try:
            names = (
                [get_catalog(session, name).name]
                if name
                else list(session.scalars(select(Catalog.name).where(Catalog.provider == OCI)))
            )
        except TaskhubError as exc:
            raise click.ClickException(str(exc)) from None
    if not names:
        raise click.ClickException("no registries: add one with `taskhub registry add NAME HOST/PREFIX`")
    sync_catalogs(ctx, names, full=full)
