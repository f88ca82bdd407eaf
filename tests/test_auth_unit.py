"""Unit tests for amqp_broker.auth: SASL PLAIN / AMQPLAIN parsing, credential checks and
RabbitMQ's loopback_users rule for guest."""
from __future__ import annotations

import random
import struct

import pytest
from pamqp import encode as pencode

from amqp_broker.auth import MECHANISMS, AuthError, User, UserStore, is_loopback, parse_response


def amqplain(table: dict) -> bytes:
    """As py-amqp / kombu send it: a field table without its 4-byte length prefix."""
    return pencode.field_table(table)[4:]


def table_raw(items) -> bytes:
    return b"".join(bytes([len(k)]) + k + letter + raw for k, letter, raw in items)


def longstr(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


# --------------------------------------------------------------------------- parsing


def test_mechanisms():
    assert MECHANISMS == ("PLAIN", "AMQPLAIN")


@pytest.mark.parametrize("response", [b"\x00guest\x00guest", "\x00guest\x00guest", bytearray(b"\x00guest\x00guest")])
def test_plain_forms(response):
    assert parse_response("PLAIN", response) == ("guest", "guest")


def test_plain_values():
    assert parse_response("PLAIN", b"\x00us\xc3\xa9r\x00p\xc3\xa4ss w0rd!") == ("usér", "päss w0rd!")
    assert parse_response("PLAIN", b"\x00user\x00") == ("user", "")
    assert parse_response("PLAIN", b"\x00\x00") == ("", "")
    # as pamqp hands over a longstr that is valid UTF-8: a str
    assert parse_response("PLAIN", "\x00usér\x00pw") == ("usér", "pw")


@pytest.mark.parametrize("response", [b"", None, b"guest", b"\x00guest", b"guestguest", b"\x00a\x00b\x00c",
                                      b"\x00\x00\x00", "\x00only-user"])
def test_plain_malformed(response):
    with pytest.raises(AuthError):
        parse_response("PLAIN", response)


def test_amqplain_as_py_amqp_sends_it():
    assert parse_response("AMQPLAIN", amqplain({"LOGIN": "guest", "PASSWORD": "guest"})) == ("guest", "guest")
    # pamqp gives the broker a str when the bytes are valid UTF-8
    raw = amqplain({"LOGIN": "usér", "PASSWORD": "p"})
    assert parse_response("AMQPLAIN", raw.decode("utf-8")) == ("usér", "p")
    assert parse_response("AMQPLAIN", bytearray(raw)) == ("usér", "p")


def test_amqplain_key_order_and_extra_keys():
    raw = table_raw([(b"PASSWORD", b"S", longstr(b"pw")), (b"X", b"I", struct.pack(">i", 1)),
                     (b"LOGIN", b"S", longstr(b"bob"))])
    assert parse_response("AMQPLAIN", raw) == ("bob", "pw")


def test_amqplain_non_utf8_values_do_not_crash():
    raw = table_raw([(b"LOGIN", b"S", longstr(b"u\xff")), (b"PASSWORD", b"S", longstr(b"\xfe"))])
    user, password = parse_response("AMQPLAIN", raw)
    assert user == "u\ufffd" and password == "\ufffd"


def test_amqplain_long_password_length_bytes_not_utf8():
    password = "p" * 200  # the longstr length 0x000000c8 is not valid UTF-8 on its own
    raw = amqplain({"LOGIN": "guest", "PASSWORD": password})
    assert parse_response("AMQPLAIN", raw) == ("guest", password)


@pytest.mark.parametrize("table", [{"LOGIN": "guest"}, {"PASSWORD": "guest"}, {}, {"login": "a", "password": "b"}])
def test_amqplain_missing_fields(table):
    with pytest.raises(AuthError):
        parse_response("AMQPLAIN", amqplain(table))


def test_amqplain_every_truncation_is_an_auth_error_or_a_login():
    raw = amqplain({"LOGIN": "guest", "PASSWORD": "guest"})
    for cut in range(len(raw)):
        try:
            result = parse_response("AMQPLAIN", raw[:cut])
        except AuthError:
            continue
        assert result[0] == "guest"  # a cut inside PASSWORD's value can still decode


@pytest.mark.parametrize("raw", [
    b"\x05LOGIN",  # key without a type
    b"\x05LOGINQ\x00",  # unknown field type
    b"\x05LOGINS\xff\xff\xff\xff",  # longstr length beyond the data
    b"\xffLOGIN",  # key length beyond the data
    b"\x05LOGINF\x00\x00\x00\x10\x00",  # nested table beyond the data
    b"\x05LOGINA\x00\x00\x01\x00",  # array beyond the data
    b"\x02\xff\xfeS\x00\x00\x00\x00",  # key not UTF-8
    b"\x05LOGINt",  # bool without its byte
    b"\x05LOGINl\x00\x00",  # long without its bytes
    b"\x05LOGIND\x02",  # decimal without its bytes
    b"\x00",
])
def test_amqplain_malformed(raw):
    with pytest.raises(AuthError):
        parse_response("AMQPLAIN", raw)


def test_amqplain_deeply_nested_table_is_an_auth_error():
    inner = b""
    for _ in range(5000):
        body = b"\x01kF" + struct.pack(">I", len(inner)) + inner
        inner = body
    with pytest.raises(AuthError):
        parse_response("AMQPLAIN", inner)


def test_random_garbage_only_ever_raises_auth_error():
    rng = random.Random(99)
    valid = amqplain({"LOGIN": "guest", "PASSWORD": "guest"})
    for i in range(3000):
        if i % 2:
            raw = rng.randbytes(rng.randint(0, 40))
        else:  # mutate a valid response
            raw = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            raw = bytes(raw)
        for mechanism in ("PLAIN", "AMQPLAIN"):
            try:
                user, password = parse_response(mechanism, raw)
            except AuthError:
                continue
            assert isinstance(user, str) and isinstance(password, str)


@pytest.mark.parametrize("mechanism", ["EXTERNAL", "plain", "CRAM-MD5", "", "RABBIT-CR-DEMO"])
def test_unsupported_mechanism(mechanism):
    with pytest.raises(AuthError):
        parse_response(mechanism, b"\x00guest\x00guest")


# --------------------------------------------------------------------------- credentials


def test_default_store_has_guest():
    store = UserStore()
    user = store.authenticate("PLAIN", b"\x00guest\x00guest", "127.0.0.1")
    assert isinstance(user, User) and user.name == "guest"
    assert user.tags == ("administrator",)


def test_password_is_salted_and_hashed():
    a, b = User("u", "pw"), User("u", "pw")
    assert a.password_hash != b"pw" and len(a.password_hash) == 32
    assert a.password_hash != b.password_hash  # per-user random salt (collision odds 2**-32)
    assert a.check("pw") and not a.check("pW") and not a.check("") and not a.check("pw ")


@pytest.mark.parametrize("mechanism,response", [
    ("PLAIN", b"\x00guest\x00wrong"),
    ("PLAIN", b"\x00guest\x00"),
    ("PLAIN", b"\x00nobody\x00guest"),
    ("PLAIN", b"\x00\x00guest"),
    ("PLAIN", b"\x00Guest\x00guest"),
    ("AMQPLAIN", amqplain({"LOGIN": "guest", "PASSWORD": "nope"})),
    ("AMQPLAIN", amqplain({"LOGIN": "ghost", "PASSWORD": "guest"})),
])
def test_bad_credentials(mechanism, response):
    store = UserStore()
    with pytest.raises(AuthError):
        store.authenticate(mechanism, response, "127.0.0.1")


def test_custom_users_and_add():
    store = UserStore({"alice": "s3cret", "bob": ""})
    assert "guest" not in store.users
    assert store.authenticate("PLAIN", b"\x00alice\x00s3cret", "10.0.0.1").name == "alice"
    assert store.authenticate("AMQPLAIN", amqplain({"LOGIN": "bob", "PASSWORD": ""}), "10.0.0.1").name == "bob"
    with pytest.raises(AuthError):
        store.authenticate("PLAIN", b"\x00guest\x00guest", "127.0.0.1")
    store.add("carol", "pw", tags=("monitoring",))
    assert store.authenticate("PLAIN", b"\x00carol\x00pw", "192.168.0.9").tags == ("monitoring",)
    store.add("alice", "new")  # replaces
    with pytest.raises(AuthError):
        store.authenticate("PLAIN", b"\x00alice\x00s3cret", None)
    assert store.authenticate("PLAIN", b"\x00alice\x00new", None).name == "alice"


def test_malformed_response_through_authenticate_is_auth_error():
    store = UserStore()
    for mechanism, response in (("PLAIN", b"junk"), ("AMQPLAIN", b"\xff"), ("EXTERNAL", b""),
                                ("AMQPLAIN", b"\x05LOGINS\xff\xff\xff\xff")):
        with pytest.raises(AuthError):
            store.authenticate(mechanism, response, "127.0.0.1")


# --------------------------------------------------------------------------- loopback_users


LOOPBACK = ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1", "::ffff:127.1.2.3",
            "::1%lo", None]
REMOTE = ["10.0.0.1", "::ffff:10.0.0.1", "192.168.1.10", "0.0.0.0", "::", "fe80::1", "fe80::1%eth0",
          "2001:db8::1", "8.8.8.8", "localhost", "example.com", "", "not-an-ip", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("host", LOOPBACK)
def test_is_loopback_true(host):
    assert is_loopback(host) is True


@pytest.mark.parametrize("host", REMOTE)
def test_is_loopback_false(host):
    assert is_loopback(host) is False


@pytest.mark.parametrize("host", LOOPBACK)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_guest_allowed_from_loopback(host, mechanism):
    response = b"\x00guest\x00guest" if mechanism == "PLAIN" else amqplain({"LOGIN": "guest", "PASSWORD": "guest"})
    assert UserStore().authenticate(mechanism, response, host).name == "guest"


@pytest.mark.parametrize("host", REMOTE)
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_guest_refused_from_remote(host, mechanism):
    response = b"\x00guest\x00guest" if mechanism == "PLAIN" else amqplain({"LOGIN": "guest", "PASSWORD": "guest"})
    with pytest.raises(AuthError) as info:
        UserStore().authenticate(mechanism, response, host)
    assert "localhost" in str(info.value)


def test_other_users_allowed_from_anywhere_and_loopback_users_configurable():
    store = UserStore({"guest": "guest", "app": "pw"})
    assert store.authenticate("PLAIN", b"\x00app\x00pw", "10.0.0.1").name == "app"
    open_store = UserStore(loopback_users=())
    assert open_store.authenticate("PLAIN", b"\x00guest\x00guest", "10.0.0.1").name == "guest"
    strict = UserStore({"guest": "guest", "app": "pw"}, loopback_users=("guest", "app"))
    with pytest.raises(AuthError):
        strict.authenticate("PLAIN", b"\x00app\x00pw", "::ffff:10.0.0.1")
    assert strict.authenticate("PLAIN", b"\x00app\x00pw", "::1").name == "app"


def test_wrong_password_from_remote_is_an_auth_error_too():
    with pytest.raises(AuthError):
        UserStore().authenticate("PLAIN", b"\x00guest\x00bad", "10.0.0.1")
