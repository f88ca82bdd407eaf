"""`amqp-broker bindings list|add|remove` over /api/bindings.

The API names a binding by source, destination and its `properties_key` (the routing key,
plus a hash of the arguments when there are some), so `remove` first looks the binding up
among those between the two names.
"""
from __future__ import annotations

import enum
from typing import Optional

import typer

from .command import admin_command, fail, parse_json_option
from .http_client import ManagementClient, api_path
from .output import FORMAT_OPTION, Format, columns_option, done, emit, parse_columns

app = typer.Typer(help="List, add and remove bindings.", no_args_is_help=True)

LIST_COLUMNS = ("source", "destination", "destination_type", "routing_key", "arguments")
VHOST_OPTION = typer.Option("/", "--vhost", "-p", help="Virtual host.")


class DestinationType(str, enum.Enum):
    queue = "queue"
    exchange = "exchange"


# The path letter of each destination type: /api/bindings/{vhost}/e/{source}/q|e/{destination}
PATH_LETTER = {DestinationType.queue: "q", DestinationType.exchange: "e"}

SOURCE_ARG = typer.Argument(..., help="Source exchange.")
DESTINATION_ARG = typer.Argument(..., help="Destination queue (or exchange, see --destination-type).")
DESTINATION_TYPE_OPTION = typer.Option(DestinationType.queue, "--destination-type", "-d", help="queue or exchange.")
ROUTING_KEY_OPTION = typer.Option("", "--routing-key", "-k", help="Routing key (binding key).")
ARGUMENTS_OPTION = typer.Option("{}", "--arguments", help='Binding arguments as JSON, e.g. {"x-match": "any"}.')


def arguments_table(text: str) -> dict:
    args = parse_json_option(text, "--arguments")
    if not isinstance(args, dict):
        raise fail("--arguments must be a JSON object")
    return args


@admin_command(app, "list")
def list_bindings(
    api: ManagementClient,
    vhost: str = VHOST_OPTION,
    columns: Optional[str] = columns_option(LIST_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the bindings of a virtual host (the default exchange's have an empty source)."""
    emit(api.get(api_path("bindings", vhost)), parse_columns(columns, LIST_COLUMNS), fmt)


@admin_command(app, "add")
def add(
    api: ManagementClient,
    source: str = SOURCE_ARG,
    destination: str = DESTINATION_ARG,
    destination_type: DestinationType = DESTINATION_TYPE_OPTION,
    routing_key: str = ROUTING_KEY_OPTION,
    arguments: str = ARGUMENTS_OPTION,
    vhost: str = VHOST_OPTION,
) -> None:
    """Bind a queue or exchange to an exchange."""
    body = {"routing_key": routing_key, "arguments": arguments_table(arguments)}
    api.post(api_path("bindings", vhost, "e", source, PATH_LETTER[destination_type], destination), body)
    done(f"binding added: {source} -> {destination} ({routing_key!r})")


@admin_command(app, "remove")
def remove(
    api: ManagementClient,
    source: str = SOURCE_ARG,
    destination: str = DESTINATION_ARG,
    destination_type: DestinationType = DESTINATION_TYPE_OPTION,
    routing_key: str = ROUTING_KEY_OPTION,
    arguments: str = ARGUMENTS_OPTION,
    vhost: str = VHOST_OPTION,
) -> None:
    """Remove the binding with this routing key and these arguments."""
    args = arguments_table(arguments)
    between = ("bindings", vhost, "e", source, PATH_LETTER[destination_type], destination)
    matching = [b for b in api.get(api_path(*between))
                if b.get("routing_key") == routing_key and b.get("arguments", {}) == args]
    if not matching:
        raise fail(f"no binding from {source!r} to {destination_type.value} {destination!r} "
                   f"with routing key {routing_key!r} in vhost {vhost!r}")
    api.delete(api_path(*between, matching[0]["properties_key"]))
    done(f"binding removed: {source} -> {destination} ({routing_key!r})")
