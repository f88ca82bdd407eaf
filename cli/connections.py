"""`amqp-broker connections list|close`, `channels list`, `consumers list` (rabbitmqctl
list_connections, close_connection, list_channels, list_consumers) over /api/connections,
/api/channels and /api/consumers."""
from __future__ import annotations

from typing import Optional

import typer

from .command import admin_command
from .http_client import ManagementClient, api_path
from .output import FORMAT_OPTION, Format, columns_option, done, emit, parse_columns

connections_app = typer.Typer(help="List and close client connections.", no_args_is_help=True)
channels_app = typer.Typer(help="List channels.", no_args_is_help=True)
consumers_app = typer.Typer(help="List consumers.", no_args_is_help=True)

CONNECTION_COLUMNS = ("name", "user", "vhost", "state", "channels")
CHANNEL_COLUMNS = ("name", "user", "vhost", "number", "consumer_count", "messages_unacknowledged")
CONSUMER_COLUMNS = ("queue.name", "consumer_tag", "channel_details.name", "ack_required", "prefetch_count")
# Unlike queues, these list every virtual host unless one is named (as rabbitmqctl does).
ANY_VHOST_OPTION = typer.Option(None, "--vhost", "-p", help="Only this virtual host (default: all).",
                                show_default=False)


def in_vhost(kind: str, vhost: Optional[str]) -> str:
    return api_path(kind) if vhost is None else api_path("vhosts", vhost, kind)


@admin_command(connections_app, "list")
def list_connections(
    api: ManagementClient,
    vhost: Optional[str] = ANY_VHOST_OPTION,
    columns: Optional[str] = columns_option(CONNECTION_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the client connections."""
    emit(api.get(in_vhost("connections", vhost)), parse_columns(columns, CONNECTION_COLUMNS), fmt)


@admin_command(connections_app, "close")
def close(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Connection name, as `connections list` shows it."),
    reason: str = typer.Option("Closed via management plugin", "--reason",
                               help="The text the client gets with the close (320 CONNECTION_FORCED)."),
) -> None:
    """Close a client connection."""
    api.delete(api_path("connections", name), headers={"X-Reason": reason})
    done(f"connection closed: {name}")


@admin_command(channels_app, "list")
def list_channels(
    api: ManagementClient,
    vhost: Optional[str] = ANY_VHOST_OPTION,
    columns: Optional[str] = columns_option(CHANNEL_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the channels of every connection."""
    emit(api.get(in_vhost("channels", vhost)), parse_columns(columns, CHANNEL_COLUMNS), fmt)


@admin_command(consumers_app, "list")
def list_consumers(
    api: ManagementClient,
    vhost: Optional[str] = ANY_VHOST_OPTION,
    columns: Optional[str] = columns_option(CONSUMER_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the consumers."""
    path = api_path("consumers") if vhost is None else api_path("consumers", vhost)
    emit(api.get(path), parse_columns(columns, CONSUMER_COLUMNS), fmt)
