"""The administration commands' output helpers and request paths, without a broker."""
from __future__ import annotations

import io
import json

import pytest
import typer

from amqp_broker.cli import output
from amqp_broker.cli.http_client import api_path


def test_api_path_quotes_every_segment():
    assert api_path("queues", "/", "a/b c") == "/api/queues/%2F/a%2Fb%20c"
    assert api_path("bindings", "v", "e", "x", "q", "rk~abc") == "/api/bindings/v/e/x/q/rk~abc"


def test_select_dotted_columns_and_missing_fields():
    rows = [{"name": "q", "message_stats": {"publish": 3}}, {"name": "r"}]
    assert output.select(rows, ["name", "message_stats.publish"]) == [
        {"name": "q", "message_stats.publish": 3}, {"name": "r"}]


def test_cells():
    assert [output.cell(v) for v in (None, True, False, 5, {"a": 1}, ["x"], output.MISSING)] == [
        "", "true", "false", "5", '{"a":1}', '["x"]', ""]


def test_parse_columns():
    assert output.parse_columns(None, ("a", "b")) == ["a", "b"]
    assert output.parse_columns(" x , y.z ", ("a",)) == ["x", "y.z"]
    with pytest.raises(typer.BadParameter):
        output.parse_columns(" , ", ("a",))


def test_emit_json_and_table(capsys):
    rows = [{"name": "q1", "messages": 2, "durable": True}, {"name": "a-much-longer-name", "messages": 10}]
    output.emit(rows, ["name", "messages"], output.Format.json)
    assert json.loads(capsys.readouterr().out) == [{"name": "q1", "messages": 2},
                                                   {"name": "a-much-longer-name", "messages": 10}]
    output.emit(rows, ["name", "durable"], output.Format.table)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[0].split() == ["name", "durable"]
    # aligned: the second column starts at the same place on every row
    assert lines[2].index("true") == lines[0].index("durable")
    assert lines[3].rstrip() == "a-much-longer-name"


def test_progress_is_silent_off_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with output.progress(3, "working") as advance:
        for _ in range(3):
            advance(1)
    assert err.getvalue() == ""
