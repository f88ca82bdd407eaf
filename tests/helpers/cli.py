"""The administration commands (`amqp-broker queues ...`) run in-process with typer's
CliRunner against the management API under test (`mgmt`: ours, or the reference's)."""
from __future__ import annotations

import json

from typer.testing import CliRunner, Result

from amqp_broker.cli.main import app

from helpers.mgmt import Mgmt


class Admin:
    """`admin.run("queues", "list")` -> Result; `admin.json(...)` -> the parsed --format json output."""

    def __init__(self, mgmt: Mgmt):
        self.mgmt = mgmt
        self.runner = CliRunner()

    def connection_args(self, user: str | None = None, password: str | None = None) -> list[str]:
        return ["--url", self.mgmt.base, "--user", user or self.mgmt.user, "--password", password or self.mgmt.password]

    def run(self, *args: str, user: str | None = None, password: str | None = None, input: str | None = None) -> Result:
        return self.runner.invoke(app, [*args, *self.connection_args(user, password)], input=input)

    def ok(self, *args: str, **kw) -> Result:
        """Run and assert success (exit code 0)."""
        result = self.run(*args, **kw)
        assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr, result.exception)
        return result

    def json(self, *args: str, **kw):
        return json.loads(self.ok(*args, "--format", "json", **kw).stdout)

    def fails(self, *args: str, **kw) -> str:
        """Run, assert exit code 1 with one line on stderr; that line."""
        result = self.run(*args, **kw)
        assert result.exit_code == 1, (args, result.exit_code, result.stdout, result.stderr, result.exception)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("amqp-broker: error: "), result.stderr
        return lines[0]


def eventually(fetch, pred):
    """Call `fetch()` until `pred(value)` holds (RabbitMQ's statistics lag a few seconds); the
    last value. Fails the test when it never holds."""
    from helpers.wait import wait_until

    last = None

    def check() -> bool:
        nonlocal last
        last = fetch()
        return bool(pred(last))

    assert wait_until(check, interval=0.2), last
    return last
