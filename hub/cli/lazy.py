"""Command groups whose commands live in modules imported only when one of their commands is used."""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import click


class LazyCommand(NamedTuple):
    module: str  # imported when the command is used; it registers the command on its group
    summary: str  # the first sentence of the command's help, which `--help` lists without importing the module


class LazyGroup(click.Group):
    """A group whose commands in `lazy` (command name → LazyCommand) live in modules imported only when the command
    is used: such a module registers its commands on the group as it is imported, so `taskhub catalog sync` does not
    pay for the Kubernetes client, Flask and the local executor that other commands import, and `taskhub --help`
    pays for none of them (bench/cli.py: importing them all up front takes `--help` to 2.6x the CPU time)."""

    def __init__(self, *args: Any, lazy: dict[str, LazyCommand] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            importlib.import_module(self.lazy[cmd_name].module)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # A command whose module is not imported yet is listed by its summary: the help imports no module.
        stand_ins = {name: click.Command(name, help=lazy.summary) for name, lazy in self.lazy.items()}
        click.Group(commands={**stand_ins, **self.commands}).format_commands(ctx, formatter)
