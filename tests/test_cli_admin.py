"""`amqp-broker queues|exchanges|bindings|publish|status` against the management API, the
output formats, the error cases and one run as a real subprocess.

Runs against our broker, or against a real RabbitMQ with MGMT_REFERENCE_URL (see
tests/helpers/mgmt.py): the commands must work unchanged with both.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from helpers.cli import Admin, eventually
from helpers.mgmt import Mgmt
from helpers.process import clean_env, cli_command, free_port


@pytest.fixture
def admin(mgmt: Mgmt) -> Admin:
    return Admin(mgmt)


@pytest.fixture
def queue(mgmt: Mgmt, uid: str):
    name = f"cli-q-{uid}"
    yield name
    mgmt.delete(f"/api/queues/%2F/{name}")


@pytest.fixture
def exchange(mgmt: Mgmt, uid: str):
    name = f"cli-x-{uid}"
    yield name
    mgmt.delete(f"/api/exchanges/%2F/{name}")


def queue_row(admin: Admin, name: str, *extra: str):
    return next((q for q in admin.json("queues", "list", *extra) if q["name"] == name), None)


# -- queues ------------------------------------------------------------------------------------


def test_queues_declare_list_delete(admin: Admin, mgmt: Mgmt, queue):
    result = admin.ok("queues", "declare", queue, "--arguments", '{"x-max-length": 10}')
    assert queue in result.stderr
    shown = mgmt.get(f"/api/queues/%2F/{queue}").json
    assert shown["durable"] is True and shown["arguments"] == {"x-max-length": 10}
    expected = {"name": queue, "messages": 0, "consumers": 0}
    eventually(lambda: queue_row(admin, queue), lambda q: q == expected)
    table = admin.ok("queues", "list").stdout
    assert "name" in table.splitlines()[0] and "messages" in table.splitlines()[0]
    assert any(line.split()[0] == queue for line in table.splitlines()[1:] if line.strip())
    admin.ok("queues", "delete", queue)
    assert mgmt.get(f"/api/queues/%2F/{queue}").status == 404


def test_queues_declare_transient_auto_delete(admin: Admin, mgmt: Mgmt, queue):
    admin.ok("queues", "declare", queue, "--transient", "--auto-delete")
    shown = mgmt.get(f"/api/queues/%2F/{queue}").json
    assert shown["durable"] is False and shown["auto_delete"] is True


def test_queues_declare_inequivalent_shows_the_reason(admin: Admin, queue):
    admin.ok("queues", "declare", queue)
    line = admin.fails("queues", "declare", queue, "--transient")
    assert "inequivalent arg 'durable'" in line and "(400, PUT" in line


def test_queues_columns(admin: Admin, queue):
    admin.ok("queues", "declare", queue)
    rows = admin.json("queues", "list", "--columns", "name,durable,arguments")
    assert {"name": queue, "durable": True, "arguments": {}} in rows
    header = admin.ok("queues", "list", "--columns", "name,durable").stdout.splitlines()[0].split()
    assert header == ["name", "durable"]


def test_queues_in_another_vhost_path_is_quoted(admin: Admin, queue):
    # "/" is the default vhost; a vhost that does not exist is RabbitMQ's 404
    line = admin.fails("queues", "list", "--vhost", f"no/such-{queue}")
    assert "404" in line and "%2F" in line


def test_queues_delete_if_empty(admin: Admin, mgmt: Mgmt, queue):
    admin.ok("queues", "declare", queue)
    admin.ok("publish", "--routing-key", queue, "--payload", "m")
    line = admin.fails("queues", "delete", queue, "--if-empty")
    assert f"queue '{queue}' in vhost '/' not empty" in line
    admin.ok("queues", "delete", queue, "--if-unused")
    assert mgmt.get(f"/api/queues/%2F/{queue}").status == 404


def test_publish_get_purge(admin: Admin, queue):
    admin.ok("queues", "declare", queue)
    result = admin.ok("publish", "--routing-key", queue, "--payload", "hello")
    assert json.loads(result.stdout) == {"routed": True}
    assert json.loads(admin.ok("publish", "-k", queue, "-m", "again", "--count", "3").stdout) == {
        "published": 3, "routed": 3}
    got = admin.json("queues", "get", queue, "--count", "2")
    assert [m["payload"] for m in got] == ["hello", "again"]
    assert got[0]["routing_key"] == queue and got[0]["payload_encoding"] == "string"
    # the default ackmode requeues: a peek
    assert [m["payload"] for m in admin.json("queues", "get", queue)] == ["hello"]
    eventually(lambda: queue_row(admin, queue), lambda q: q and q.get("messages") == 4)
    admin.ok("queues", "purge", queue)
    assert admin.json("queues", "get", queue) == []


def test_get_ack_removes_and_table_shows_payload(admin: Admin, queue):
    admin.ok("queues", "declare", queue)
    admin.ok("publish", "-k", queue, "-m", "only-once")
    table = admin.ok("queues", "get", queue, "--ackmode", "ack_requeue_false").stdout
    assert "payload" in table.splitlines()[0] and "only-once" in table
    assert admin.json("queues", "get", queue) == []


def test_publish_unroutable(admin: Admin, uid):
    result = admin.ok("publish", "--routing-key", f"nobody-{uid}", "--payload", "x")
    assert json.loads(result.stdout) == {"routed": False}


def test_get_from_missing_queue_is_404_with_rabbitmqs_reason(admin: Admin, queue):
    line = admin.fails("queues", "get", queue)
    assert "404" in line and f"no queue '{queue}'" in line


# -- exchanges and bindings ----------------------------------------------------------------------


def test_exchanges_declare_list_delete(admin: Admin, mgmt: Mgmt, exchange):
    admin.ok("exchanges", "declare", exchange, "--type", "topic")
    rows = admin.json("exchanges", "list")
    assert {"name": exchange, "type": "topic", "durable": True, "auto_delete": False, "internal": False} in rows
    assert any(row["name"] == "" and row["type"] == "direct" for row in rows)  # the default exchange
    assert exchange in admin.ok("exchanges", "list").stdout
    admin.ok("exchanges", "delete", exchange)
    assert mgmt.get(f"/api/exchanges/%2F/{exchange}").status == 404


def test_exchange_delete_missing_is_404(admin: Admin, exchange):
    assert "404" in admin.fails("exchanges", "delete", exchange)


def test_bindings_add_list_remove_and_publish_through(admin: Admin, queue, exchange):
    admin.ok("queues", "declare", queue)
    admin.ok("exchanges", "declare", exchange, "--type", "direct")
    admin.ok("bindings", "add", exchange, queue, "--routing-key", "rk")
    rows = admin.json("bindings", "list")
    assert {"source": exchange, "destination": queue, "destination_type": "queue", "routing_key": "rk",
            "arguments": {}} in rows
    assert {"source": "", "destination": queue, "destination_type": "queue", "routing_key": queue,
            "arguments": {}} in rows  # the default exchange's implicit binding
    assert json.loads(admin.ok("publish", "-e", exchange, "-k", "rk", "-m", "via").stdout) == {"routed": True}
    assert [m["payload"] for m in admin.json("queues", "get", queue)] == ["via"]
    admin.ok("bindings", "remove", exchange, queue, "--routing-key", "rk")
    assert not [b for b in admin.json("bindings", "list") if b["source"] == exchange]
    line = admin.fails("bindings", "remove", exchange, queue, "--routing-key", "rk")
    assert "no binding" in line


def test_exchange_to_exchange_binding_with_arguments(admin: Admin, mgmt: Mgmt, exchange, uid):
    other = f"cli-x2-{uid}"
    try:
        admin.ok("exchanges", "declare", exchange, "--type", "headers")
        admin.ok("exchanges", "declare", other, "--type", "fanout")
        admin.ok("bindings", "add", exchange, other, "-d", "exchange", "--arguments", '{"x-match": "any", "a": "1"}')
        rows = [b for b in admin.json("bindings", "list") if b["source"] == exchange]
        assert rows == [{"source": exchange, "destination": other, "destination_type": "exchange",
                         "routing_key": "", "arguments": {"x-match": "any", "a": "1"}}]
        # the arguments are part of the binding's identity
        assert "no binding" in admin.fails("bindings", "remove", exchange, other, "-d", "exchange")
        admin.ok("bindings", "remove", exchange, other, "-d", "exchange", "--arguments", '{"x-match": "any", "a": "1"}')
        assert not [b for b in admin.json("bindings", "list") if b["source"] == exchange]
    finally:
        mgmt.delete(f"/api/exchanges/%2F/{other}")


# -- status ------------------------------------------------------------------------------------


def test_status(admin: Admin):
    status = json.loads(admin.ok("status", "--format", "json").stdout)
    assert status["product_name"] and status["product_version"] and status["node"]
    assert isinstance(status["queues"], int) and isinstance(status["exchanges"], int)
    assert any(listener.startswith("amqp ") for listener in status["listeners"])
    assert status["running"] is True
    table = admin.ok("status").stdout
    assert "product_version" in table and status["node"] in table


# -- errors ------------------------------------------------------------------------------------


def test_unreachable_broker(admin: Admin):
    result = admin.runner.invoke(admin_app(), ["queues", "list", "--url", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("amqp-broker: error: cannot reach the management API at http://")


def test_wrong_password_is_401_login_failed(admin: Admin):
    line = admin.fails("queues", "list", password="wrong-password")
    assert line == "amqp-broker: error: not_authorized: Login failed (401, GET /api/queues/%2F)"


def test_missing_queue_delete_is_404(admin: Admin, queue):
    line = admin.fails("queues", "delete", queue)
    assert line == f"amqp-broker: error: Object Not Found: Not Found (404, DELETE /api/queues/%2F/{queue})"


def test_bad_json_arguments(admin: Admin, queue, mgmt: Mgmt):
    line = admin.fails("queues", "declare", queue, "--arguments", "{nope")
    assert "invalid JSON in --arguments" in line
    assert mgmt.get(f"/api/queues/%2F/{queue}").status == 404


def test_bad_columns_and_format_are_usage_errors(admin: Admin):
    assert admin.run("queues", "list", "--format", "xml").exit_code == 2
    assert admin.run("queues", "list", "--columns", ",").exit_code == 2


def test_environment_variables_configure_the_connection(mgmt: Mgmt):
    from typer.testing import CliRunner

    env = {"AMQP_BROKER_MGMT_URL": mgmt.base, "AMQP_BROKER_MGMT_USER": mgmt.user,
           "AMQP_BROKER_MGMT_PASSWORD": mgmt.password}
    result = CliRunner().invoke(admin_app(), ["exchanges", "list", "--format", "json"], env=env)
    assert result.exit_code == 0, result.stderr
    assert any(row["name"] == "amq.direct" for row in json.loads(result.stdout))
    env["AMQP_BROKER_MGMT_PASSWORD"] = "wrong-password"
    result = CliRunner().invoke(admin_app(), ["exchanges", "list"], env=env)
    assert result.exit_code == 1 and "Login failed" in result.stderr


def admin_app():
    from amqp_broker.cli.main import app

    return app


# -- as a real program ---------------------------------------------------------------------------


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command() + list(args), capture_output=True, text=True, timeout=60,
                          env=clean_env(**env), stdin=subprocess.DEVNULL)


def test_subprocess_queues_list_json(mgmt: Mgmt, queue):
    assert mgmt.put(f"/api/queues/%2F/{queue}").status in (201, 204)

    def listed() -> list:
        proc = run_cli("queues", "list", "--format", "json", AMQP_BROKER_MGMT_URL=mgmt.base,
                       AMQP_BROKER_MGMT_USER=mgmt.user, AMQP_BROKER_MGMT_PASSWORD=mgmt.password)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    rows = eventually(listed, lambda rows: {"name": queue, "messages": 0, "consumers": 0} in rows)
    assert all(set(row) <= {"name", "messages", "consumers"} for row in rows)


def test_subprocess_errors_exit_non_zero_with_one_line(mgmt: Mgmt):
    proc = run_cli("queues", "list", "--url", f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "cannot reach the management API" in proc.stderr
    proc = run_cli("queues", "list", "--url", mgmt.base, "--password", "wrong-password")
    assert proc.returncode == 1 and "Login failed" in proc.stderr and "Traceback" not in proc.stderr


def test_shell_completion_is_available():
    proc = run_cli("--show-completion", "bash")
    assert proc.returncode == 0 and "complete" in proc.stdout
    proc = subprocess.run(cli_command(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env=clean_env(_AMQP_BROKER_COMPLETE="complete_bash", COMP_WORDS="amqp-broker que",
                                        COMP_CWORD="1"))
    assert "queues" in proc.stdout.split()
