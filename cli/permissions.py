"""`amqp-broker permissions list|set|clear` (rabbitmqctl list_permissions, set_permissions,
clear_permissions) over /api/permissions."""
from __future__ import annotations

from typing import Optional

import typer

from .command import admin_command
from .http_client import ManagementClient, api_path
from .output import FORMAT_OPTION, Format, columns_option, done, emit, parse_columns

app = typer.Typer(help="List, set and clear users' permissions in a virtual host.", no_args_is_help=True)

LIST_COLUMNS = ("user", "configure", "write", "read")
VHOST_OPTION = typer.Option("/", "--vhost", "-p", help="Virtual host.")


@admin_command(app, "list")
def list_permissions(
    api: ManagementClient,
    vhost: str = VHOST_OPTION,
    columns: Optional[str] = columns_option(LIST_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the permissions in a virtual host."""
    emit(api.get(api_path("vhosts", vhost, "permissions")), parse_columns(columns, LIST_COLUMNS), fmt)


@admin_command(app, "set")
def set_permissions(
    api: ManagementClient,
    user: str = typer.Argument(..., help="User name."),
    configure: str = typer.Argument(..., help="Regular expression of the names the user may configure."),
    write: str = typer.Argument(..., help="... may write to (publish, bind to a queue)."),
    read: str = typer.Argument(..., help="... may read from (consume, get, bind from an exchange)."),
    vhost: str = VHOST_OPTION,
) -> None:
    """Set a user's permissions: USER CONFIGURE WRITE READ, as rabbitmqctl set_permissions."""
    api.put(api_path("permissions", vhost, user), {"configure": configure, "write": write, "read": read})
    done(f"permissions set: {user} in {vhost}")


@admin_command(app, "clear")
def clear(
    api: ManagementClient,
    user: str = typer.Argument(..., help="User name."),
    vhost: str = VHOST_OPTION,
) -> None:
    """Remove a user's permissions in a virtual host."""
    api.delete(api_path("permissions", vhost, user))
    done(f"permissions cleared: {user} in {vhost}")
