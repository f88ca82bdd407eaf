"""`amqp-broker users|vhosts|permissions|policies|definitions|connections|channels|consumers`
against the management API (ours, or the reference's with MGMT_REFERENCE_URL)."""
from __future__ import annotations

import json

import pika
import pytest

from amqp_broker.cli import definitions

from helpers.cli import Admin, eventually
from helpers.mgmt import Mgmt


@pytest.fixture
def admin(mgmt: Mgmt) -> Admin:
    return Admin(mgmt)


@pytest.fixture
def user(mgmt: Mgmt, uid: str):
    name = f"cli-u-{uid}"
    yield name
    mgmt.delete(f"/api/users/{name}")


@pytest.fixture
def vhost(mgmt: Mgmt, uid: str):
    name = f"cli-v-{uid}"
    yield name
    mgmt.delete(f"/api/vhosts/{name}")


def named(rows: list, name: str, key: str = "name"):
    return next((row for row in rows if row.get(key) == name), None)


# -- users ---------------------------------------------------------------------------------------


def test_users_add_list_tags_passwd_delete(admin: Admin, mgmt: Mgmt, user):
    admin.ok("users", "add", user, "secret-1", "--tags", "management")
    assert named(admin.json("users", "list"), user) == {"name": user, "tags": ["management"]}
    assert user in admin.ok("users", "list").stdout
    admin.ok("vhosts", "list", user=user, password="secret-1")  # management may log in
    # new tags keep the password
    admin.ok("users", "tags", user, "monitoring", "management")
    assert sorted(named(admin.json("users", "list"), user)["tags"]) == ["management", "monitoring"]
    admin.ok("vhosts", "list", user=user, password="secret-1")
    # a new password keeps the tags
    admin.ok("users", "passwd", user, "secret-2")
    assert "Login failed" in admin.fails("vhosts", "list", user=user, password="secret-1")
    admin.ok("vhosts", "list", user=user, password="secret-2")
    assert sorted(named(admin.json("users", "list"), user)["tags"]) == ["management", "monitoring"]
    # no tags: no management access any more
    admin.ok("users", "tags", user)
    assert named(admin.json("users", "list"), user)["tags"] == []
    assert "401" in admin.fails("vhosts", "list", user=user, password="secret-2")
    admin.ok("users", "delete", user)
    assert named(admin.json("users", "list"), user) is None
    assert "404" in admin.fails("users", "delete", user)


def test_passwd_of_missing_user_is_404(admin: Admin, user):
    assert "(404, GET /api/users/" in admin.fails("users", "passwd", user, "x")


# -- vhosts and permissions ------------------------------------------------------------------------


def test_vhosts_add_list_delete(admin: Admin, mgmt: Mgmt, vhost):
    admin.ok("vhosts", "add", vhost, "--description", "made by the CLI")
    row = named(admin.json("vhosts", "list", "--columns", "name,description"), vhost)
    assert row == {"name": vhost, "description": "made by the CLI"}
    assert vhost in admin.ok("vhosts", "list").stdout
    admin.ok("vhosts", "delete", vhost)
    assert mgmt.get(f"/api/vhosts/{vhost}").status == 404
    assert "404" in admin.fails("vhosts", "delete", vhost)


def test_permissions_set_list_clear(admin: Admin, vhost, user):
    admin.ok("vhosts", "add", vhost)
    admin.ok("users", "add", user, "pw", "--tags", "management")
    admin.ok("permissions", "set", user, "^cfg-.*", ".*", "", "--vhost", vhost)
    rows = admin.json("permissions", "list", "--vhost", vhost)
    assert named(rows, user, "user") == {"user": user, "configure": "^cfg-.*", "write": ".*", "read": ""}
    assert "^cfg-.*" in admin.ok("permissions", "list", "-p", vhost).stdout
    # the user now reaches the vhost's queues through the API
    assert admin.json("queues", "list", "--vhost", vhost, user=user, password="pw") == []
    admin.ok("permissions", "clear", user, "--vhost", vhost)
    assert named(admin.json("permissions", "list", "--vhost", vhost), user, "user") is None
    assert "401" in admin.fails("queues", "list", "--vhost", vhost, user=user, password="pw")


def test_permissions_in_missing_vhost_is_an_error(admin: Admin, vhost):
    assert "404" in admin.fails("permissions", "list", "--vhost", vhost)


# -- policies ------------------------------------------------------------------------------------


def test_policies_set_list_clear(admin: Admin, vhost):
    admin.ok("vhosts", "add", vhost)
    admin.ok("policies", "set", "cli-limit", "^limited\\.", '{"max-length": 5}', "--priority", "7",
             "--apply-to", "queues", "--vhost", vhost)
    rows = admin.json("policies", "list", "--vhost", vhost)
    assert rows == [{"vhost": vhost, "name": "cli-limit", "pattern": "^limited\\.", "apply-to": "queues",
                     "definition": {"max-length": 5}, "priority": 7}]
    # the policy applies to a queue declared afterwards
    admin.ok("queues", "declare", "limited.q", "--vhost", vhost)
    eventually(lambda: named(admin.json("queues", "list", "--vhost", vhost, "--columns", "name,policy"), "limited.q"),
               lambda q: q and q.get("policy") == "cli-limit")
    admin.ok("policies", "clear", "cli-limit", "--vhost", vhost)
    assert admin.json("policies", "list", "--vhost", vhost) == []
    assert "404" in admin.fails("policies", "clear", "cli-limit", "--vhost", vhost)


def test_policy_definition_must_be_a_json_object(admin: Admin, vhost):
    admin.ok("vhosts", "add", vhost)
    line = admin.fails("policies", "set", "p", ".*", "{max-length: 5}", "--vhost", vhost)
    assert line.startswith("amqp-broker: error: invalid JSON in the policy definition: ")
    line = admin.fails("policies", "set", "p", ".*", "[1]", "--vhost", vhost)
    assert line == "amqp-broker: error: the policy definition must be a JSON object"
    assert admin.json("policies", "list", "--vhost", vhost) == []


def test_policy_rejected_by_the_broker_shows_its_reason(admin: Admin, vhost):
    admin.ok("vhosts", "add", vhost)
    line = admin.fails("policies", "set", "p", ".*", '{"max-length": "many"}', "--vhost", vhost)
    assert "(400, PUT /api/policies/" in line and "max" in line and "length" in line


# -- definitions ---------------------------------------------------------------------------------


def vhost_document(vhost: str) -> dict:
    return {
        "queues": [{"name": "dq", "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {}}],
        "exchanges": [{"name": "dx", "vhost": vhost, "type": "fanout", "durable": True, "auto_delete": False,
                       "internal": False, "arguments": {}}],
        "bindings": [{"source": "dx", "vhost": vhost, "destination": "dq", "destination_type": "queue",
                      "routing_key": "", "arguments": {}}],
    }


def test_definitions_import_then_export(admin: Admin, vhost, tmp_path):
    admin.ok("vhosts", "add", vhost)
    source = tmp_path / "defs.json"
    source.write_text(json.dumps({"vhosts": [{"name": vhost}], **vhost_document(vhost)}))
    assert "3 objects" not in admin.ok("definitions", "import", str(source)).stderr  # 4: vhost too
    assert named(admin.json("queues", "list", "--vhost", vhost), "dq")
    assert named(admin.json("bindings", "list", "--vhost", vhost), "dx", "source")["destination"] == "dq"
    # export: everything to stdout, one vhost to a file
    everything = json.loads(admin.ok("definitions", "export").stdout)
    assert named(everything["vhosts"], vhost) and "users" in everything
    target = tmp_path / "out.json"
    admin.ok("definitions", "export", str(target), "--vhost", vhost)
    exported = json.loads(target.read_text())
    assert [q["name"] for q in exported["queues"]] == ["dq"]
    assert [(b["source"], b["destination"]) for b in exported["bindings"]] == [("dx", "dq")]


def test_definitions_import_into_one_vhost_from_stdin(admin: Admin, vhost):
    admin.ok("vhosts", "add", vhost)
    document = {key: [{k: v for k, v in item.items() if k != "vhost"} for item in items]
                for key, items in vhost_document("unused").items()}
    admin.ok("definitions", "import", "-", "--vhost", vhost, input=json.dumps(document))
    assert named(admin.json("exchanges", "list", "--vhost", vhost), "dx")["type"] == "fanout"


def test_big_definitions_import_goes_in_slices(admin: Admin, vhost, tmp_path):
    count = definitions.SLICE + 100
    document = {"vhosts": [{"name": vhost}],
                "queues": [{"name": f"q{i:04d}", "vhost": vhost, "durable": True, "auto_delete": False,
                            "arguments": {}} for i in range(count)],
                **{k: v for k, v in vhost_document(vhost).items() if k != "queues"}}
    document["bindings"][0]["destination"] = "q0000"
    assert [list(body) for body in definitions.slices(document)] == [
        ["vhosts"], ["queues"], ["queues"], ["exchanges"], ["bindings"]]
    source = tmp_path / "big.json"
    source.write_text(json.dumps(document))
    result = admin.ok("definitions", "import", str(source))
    assert f"({count + 3} objects)" in result.stderr
    assert len(admin.json("queues", "list", "--vhost", vhost)) == count
    assert named(admin.json("bindings", "list", "--vhost", vhost), "dx", "source")["destination"] == "q0000"


@pytest.mark.parametrize("text, message", [
    ('{"queues": [', "bad JSON in "),
    ("[]", "the document must be a JSON object"),
    ('{"queues": {}}', "'queues' must be a JSON array"),
])
def test_bad_definitions_file(admin: Admin, tmp_path, text, message):
    source = tmp_path / "bad.json"
    source.write_text(text)
    assert message in admin.fails("definitions", "import", str(source))


def test_missing_definitions_file(admin: Admin, tmp_path):
    assert "cannot read" in admin.fails("definitions", "import", str(tmp_path / "nope.json"))


# -- connections, channels, consumers --------------------------------------------------------------


@pytest.fixture
def client(mgmt: Mgmt, uid: str):
    params = pika.URLParameters(mgmt.amqp_url)
    params.client_properties = {"connection_name": f"cli-conn-{uid}"}
    connection = pika.BlockingConnection(params)
    yield connection
    if connection.is_open:
        connection.close()


def test_connections_channels_consumers(admin: Admin, client, uid):
    channel = client.channel()
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.basic_qos(prefetch_count=3)
    channel.basic_consume(queue, lambda *a: None, consumer_tag=f"cli-ctag-{uid}")
    name = f"cli-conn-{uid}"

    def ours() -> dict | None:
        rows = admin.json("connections", "list", "--columns", "name,user,vhost,client_properties.connection_name")
        return named(rows, name, "client_properties.connection_name")

    row = eventually(ours, lambda row: row is not None)
    assert row["user"] == "guest" and row["vhost"] == "/"
    assert row["name"] in admin.ok("connections", "list").stdout
    channels = eventually(lambda: [c for c in admin.json("channels", "list", "--columns", "name,number,connection_details.name")
                                   if c.get("connection_details.name") == row["name"]], bool)
    assert [c["number"] for c in channels] == [1]
    consumer = eventually(lambda: named(admin.json("consumers", "list"), f"cli-ctag-{uid}", "consumer_tag"),
                          lambda c: c is not None)
    assert consumer["queue.name"] == queue and consumer["prefetch_count"] == 3 and consumer["ack_required"] is True
    assert named(admin.json("consumers", "list", "--vhost", "/"), f"cli-ctag-{uid}", "consumer_tag")

    admin.ok("connections", "close", row["name"], "--reason", "closed by the CLI test")
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        for _ in range(100):
            client.process_data_events(time_limit=0.1)
    assert closed.value.reply_code == 320 and "closed by the CLI test" in closed.value.reply_text


def test_close_unknown_connection_is_404(admin: Admin, uid):
    assert "404" in admin.fails("connections", "close", f"no-such-connection-{uid}")
