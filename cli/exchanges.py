"""`amqp-broker exchanges list|declare|delete` over /api/exchanges, and `amqp-broker publish`
(POST /api/exchanges/{vhost}/{name}/publish)."""
from __future__ import annotations

import json
from typing import Optional

import typer

from .command import admin_command, fail, parse_json_option
from .http_client import ManagementClient, api_path
from .output import FORMAT_OPTION, Format, columns_option, done, emit, parse_columns, progress

app = typer.Typer(help="List, declare and delete exchanges.", no_args_is_help=True)

LIST_COLUMNS = ("name", "type", "durable", "auto_delete", "internal")
VHOST_OPTION = typer.Option("/", "--vhost", "-p", help="Virtual host.")


@admin_command(app, "list")
def list_exchanges(
    api: ManagementClient,
    vhost: str = VHOST_OPTION,
    columns: Optional[str] = columns_option(LIST_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the exchanges of a virtual host (the default exchange's name is empty)."""
    emit(api.get(api_path("exchanges", vhost)), parse_columns(columns, LIST_COLUMNS), fmt)


@admin_command(app, "declare")
def declare(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Exchange name."),
    exchange_type: str = typer.Option("direct", "--type", "-t", help="direct, fanout, topic, headers, ..."),
    vhost: str = VHOST_OPTION,
    durable: bool = typer.Option(True, "--durable/--transient", help="Survives a broker restart."),
    auto_delete: bool = typer.Option(False, "--auto-delete", help="Deleted when its last binding goes."),
    internal: bool = typer.Option(False, "--internal", help="Publishers cannot publish to it directly."),
    arguments: str = typer.Option("{}", "--arguments", help='Exchange arguments as JSON, e.g. {"alternate-exchange": "ae"}.'),
) -> None:
    """Declare an exchange (idempotent when the properties match)."""
    args = parse_json_option(arguments, "--arguments")
    if not isinstance(args, dict):
        raise fail("--arguments must be a JSON object")
    api.put(api_path("exchanges", vhost, name), {
        "type": exchange_type, "durable": durable, "auto_delete": auto_delete, "internal": internal, "arguments": args,
    })
    done(f"exchange declared: {name}")


@admin_command(app, "delete")
def delete(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Exchange name."),
    vhost: str = VHOST_OPTION,
    if_unused: bool = typer.Option(False, "--if-unused", help="Only if it has no bindings."),
) -> None:
    """Delete an exchange and its bindings."""
    api.delete(api_path("exchanges", vhost, name), params={"if-unused": "true"} if if_unused else None)
    done(f"exchange deleted: {name}")


def publish(
    api: ManagementClient,
    routing_key: str = typer.Option("", "--routing-key", "-k", help="Routing key."),
    payload: str = typer.Option("", "--payload", "-m", help="Message body (text; see --payload-encoding)."),
    exchange: str = typer.Option("", "--exchange", "-e", help="Exchange (default: the default exchange)."),
    vhost: str = VHOST_OPTION,
    payload_encoding: str = typer.Option("string", "--payload-encoding", help="string or base64."),
    properties: str = typer.Option("{}", "--properties",
                                   help='Message properties as JSON, e.g. {"delivery_mode": 2, "headers": {}}.'),
    count: int = typer.Option(1, "--count", "-n", min=1, help="Publish the message this many times."),
) -> None:
    """Publish a message through an exchange (one HTTP request per message)."""
    props = parse_json_option(properties, "--properties")
    if not isinstance(props, dict):
        raise fail("--properties must be a JSON object")
    body = {"properties": props, "routing_key": routing_key, "payload": payload, "payload_encoding": payload_encoding}
    path = api_path("exchanges", vhost, exchange or "amq.default", "publish")
    routed = 0
    with progress(count, "publishing") as advance:
        for _ in range(count):
            if api.post(path, body).get("routed"):
                routed += 1
            advance(1)
    if count == 1:
        typer.echo(json.dumps({"routed": routed == 1}))
    else:
        typer.echo(json.dumps({"published": count, "routed": routed}))
