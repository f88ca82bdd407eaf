"""`amqp-broker policies list|set|clear` (rabbitmqctl list_policies, set_policy, clear_policy)
over /api/policies."""
from __future__ import annotations

import enum
from typing import Optional

import typer

from .command import admin_command, fail, parse_json_option
from .http_client import ManagementClient, api_path
from .output import FORMAT_OPTION, Format, columns_option, done, emit, parse_columns

app = typer.Typer(help="List, set and clear policies.", no_args_is_help=True)

LIST_COLUMNS = ("vhost", "name", "pattern", "apply-to", "definition", "priority")
VHOST_OPTION = typer.Option("/", "--vhost", "-p", help="Virtual host.")


class ApplyTo(str, enum.Enum):
    """rabbitmqctl set_policy --apply-to's values."""

    all = "all"
    queues = "queues"
    exchanges = "exchanges"
    classic_queues = "classic_queues"
    quorum_queues = "quorum_queues"
    streams = "streams"


@admin_command(app, "list")
def list_policies(
    api: ManagementClient,
    vhost: str = VHOST_OPTION,
    columns: Optional[str] = columns_option(LIST_COLUMNS),
    fmt: Format = FORMAT_OPTION,
) -> None:
    """List the policies of a virtual host."""
    emit(api.get(api_path("policies", vhost)), parse_columns(columns, LIST_COLUMNS), fmt)


@admin_command(app, "set")
def set_policy(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Policy name."),
    pattern: str = typer.Argument(..., help="Regular expression matched against queue/exchange names."),
    definition: str = typer.Argument(..., help='The policy\'s keys as a JSON object, e.g. {"max-length": 10}.'),
    priority: int = typer.Option(0, "--priority", help="Of several matching policies, the highest applies."),
    apply_to: ApplyTo = typer.Option(ApplyTo.all, "--apply-to", help="Which objects the policy applies to."),
    vhost: str = VHOST_OPTION,
) -> None:
    """Set a policy: NAME PATTERN DEFINITION, as rabbitmqctl set_policy."""
    parsed = parse_json_option(definition, "the policy definition")
    if not isinstance(parsed, dict):
        raise fail("the policy definition must be a JSON object")
    api.put(api_path("policies", vhost, name),
            {"pattern": pattern, "definition": parsed, "priority": priority, "apply-to": apply_to.value})
    done(f"policy set: {name}")


@admin_command(app, "clear")
def clear(
    api: ManagementClient,
    name: str = typer.Argument(..., help="Policy name."),
    vhost: str = VHOST_OPTION,
) -> None:
    """Remove a policy."""
    api.delete(api_path("policies", vhost, name))
    done(f"policy cleared: {name}")
