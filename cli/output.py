"""How the administration commands print: aligned tables for people, JSON for scripts, and a
progress bar for long work that only a terminal sees.

Column names are the management API's field names; a dotted name reaches into nested objects
(`message_stats.publish`), as rabbitmqadmin's columns do.
"""
from __future__ import annotations

import contextlib
import enum
import json
import sys
from typing import Any, Callable, Iterator, Optional, Sequence

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

MISSING = object()


class Format(str, enum.Enum):
    table = "table"
    json = "json"


FORMAT_OPTION = typer.Option(Format.table, "--format", "-f", case_sensitive=False,
                             help="table (aligned, for people) or json (an array of objects, for scripts).")


def columns_option(default: Sequence[str]):
    return typer.Option(
        None, "--columns", "-c",
        help=f"Comma-separated API field names to show (default: {','.join(default)}); "
             "a dotted name reaches into nested objects.",
        show_default=False,
    )


def parse_columns(text: Optional[str], default: Sequence[str]) -> list[str]:
    if text is None:
        return list(default)
    columns = [name.strip() for name in text.split(",") if name.strip()]
    if not columns:
        raise typer.BadParameter("no column names", param_hint="--columns")
    return columns


def field(obj: Any, column: str) -> Any:
    """obj[column], following dots into nested objects; MISSING when absent."""
    value = obj
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def select(rows: Sequence[dict], columns: Sequence[str]) -> list[dict]:
    """Each row reduced to the columns it has (a column absent from a row is left out, as the
    API's own `columns` parameter does)."""
    picked = []
    for row in rows:
        out = {}
        for column in columns:
            value = field(row, column)
            if value is not MISSING:
                out[column] = value
        picked.append(out)
    return picked


def cell(value: Any) -> str:
    if value is MISSING or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def stdout_console() -> Console:
    # Piped output is not cut to 80 columns: the table takes the width it needs.
    console = Console()
    return console if console.is_terminal else Console(width=100_000, no_color=True)


def emit(rows: Sequence[dict], columns: Sequence[str], fmt: Format) -> None:
    """A list of API objects, as a table of `columns` or a JSON array of objects."""
    if fmt is Format.json:
        typer.echo(json.dumps(select(rows, columns), indent=2))
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell(field(row, column)) for column in columns))
    stdout_console().print(table)


def emit_object(obj: dict, fmt: Format) -> None:
    """One object: two aligned columns (key, value) for people, a JSON object for scripts."""
    if fmt is Format.json:
        typer.echo(json.dumps(obj, indent=2))
        return
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in obj.items():
        table.add_row(key, cell(value))
    stdout_console().print(table)


def done(message: str) -> None:
    """A short confirmation on stderr, so stdout stays clean for scripts."""
    typer.echo(message, err=True)


@contextlib.contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """Yields `advance(n)`; the bar shows on a terminal (stderr) only, never in pipes or logs."""
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, disable=not console.is_terminal or not sys.stderr.isatty(), transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
