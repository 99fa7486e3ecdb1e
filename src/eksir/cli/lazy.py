"""The top-level `eksir` group, which imports a command's module only when that command runs.

Why: typer builds every command up front, so each run imported every command module, and with them
kubernetes, boto3, the lab and pydantic's model building: about 0.7 s before `eksir --help` printed a line
or `eksir hunt` read a byte. Here the group knows its commands from `eksir.cli.commands.COMMANDS`; resolving
a name imports that one module, lets it `register` on a scratch typer app, and keeps the click commands it
made. `eksir --help` lists the table's one-line help through stand-in commands and imports no command
module at all. Usage errors ("No such command", "Did you mean") see every name without loading any.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from eksir.cli.commands import COMMANDS, CommandEntry

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter


def _no_options() -> None:
    """The scratch app's group callback: typer builds a group (not a lone command) only when one exists."""


def load_commands(module_name: str) -> dict[str, Command]:
    """Import one command module and return the click commands its `register(app)` adds, by name."""
    module = import_module(module_name)
    scratch = typer.Typer()
    scratch.callback()(_no_options)
    module.register(scratch)
    return dict(typer.main.get_group(scratch).commands)


class LazyCommands(MutableMapping[str, "Command"]):
    """Command name -> click command, importing the defining module on first access.

    The keys are the table's names whose module is installed (a module left out of a slim install is not
    listed, as before); reading a value imports its module once and caches every command it registers.
    """

    def __init__(self, entries: tuple[CommandEntry, ...]) -> None:
        self._entries = {entry.name: entry for entry in entries if find_spec(entry.module) is not None}
        self._loaded: dict[str, Command] = {}

    def entry(self, name: str) -> CommandEntry | None:
        return self._entries.get(name)

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            entry = self._entries.get(name)
            if entry is None:
                raise KeyError(name)
            self._loaded.update(load_commands(entry.module))
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        self._entries.pop(name, None)
        self._loaded.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter([*self._entries, *(name for name in self._loaded if name not in self._entries)])

    def __len__(self) -> int:
        return len(set(self._entries) | set(self._loaded))


class LazyGroup(TyperGroup):
    """A TyperGroup whose commands come from `LazyCommands`; help lists them without importing them."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.lazy = LazyCommands(COMMANDS)
        self.commands = self.lazy
        self._listing = False

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """The real command; while help is being written, a stand-in carrying the table's help line."""
        if self._listing:
            entry = self.lazy.entry(cmd_name)
            return TyperCommand(cmd_name, help=entry.help) if entry else None
        return self.lazy.get(cmd_name)

    def list_commands(self, ctx: Context) -> list[str]:
        """Every name, in the table's order, without importing a module (typer's reads every value)."""
        return list(self.lazy)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
