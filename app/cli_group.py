"""The `loyalsync` command group: where a store error from any command becomes one line, exit 2.

Commands name the store they use with `use_store(url)`; when one of them raises, the group asks
`store.errors.describe_store_error` what it means. `--debug` (or LOYALSYNC_DEBUG=1) keeps the
traceback instead.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import typer
from rich.console import Console
from typer.core import TyperGroup

__all__ = ["StoreErrorGroup", "close_at_exit", "set_debug", "use_store"]

# Context variables, not click's context: Typer vendors its own click, whose context is private.
_store_url: ContextVar[str | None] = ContextVar("loyalsync_store_url", default=None)
_debug: ContextVar[bool] = ContextVar("loyalsync_debug", default=False)
_engines: ContextVar[list | None] = ContextVar("loyalsync_engines", default=None)


def use_store(url: str) -> None:
    """Name the store the running command uses, for the message of a store error."""
    _store_url.set(url)


def close_at_exit(engine) -> None:
    """Dispose `engine` when the command ends: PostgreSQL connections closed, not left to the GC."""
    engines = _engines.get()
    if engines is not None:
        engines.append(engine)


def set_debug(debug: bool) -> None:
    """Whether a store error keeps its traceback (the global --debug)."""
    _debug.set(debug)


def _shown_as_a_flag(option: Any) -> Any:
    """`--help` takes no value: show none (typer would print `<bool>` beside it)."""
    if option is not None and option.metavar is None:
        option.metavar = ""
    return option


class StoreErrorGroup(TyperGroup):
    """A Typer group that maps store errors of every command to one line on stderr, exit 2."""

    def get_help_option(self, ctx):
        return _shown_as_a_flag(super().get_help_option(ctx))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None and not getattr(command, "_help_as_flag", False):
            own = command.get_help_option
            command.get_help_option = lambda c, _own=own: _shown_as_a_flag(_own(c))
            command._help_as_flag = True
        return command

    def invoke(self, ctx):
        from store.errors import describe_store_error

        tokens = _store_url.set(None), _debug.set(False), _engines.set([])  # this invocation's, not the last
        try:
            return super().invoke(ctx)
        except typer.Exit:
            raise
        except Exception as exc:
            url = _store_url.get()
            message = None if url is None or _debug.get() else describe_store_error(exc, url)
            if message is None:
                raise
            Console(stderr=True).print(message, markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(code=2) from None
        finally:
            for engine in _engines.get() or ():
                engine.dispose()
            _store_url.reset(tokens[0])
            _debug.reset(tokens[1])
            _engines.reset(tokens[2])
