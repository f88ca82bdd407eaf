"""The access domain without HTTP: RabbitMQ's password hashes (auth.User), the user store's
persistence, permissions (permissions.py) and the vhost registry (vhost_registry.py) across
broker restarts."""
from __future__ import annotations

import base64
import hashlib

import pytest

from amqp_broker import Broker
from amqp_broker.args import Arguments
from amqp_broker.auth import MD5, SHA256, SHA512, AuthError, BadPasswordHash, User, UserStore, decode_password_hash
from amqp_broker.permissions import InvalidRegex, Permissions
from amqp_broker.storage import MemoryStore
from amqp_broker.vhost_registry import VHostMeta

# guest/guest as RabbitMQ 3.10 exports it (GET /api/users/guest on the reference)
RABBITMQ_GUEST_HASH = "2G59qnDUjA1sxs06AyaZeBaOUrLcXO+CQQ1s0rYXZtyCrpZ7"


def plain(user: str, password: str) -> bytes:
    return b"\x00" + user.encode() + b"\x00" + password.encode()


# -- password hashes ---------------------------------------------------------------------------

def test_rabbitmq_sha256_hash_checks_its_password():
    user = User.from_hash("guest", decode_password_hash(RABBITMQ_GUEST_HASH), SHA256, ("administrator",))
    assert user.check("guest") and not user.check("Guest")
    assert user.exported_hash == RABBITMQ_GUEST_HASH


def test_new_password_has_rabbitmq_format():
    user = User("u", "pw")
    raw = base64.b64decode(user.exported_hash)
    assert len(raw) == 36 and hashlib.sha256(raw[:4] + b"pw").digest() == raw[4:]
    assert user.hashing_algorithm == SHA256


@pytest.mark.parametrize("algorithm,digest", [(SHA512, hashlib.sha512), (MD5, hashlib.md5)])
def test_other_rabbitmq_algorithms_check_too(algorithm, digest):
    salt = b"\x00\xff\x10\x20"
    user = User.from_hash("u", salt + digest(salt + "pässword".encode()).digest(), algorithm)
    assert user.check("pässword") and not user.check("password")


def test_unknown_algorithm_is_kept_but_never_logs_in():
    salt = b"abcd"
    user = User.from_hash("u", salt + hashlib.sha256(salt + b"pw").digest(), "rabbit_password_hashing_nope")
    assert not user.check("pw")
    assert user.hashing_algorithm == "rabbit_password_hashing_nope"


def test_user_without_password_never_logs_in():
    store = UserStore({})
    store.add("cert-only", None, ())
    assert store.users["cert-only"].exported_hash == ""
    for password in ("", "x"):
        with pytest.raises(AuthError):
            store.authenticate("PLAIN", plain("cert-only", password), "127.0.0.1")


def test_bad_base64_hash():
    with pytest.raises(BadPasswordHash):
        decode_password_hash("abc")
    with pytest.raises(BadPasswordHash):
        decode_password_hash("ünicode")


async def test_user_store_writes_through_to_the_store():
    store = MemoryStore()
    users = UserStore({})
    users.attach_store(store)
    users.add("a", "pw", ("monitoring",))
    users.put(User.from_hash("b", decode_password_hash(RABBITMQ_GUEST_HASH), SHA512, ()))
    users.add("c", "pw", ())
    assert users.delete("c") and not users.delete("c")
    again = UserStore({})
    again.load(store.users())
    assert sorted(again.users) == ["a", "b"]
    assert again.authenticate("PLAIN", plain("a", "pw"), None).tags == ("monitoring",)
    assert again.users["b"].hashing_algorithm == SHA512
    assert again.users["b"].exported_hash == RABBITMQ_GUEST_HASH


# -- permissions -------------------------------------------------------------------------------

def test_permissions_set_list_delete_and_forget():
    store = MemoryStore()
    perms = Permissions()
    perms.attach_store(store)
    perms.set("u", "/", ".*", "^w", "")
    perms.set("u", "v2", "", "", "")
    perms.set("other", "/", "", "", "")
    assert [(p.vhost, p.user) for p in perms.list()] == [("/", "other"), ("/", "u"), ("v2", "u")]
    assert [p.vhost for p in perms.list(user="u")] == ["/", "v2"]
    assert [p.user for p in perms.list(vhost="/")] == ["other", "u"]
    assert perms.get("/", "u").write == "^w"
    with pytest.raises(InvalidRegex) as info:
        perms.set("u", "/", "(", "", "")
    assert (info.value.pattern, info.value.message, info.value.offset) == ("(", "missing )", 1)
    assert perms.get("/", "u").configure == ".*"  # unchanged
    assert perms.delete("v2", "u") and not perms.delete("v2", "u")
    assert sorted(store.permissions()) == [("other", "/", "", "", ""), ("u", "/", ".*", "^w", "")]
    perms.forget_user("u")
    perms.forget_vhost("/")
    assert perms.list() == []


# -- vhosts across restarts --------------------------------------------------------------------

async def test_first_start_gives_default_vhost_guest_and_permissions():
    store = MemoryStore()
    async with Broker(host="127.0.0.1", port=0, store=store) as broker:
        assert list(broker.vhosts) == ["/"]
        assert broker.vhost_registry.meta("/").description == "Default virtual host"
        perm = broker.permissions.get("/", "guest")
        assert (perm.configure, perm.write, perm.read) == (".*", ".*", ".*")
    assert [name for name, _meta in store.vhosts()] == ["/"]
    assert store.permissions() == [("guest", "/", ".*", ".*", ".*")]


async def test_vhosts_users_and_permissions_are_recovered():
    store = MemoryStore()
    async with Broker(host="127.0.0.1", port=0, store=store) as broker:
        assert broker.vhost_registry.put("extra", VHostMeta("about", ("a", "b"), True))
        assert not broker.vhost_registry.put("extra", VHostMeta("about it", ("a", "b"), True))
        broker.users.add("app", "pw", ("monitoring",))
        broker.permissions.set("app", "extra", "^app", "^app", "^app")
        broker.vhosts["extra"].declare_queue("q", False, True, False, False, Arguments.from_plain({}), None)
    async with Broker(host="127.0.0.1", port=0, store=store) as broker:
        assert sorted(broker.vhosts) == ["/", "extra"]
        assert broker.vhost_registry.meta("extra") == VHostMeta("about it", ("a", "b"), True)
        assert "q" in broker.vhosts["extra"].queues
        assert "amq.topic" in broker.vhosts["extra"].exchanges
        assert broker.users.authenticate("PLAIN", plain("app", "pw"), None).tags == ("monitoring",)
        assert broker.permissions.get("extra", "app").read == "^app"


async def test_deleted_vhost_stays_deleted_with_everything_in_it(tmp_path):
    async with Broker(host="127.0.0.1", port=0, data_dir=tmp_path) as broker:
        registry = broker.vhost_registry
        registry.put("doomed", VHostMeta())
        vhost = broker.vhosts["doomed"]
        vhost.declare_exchange("x", "topic", False, True, False, False, Arguments.from_plain({}))
        vhost.declare_queue("q", False, True, False, False, Arguments.from_plain({}), None)
        vhost.bind("x", "q", True, "k", {}, None)
        broker.policies.set("doomed", "p", ".*", {"max-length": 1})
        broker.permissions.set("guest", "doomed", ".*", ".*", ".*")
        assert registry.delete("doomed") and not registry.delete("doomed")
        assert "doomed" not in broker.vhosts
        assert broker.policies.list("doomed") == [] and broker.permissions.list(vhost="doomed") == []
    async with Broker(host="127.0.0.1", port=0, data_dir=tmp_path) as broker:
        assert list(broker.vhosts) == ["/"]
        assert broker.store.load().queues == [] and broker.store.policies() == []
        assert broker.permissions.list(vhost="doomed") == []
        broker.vhost_registry.put("doomed", VHostMeta())  # a new vhost of the same name is empty
        assert broker.vhosts["doomed"].queues == {}
