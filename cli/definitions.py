"""`amqp-broker definitions export|import` (rabbitmqctl export_definitions/import_definitions)
over /api/definitions.

A big import goes in slices, each one POST of part of one section (sections in the order
RabbitMQ imports them: users and vhosts before permissions, queues and exchanges before
bindings), so a progress bar can follow it and no request grows without bound. A document
small enough for one slice is posted whole, exactly as written.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from .command import admin_command, fail
from .http_client import ManagementClient, api_path
from .output import done, progress

app = typer.Typer(help="Export and import definitions (users, vhosts, permissions, policies, "
                       "queues, exchanges, bindings).", no_args_is_help=True)

# rabbit_definitions:apply_defs's order: what later sections refer to comes first.
SECTIONS = ("users", "vhosts", "permissions", "topic_permissions", "parameters", "global_parameters",
            "policies", "queues", "exchanges", "bindings")
SLICE = 500


def definitions_path(vhost: Optional[str]) -> str:
    return api_path("definitions") if vhost is None else api_path("definitions", vhost)


@admin_command(app, "export")
def export(
    api: ManagementClient,
    file: str = typer.Argument("-", help="Where to write the JSON document (-: stdout)."),
    vhost: Optional[str] = typer.Option(None, "--vhost", "-p", help="Only this virtual host (default: everything).",
                                        show_default=False),
) -> None:
    """Export the broker's definitions as a JSON document."""
    text = json.dumps(api.get(definitions_path(vhost)), indent=2)
    if file == "-":
        typer.echo(text)
        return
    try:
        Path(file).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {file}: {exc.strerror or exc}") from None
    done(f"definitions exported to {file}")


def read_document(file: str) -> dict:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise fail(f"bad JSON in {file}: {exc}") from None
    if not isinstance(document, dict):
        raise fail(f"bad definitions in {file}: the document must be a JSON object")
    for section in SECTIONS:
        if section in document and not isinstance(document[section], list):
            raise fail(f"bad definitions in {file}: {section!r} must be a JSON array")
    return document


def slices(document: dict) -> list[dict]:
    """The document as POST bodies of at most SLICE objects each, in SECTIONS order."""
    bodies = []
    for section in SECTIONS:
        items = document.get(section, [])
        for start in range(0, len(items), SLICE):
            bodies.append({section: items[start:start + SLICE]})
    return bodies


@admin_command(app, "import")
def import_definitions(
    api: ManagementClient,
    file: str = typer.Argument(..., help="A JSON document as `definitions export` writes it (-: stdin)."),
    vhost: Optional[str] = typer.Option(None, "--vhost", "-p",
                                        help="Import a single virtual host's definitions into this vhost.",
                                        show_default=False),
) -> None:
    """Import definitions: objects are created, or updated when they exist."""
    document = read_document(file)
    path = definitions_path(vhost)
    total = sum(len(document.get(section, [])) for section in SECTIONS)
    if total <= SLICE:
        api.post(path, document)
    else:
        with progress(total, "importing") as advance:
            for body in slices(document):
                api.post(path, body)
                advance(sum(len(items) for items in body.values()))
    done(f"definitions imported from {file} ({total} objects)")
