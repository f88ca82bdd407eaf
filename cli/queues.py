"""`amqp-broker queues list|declare|delete|purge|get` (rabbitmqctl list_queues, rabbitmqadmin
declare/delete/purge/get queue) over /api/queues."""
from __future__ import annotations

import enum
from typing import Optional

import typer

from .command import admin_command, fail, parse_json_option
from .http_client import ManagementClient, api_path
from .output import FORMAT_OPTION, Format, columns_option, done, emit, parse_columns

app = typer.Typer(help="List, declare, delete, purge queues and get messages from them.", no_args_is_help=True)

LIST_COLUMNS = ("name", "messages", "consumers")
GET_COLUMNS = ("routing_key", "exchange", "message_count", "redelivered", "payload", "payload_encoding")
VHOST_OPTION = typer.Option("/", "--vhost", "-p", help="Virtual host.")


class AckMode(str, enum.Enum):
    """The management API's ways to get a message (POST /api/queues/{vhost}/{name}/get)."""

    ack_requeue_true = "ack_requeue_true"
    ack_requeue_false = "ack_requeue_false"
    reject_requeue_true = "reject_requeue_true"
    reject_requeue_false = "reject_requeue_false"


class Encoding(str, enum.Enum):
    auto = "auto"
    base64 = "base64"


@admin_command(app, "list")
def list_queues(
    api: ManagementClient,
    vhost: str = VHOST_OPTION,
    columns: Optional[str] = columns_option(LIST_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the queues of a virtual host."""
    emit(api.get(api_path("queues", vhost)), parse_columns(columns, LIST_COLUMNS), fmt)


@admin_command(app, "declare")
def declare(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Queue name."),
    vhost: str = VHOST_OPTION,
    durable: bool = typer.Option(True, "--durable/--transient", help="Survives a broker restart."),
    auto_delete: bool = typer.Option(False, "--auto-delete", help="Deleted when its last consumer goes."),
    arguments: str = typer.Option("{}", "--arguments", help='Queue arguments as JSON, e.g. {"x-max-length": 10}.'),
) -> None:
    """Declare a queue (idempotent when the properties match)."""
    args = parse_json_option(arguments, "--arguments")
    if not isinstance(args, dict):
        raise fail("--arguments must be a JSON object")
    api.put(api_path("queues", vhost, name), {"durable": durable, "auto_delete": auto_delete, "arguments": args})
    done(f"queue declared: {name}")


@admin_command(app, "delete")
def delete(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Queue name."),
    vhost: str = VHOST_OPTION,
    if_empty: bool = typer.Option(False, "--if-empty", help="Only if it holds no messages."),
    if_unused: bool = typer.Option(False, "--if-unused", help="Only if it has no consumers."),
) -> None:
    """Delete a queue and its messages."""
    params = {}
    if if_empty:
        params["if-empty"] = "true"
    if if_unused:
        params["if-unused"] = "true"
    api.delete(api_path("queues", vhost, name), params=params or None)
    done(f"queue deleted: {name}")


@admin_command(app, "purge")
def purge(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Queue name."),
    vhost: str = VHOST_OPTION,
) -> None:
    """Remove every ready message of a queue."""
    api.delete(api_path("queues", vhost, name, "contents"))
    done(f"queue purged: {name}")


@admin_command(app, "get")
def get(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Queue name."),
    vhost: str = VHOST_OPTION,
    count: int = typer.Option(1, "--count", "-n", min=1, help="At most this many messages."),
    ackmode: AckMode = typer.Option(AckMode.ack_requeue_true, "--ackmode",
                                    help="What happens to the messages got (default: they go back)."),
    encoding: Encoding = typer.Option(Encoding.auto, "--encoding", help="auto: text when it is UTF-8, else base64."),
    truncate: Optional[int] = typer.Option(None, "--truncate", min=0, help="Cut payloads to this many bytes."),
    columns: Optional[str] = columns_option(GET_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """Get messages from a queue (by default they are requeued: a peek)."""
    body = {"count": count, "ackmode": ackmode.value, "encoding": encoding.value}
    if truncate is not None:
        body["truncate"] = truncate
    emit(api.post(api_path("queues", vhost, name, "get"), body), parse_columns(columns, GET_COLUMNS), fmt)
