"""What every command shares: the console, the one-line errors, and command-line options from options classes.

An options class (:func:`cxrdata.recipe.option` fields) becomes click options here: a field's type gives
the click type (a path, a number range, a choice, a flag, a comma-separated list), its metadata the help
text and spelling. The command then gets back, per field, only the values the user gave explicitly
(:func:`given`), so a recipe's value is replaced by an explicit option and never by a default.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field
from functools import wraps
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import click
from click.core import ParameterSource

from cxrdata.errors import CxrdataError
from cxrdata.pipeline import interrupts
from cxrdata.recipe import option_fields, option_name

# Input and output folders are resolved (absolute, links followed) at parse time, so a configuration hash
# does not depend on how a path was spelled and stored image paths load from any working directory.
INPUT_PATH = click.Path(path_type=Path, resolve_path=True)


class _SharedConsole:
    """The commands' rich ``Console``, made on first use (importing rich takes longer than ``--help`` should)."""

    _console: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            # Tables are wide: when output is captured (not a terminal), do not squeeze them to 80 columns.
            type(self)._console = Console() if sys.stdout.isatty() else Console(width=160)
        return getattr(self._console, name)


console: Any = _SharedConsole()


def error_line(message: str, status: int) -> None:
    """Print one red ``error:`` line and exit with ``status``."""
    click.secho("error: ", fg="red", bold=True, err=True, nl=False)
    click.echo(message, err=True)
    sys.exit(status)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A CxrdataError becomes one red line and exit status 2; Ctrl-C or SIGTERM one line and 130 / 143."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CxrdataError as exc:
            error_line(str(exc), 2)
        except KeyboardInterrupt:
            click.echo("stopped; rerun the same command to resume", err=True)
            sys.exit(128 + interrupts.stopped_by())

    return wrapper


class LazyGroup(click.Group):
    """A group whose subcommands ``load`` adds when they are first listed or looked up: their options come from
    modules that import polars, OpenCV or pydicom, which ``cxrdata --help`` then never imports."""

    def __init__(self, name: str, load: Callable[[click.Group], None], **attrs: Any) -> None:
        super().__init__(name, **attrs)
        self._load: Callable[[click.Group], None] | None = load

    def _loaded(self) -> None:
        if self._load is not None:
            load, self._load = self._load, None
            load(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._loaded()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._loaded()
        return super().get_command(ctx, cmd_name)


def apply(decorators: Iterable[Callable[[Any], Any]], fn: Any) -> Any:
    """``fn`` with ``decorators`` applied so that they show in the given order."""
    for decorator in reversed(list(decorators)):
        fn = decorator(fn)
    return fn


def _click_type(kind: Any, f: Field) -> tuple[Any, bool]:
    """(click type, is a list) of a field's annotation."""
    origin, args = get_origin(kind), get_args(kind)
    if origin in (types.UnionType, typing.Union):
        kind = next(a for a in args if a is not type(None))
        origin, args = get_origin(kind), get_args(kind)
    if origin is Literal or f.metadata.get("choices"):
        return click.Choice(f.metadata.get("choices") or args), False
    if origin is tuple:
        return click.STRING, True
    if kind is Path:
        return INPUT_PATH, False
    bounds = f.metadata.get("bounds")
    if kind is int:
        return (click.IntRange(*bounds) if bounds else click.INT), False
    if kind is float:
        return (click.FloatRange(*bounds[:2], max_open=bounds[2] if len(bounds) > 2 else False)
                if bounds else click.FLOAT), False
    return click.STRING, False


def click_options(cls: type, *, default: str = "field", required: Iterable[str] = (),
                  only: Callable[[Field], bool] = lambda f: True) -> list[Callable[[Any], Any]]:
    """Click options for the command-line fields of an options class.

    ``default``: ``field`` shows each field's default; ``none`` leaves every option without one (a
    recipe supplies it), except ``runtime`` fields, whose defaults cannot come from a recipe."""
    hints = typing.get_type_hints(cls)
    options = []
    for f in option_fields(cls):
        if not f.metadata.get("cli", True) or not only(f):
            continue
        name = option_name(f)
        kind, is_list = _click_type(hints[f.name], f)
        value = f.default if f.default is not MISSING else None
        if default == "none" and not f.metadata.get("runtime"):
            value = None
        if is_list and isinstance(value, tuple):
            value = ",".join(value)
        help_text = f.metadata.get("help", "")
        if hints[f.name] is bool or get_args(hints[f.name]) == (bool, type(None)):
            spelling = f.metadata.get("flag") or f"--{name.replace('_', '-')}"
            options.append(click.option(spelling, name, is_flag=True, default=bool(value),
                                        show_default="/" in spelling, help=help_text))
            continue
        show = f.metadata.get("show_default", True) and value is not None
        defaults = {} if f.default is MISSING else {"default": value}  # a required field: no default at all
        options.append(click.option(f"--{name.replace('_', '-')}", name, type=kind, show_default=show,
                                    required=name in required, help=help_text, **defaults))
    return options


def given(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``cls`` whose options the user gave explicitly, by field name (popped from ``values``)."""
    ctx = click.get_current_context()
    out = {}
    for f in option_fields(cls):
        name = option_name(f)
        if name not in values:
            continue
        value = values.pop(name)
        if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None):
            out[f.name] = value
    return out
