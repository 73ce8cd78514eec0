"""`taskhub resolve`: what POST /v1/resolve answers, from the command line, against this hub's index."""

from __future__ import annotations

import json

import click

from catalog.errors import TaskhubError
from hub.cli import main
from hub.cli.context import Context, pass_context
from hub.registries import Resolvers


@main.command("resolve")
@click.argument("resolver", type=click.Choice(["bundles", "hub", "taskhub"]))
@click.argument("params", nargs=-1, required=True, metavar="NAME=VALUE...")
@click.option("-o", "--output", type=click.Choice(["data", "json"]), default="data", show_default=True,
              help="data: the resource as stored; json: the whole answer, with refSource and annotations.")  # fmt: skip
@pass_context
def resolve(ctx: Context, resolver: str, params: tuple[str, ...], output: str) -> None:
    """Resolve a reference with Tekton's resolver params, e.g. `hub name=git-clone version='>=0.7, <1.0'` or
    `bundles bundle=registry.example.com/task/git-clone:0.10 name=git-clone kind=task`; `taskhub` is either, by its
    params, as `taskhub resolver serve` answers it."""
    values = {}
    for param in params:
        name, equals, value = param.partition("=")
        if not equals or not name:
            raise click.UsageError(f"expected NAME=VALUE, got {param!r}")
        values[name] = value
    engine = ctx.migrated_engine()
    resolvers = Resolvers(ctx.settings, engine)
    base = ctx.settings.hub_url
    try:
        resolved = resolvers.resolve(resolver, values, base)
    except TaskhubError as exc:
        raise click.ClickException(str(exc)) from None
    if output == "data":
        click.echo(resolved.data.decode(errors="replace"), nl=not resolved.data.endswith(b"\n"))
        click.echo(
            f"{resolved.kind} {resolved.name} {resolved.version or ''} from {resolved.uri}@sha256:{resolved.digest}",
            err=True,
        )
        return
    click.echo(json.dumps(resolved.to_json(), indent=2))
