"""`admin_command`: registers an administration command whose first parameter is the
management client.

Every command takes the same connection options (--url, --user, --password, or their
AMQP_BROKER_MGMT_* variables) and turns every `ApiError` into the one-line error and exit
code 1 of `amqp-broker serve`. Declaring that once here keeps each command to its own options.
"""
from __future__ import annotations

import functools
import inspect
from typing import Annotated, Callable

import typer

from .http_client import DEFAULT_PASSWORD, DEFAULT_URL, DEFAULT_USER, ApiError, ManagementClient


def fail(message: str) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise (exit code 1)."""
    typer.echo(f"amqp-broker: error: {message}", err=True)
    return typer.Exit(code=1)


CONNECTION_PARAMS = [
    inspect.Parameter(
        "mgmt_url", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_URL,
        annotation=Annotated[str, typer.Option("--url", envvar="AMQP_BROKER_MGMT_URL",
                                               help="The broker's management API.", rich_help_panel="Connection")],
    ),
    inspect.Parameter(
        "mgmt_user", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_USER,
        annotation=Annotated[str, typer.Option("--user", envvar="AMQP_BROKER_MGMT_USER",
                                               help="User name.", rich_help_panel="Connection")],
    ),
    inspect.Parameter(
        "mgmt_password", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_PASSWORD,
        annotation=Annotated[str, typer.Option("--password", envvar="AMQP_BROKER_MGMT_PASSWORD",
                                               help="Password.", rich_help_panel="Connection",
                                               show_default=False)],
    ),
]


def admin_command(app: typer.Typer, name: str) -> Callable[[Callable], Callable]:
    """`@admin_command(app, "list")` over `def f(api: ManagementClient, ...)`: the command
    `name` of `app`, with `api` replaced by the connection options."""

    def register(func: Callable) -> Callable:
        signature = inspect.signature(func, eval_str=True)
        own = list(signature.parameters.values())
        if not own or own[0].name != "api":
            raise TypeError(f"{func.__name__}: the first parameter must be `api`")

        @functools.wraps(func)
        def command(*args, mgmt_url: str, mgmt_user: str, mgmt_password: str, **kwargs):
            try:
                with ManagementClient(mgmt_url, mgmt_user, mgmt_password) as api:
                    return func(api, *args, **kwargs)
            except ApiError as exc:
                raise fail(str(exc)) from None

        params = own[1:] + CONNECTION_PARAMS
        command.__signature__ = signature.replace(parameters=params)
        command.__annotations__ = {p.name: p.annotation for p in params}
        del command.__wrapped__  # typer must read the new signature, not the function's
        app.command(name)(command)
        return func

    return register


def parse_json_option(text: str, what: str) -> object:
    """A JSON value given on the command line; a clear error when it is not valid JSON."""
    import json

    try:
        return json.loads(text)
    except ValueError as exc:
        raise fail(f"invalid JSON in {what}: {exc}") from None
