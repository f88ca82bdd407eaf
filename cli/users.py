"""`amqp-broker users list|add|delete|passwd|tags` (rabbitmqctl list_users, add_user,
delete_user, change_password, set_user_tags) over /api/users."""
from __future__ import annotations

from typing import List, Optional

import typer

from .command import admin_command
from .http_client import ManagementClient, api_path
from .output import FORMAT_OPTION, Format, columns_option, done, emit, parse_columns

app = typer.Typer(help="List, add and delete users; change passwords and tags.", no_args_is_help=True)

LIST_COLUMNS = ("name", "tags")


@admin_command(app, "list")
def list_users(
    api: ManagementClient,
    columns: Optional[str] = columns_option(LIST_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the users."""
    emit(api.get(api_path("users")), parse_columns(columns, LIST_COLUMNS), fmt)


@admin_command(app, "add")
def add(
    api: ManagementClient,
    name: str = typer.Argument(..., help="User name."),
    password: str = typer.Argument(..., help="Password."),
    tags: str = typer.Option("", "--tags", help="Comma-separated tags, e.g. administrator or management."),
) -> None:
    """Add a user (or replace an existing one's password and tags)."""
    api.put(api_path("users", name), {"password": password, "tags": tags})
    done(f"user added: {name}")


@admin_command(app, "delete")
def delete(api: ManagementClient, name: str = typer.Argument(..., help="User name.")) -> None:
    """Delete a user and their permissions."""
    api.delete(api_path("users", name))
    done(f"user deleted: {name}")


@admin_command(app, "passwd")
def passwd(
    api: ManagementClient,
    name: str = typer.Argument(..., help="User name."),
    password: str = typer.Argument(..., help="The new password."),
) -> None:
    """Change a user's password, keeping their tags."""
    user = api.get(api_path("users", name))
    api.put(api_path("users", name), {"password": password, "tags": ",".join(user.get("tags", []))})
    done(f"password changed: {name}")


@admin_command(app, "tags")
def set_tags(
    api: ManagementClient,
    name: str = typer.Argument(..., help="User name."),
    tags: Optional[List[str]] = typer.Argument(None, help="The new tags (none: remove every tag)."),
) -> None:
    """Replace a user's tags, keeping their password (as rabbitmqctl set_user_tags)."""
    user = api.get(api_path("users", name))
    # A PUT without the password hash would leave the user without a password.
    api.put(api_path("users", name), {
        "password_hash": user["password_hash"],
        "hashing_algorithm": user["hashing_algorithm"],
        "tags": ",".join(tags or []),
    })
    done(f"tags set: {name}")
