"""`amqp-broker vhosts list|add|delete` (rabbitmqctl list_vhosts, add_vhost, delete_vhost)
over /api/vhosts."""
from __future__ import annotations

from typing import Optional

import typer

from .command import admin_command
from .http_client import ManagementClient, api_path
from .output import FORMAT_OPTION, Format, columns_option, done, emit, parse_columns

app = typer.Typer(help="List, add and delete virtual hosts.", no_args_is_help=True)

LIST_COLUMNS = ("name", "messages", "description")


@admin_command(app, "list")
def list_vhosts(
    api: ManagementClient,
    columns: Optional[str] = columns_option(LIST_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the virtual hosts."""
    emit(api.get(api_path("vhosts")), parse_columns(columns, LIST_COLUMNS), fmt)


@admin_command(app, "add")
def add(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Virtual host name."),
    description: Optional[str] = typer.Option(None, "--description", help="A description."),
    tags: Optional[str] = typer.Option(None, "--tags", help="Comma-separated tags."),
) -> None:
    """Add a virtual host."""
    body = {}
    if description is not None:
        body["description"] = description
    if tags is not None:
        body["tags"] = tags
    api.put(api_path("vhosts", name), body)
    done(f"vhost added: {name}")


@admin_command(app, "delete")
def delete(api: ManagementClient, name: str = typer.Argument(..., help="Virtual host name.")) -> None:
    """Delete a virtual host with everything in it."""
    api.delete(api_path("vhosts", name))
    done(f"vhost deleted: {name}")
