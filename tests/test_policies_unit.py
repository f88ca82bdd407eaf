"""Table-driven unit tests for amqp_broker.policies.

Expected texts are RabbitMQ's: rabbit_policies:validate_policy0/2, rabbit_mirror_queue_misc:
validate_policy/1 and the rabbit_mirror_queue_mode_* modules, rabbit_policy:validation/3 and
apply_to_validation/2, rabbit_parameter_validation:regex/2 and number/2, with ~p arguments
rendered as Erlang prints JSON-decoded terms (<<"lazy">>, null, true, 1.5, [1,2]).
Precedence follows rabbit_amqqueue_process:process_args_policy/1 and rabbit_policy:get_arg/3.
"""
from __future__ import annotations

import pytest

from amqp_broker.policies import (
    APPLY_TO,
    Policy,
    PolicyError,
    PolicyRegistry,
    effective_exchange_arguments,
    effective_queue_arguments,
    validate,
)

APPLY_TO_ERROR = ("apply-to '{}' unrecognised; should be one of: 'queues', 'classic_queues',  "
                  "'quorum_queues', 'streams', 'exchanges', or 'all'")
HA_MODE_NEEDED = "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown"


def error_of(definition, pattern=".*", priority=0, apply_to="all") -> str:
    with pytest.raises(PolicyError) as info:
        validate("p", pattern, definition, priority, apply_to)
    return str(info.value)


# -- valid definitions -----------------------------------------------------------------------

VALID = [
    {"message-ttl": 0},
    {"message-ttl": 60000},
    {"message-ttl": 315_360_000_001},  # no upper bound for the policy key (only for x-args)
    {"expires": 1},
    {"expires": 1800000},
    {"max-length": 0},
    {"max-length": 10},
    {"max-length-bytes": 0},
    {"max-length-bytes": 1 << 40},
    {"dead-letter-exchange": ""},
    {"dead-letter-exchange": "dlx"},
    {"dead-letter-routing-key": "rk"},
    {"dead-letter-routing-key": ""},
    {"overflow": "drop-head"},
    {"overflow": "reject-publish"},
    {"overflow": "reject-publish-dlx"},
    {"alternate-exchange": "ae"},
    {"queue-mode": "default"},
    {"queue-mode": "lazy"},
    {"max-in-memory-length": 0},
    {"max-in-memory-bytes": 5},
    {"delivery-limit": 3},
    {"max-age": "7D"},
    {"max-age": "1Y"},
    {"max-age": "30s"},
    {"max-segment-size": 1000},
    {"queue-leader-locator": "client-local"},
    {"queue-leader-locator": "least-leaders"},
    {"initial-cluster-size": 3},
    {"queue-master-locator": "min-masters"},
    {"queue-master-locator": "client-local"},
    {"queue-master-locator": "random"},
    {"ha-mode": "all"},
    {"ha-mode": "exactly", "ha-params": 1},
    {"ha-mode": "exactly", "ha-params": 2, "ha-sync-mode": "automatic"},
    {"ha-mode": "nodes", "ha-params": ["rabbit@a"]},
    {"ha-mode": "nodes", "ha-params": ["rabbit@a", "rabbit@b"]},
    {"ha-mode": "all", "ha-sync-mode": "manual"},
    {"ha-mode": "all", "ha-sync-batch-size": 1},
    {"ha-mode": "all", "ha-promote-on-shutdown": "when-synced"},
    {"ha-mode": "all", "ha-promote-on-shutdown": "always"},
    {"ha-mode": "all", "ha-promote-on-failure": "always"},
    {"ha-mode": "all", "ha-promote-on-failure": "when-synced"},
    {"ha-mode": "exactly", "ha-params": 2, "message-ttl": 5, "dead-letter-exchange": "d",
     "max-length": 1, "overflow": "reject-publish", "alternate-exchange": "x"},
]


@pytest.mark.parametrize("definition", VALID, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_valid_definition(definition):
    v = validate("p", ".*", definition, 0, "all")
    assert v.definition == definition
    assert (v.name, v.pattern, v.priority, v.apply_to) == ("p", ".*", 0, "all")


# -- invalid definitions: one row per key and failure ---------------------------------------

INVALID = [
    ({"message-ttl": -1}, "-1 is not a valid message TTL"),
    ({"message-ttl": 1.5}, "1.5 is not a valid message TTL"),
    ({"message-ttl": "100"}, '<<"100">> is not a valid message TTL'),
    ({"message-ttl": True}, "true is not a valid message TTL"),
    ({"message-ttl": None}, "null is not a valid message TTL"),
    ({"expires": 0}, "0 is not a valid queue expiry"),
    ({"expires": -5}, "-5 is not a valid queue expiry"),
    ({"expires": "1"}, '<<"1">> is not a valid queue expiry'),
    ({"max-length": -1}, "-1 is not a valid maximum length"),
    ({"max-length": 2.0}, "2.0 is not a valid maximum length"),
    ({"max-length-bytes": -1}, "-1 is not a valid maximum length in bytes"),
    ({"max-length-bytes": [1]}, "[1] is not a valid maximum length in bytes"),
    ({"dead-letter-exchange": 1}, "1 is not a valid dead letter exchange name"),
    ({"dead-letter-exchange": None}, "null is not a valid dead letter exchange name"),
    ({"dead-letter-routing-key": False}, "false is not a valid dead letter routing key"),
    ({"alternate-exchange": {"a": 1}}, '#{<<"a">> => 1} is not a valid alternate exchange name'),
    ({"overflow": "drop-tail"}, '<<"drop-tail">> is not a valid overflow value'),
    ({"overflow": 1}, "1 is not a valid overflow value"),
    ({"queue-mode": "eager"}, '<<"eager">> is not a valid queue-mode value'),
    ({"max-in-memory-length": -1}, "-1 is not a valid maximum memory in bytes"),
    ({"max-in-memory-bytes": -1}, "-1 is not a valid maximum memory in bytes"),
    ({"delivery-limit": -1}, "-1 is not a valid delivery limit"),
    ({"max-age": "7W"}, '<<"7W">> is not a valid max age'),
    ({"max-age": "0D"}, '<<"0D">> is not a valid max age'),
    ({"max-age": "D"}, '<<"D">> is not a valid max age'),
    ({"max-age": 7}, "7 is not a valid max age"),
    ({"max-segment-size": -1}, "-1 is not a valid segment size"),
    ({"queue-leader-locator": "balanced"}, '<<"balanced">> is not a valid queue leader locator value'),
    ({"initial-cluster-size": -1}, "-1 is not a valid cluster size"),
    ({"queue-master-locator": "nearest"}, '<<"nearest">> invalid queue-master-locator value'),
    # ha-*: rabbit_mirror_queue_misc + rabbit_mirror_queue_mode_*
    ({"ha-params": 2}, HA_MODE_NEEDED),
    ({"ha-sync-mode": "automatic"}, HA_MODE_NEEDED),
    ({"ha-sync-batch-size": 5}, HA_MODE_NEEDED),
    ({"ha-promote-on-shutdown": "always"}, HA_MODE_NEEDED),
    ({"ha-promote-on-failure": "always"}, HA_MODE_NEEDED),
    ({"ha-mode": "some"}, '<<"some">> is not a valid ha-mode value'),
    ({"ha-mode": 1}, "1 is not a valid ha-mode value"),
    ({"ha-mode": "all", "ha-params": 2}, 'ha-mode="all" does not take parameters'),
    ({"ha-mode": "all", "ha-params": None}, 'ha-mode="all" does not take parameters'),
    ({"ha-mode": "exactly"}, 'ha-mode="exactly" takes an integer, none given'),
    ({"ha-mode": "exactly", "ha-params": 0}, 'ha-mode="exactly" takes an integer, 0 given'),
    ({"ha-mode": "exactly", "ha-params": -2}, 'ha-mode="exactly" takes an integer, -2 given'),
    ({"ha-mode": "exactly", "ha-params": "2"}, 'ha-mode="exactly" takes an integer, <<"2">> given'),
    ({"ha-mode": "exactly", "ha-params": 2.0}, 'ha-mode="exactly" takes an integer, 2.0 given'),
    ({"ha-mode": "exactly", "ha-params": None}, 'ha-mode="exactly" takes an integer, null given'),
    ({"ha-mode": "nodes"}, 'ha-mode="nodes" takes a list, none given'),
    ({"ha-mode": "nodes", "ha-params": "rabbit@a"}, 'ha-mode="nodes" takes a list, <<"rabbit@a">> given'),
    ({"ha-mode": "nodes", "ha-params": []}, 'ha-mode="nodes" list must be non-empty'),
    ({"ha-mode": "nodes", "ha-params": ["a", 1, None]}, 'ha-mode="nodes" takes a list of strings, [1,null] was not a string'),
    ({"ha-mode": "all", "ha-sync-mode": "auto"}, 'ha-sync-mode must be "manual" or "automatic", got <<"auto">>'),
    ({"ha-mode": "all", "ha-sync-batch-size": 0}, "ha-sync-batch-size takes an integer greater than 0, 0 given"),
    ({"ha-mode": "all", "ha-sync-batch-size": "9"}, 'ha-sync-batch-size takes an integer greater than 0, <<"9">> given'),
    ({"ha-mode": "all", "ha-promote-on-shutdown": "never"}, 'ha-promote-on-shutdown must be "always" or "when-synced", got <<"never">>'),
    ({"ha-mode": "all", "ha-promote-on-failure": "never"}, 'ha-promote-on-failure must be "always" or "when-synced", got <<"never">>'),
    # the first failing ha check wins: mode, params, sync-mode, batch size, promote x2
    ({"ha-mode": "exactly", "ha-params": 0, "ha-sync-mode": "x"}, 'ha-mode="exactly" takes an integer, 0 given'),
    ({"ha-mode": "all", "ha-sync-mode": "x", "ha-promote-on-failure": "y"}, 'ha-sync-mode must be "manual" or "automatic", got <<"x">>'),
    # definition shape
    ({}, "no policy provided"),
    ([], "definition must be a dictionary: []"),
    ("{}", 'definition must be a dictionary: <<"{}">>'),
    (None, "definition must be a dictionary: null"),
    # keys no validator claims, sorted as Erlang's map order, reported as {Key,Value} tuples
    ({"foo": 1}, '[{<<"foo">>,1}] are not recognised policy settings'),
    ({"x-message-ttl": 5}, '[{<<"x-message-ttl">>,5}] are not recognised policy settings'),
    ({"zeta": "z", "alpha": [1, 2], "message-ttl": 5},
     '[{<<"alpha">>,[1,2]},{<<"zeta">>,<<"z">>}] are not recognised policy settings'),
    ({"federation-upstream-set": "all"},  # plugin key: the plugin is not enabled here
     '[{<<"federation-upstream-set">>,<<"all">>}] are not recognised policy settings'),
    # a failing known key is reported instead of (before) unknown ones
    ({"foo": 1, "max-length": -1}, "-1 is not a valid maximum length"),
    ({"foo": 1, "ha-params": 1}, HA_MODE_NEEDED),
    # several bad core keys: the first in sorted key order
    ({"overflow": "x", "expires": 0, "message-ttl": -1}, "0 is not a valid queue expiry"),
    # core keys are checked before ha-* keys
    ({"ha-params": 1, "message-ttl": -1}, "-1 is not a valid message TTL"),
]


@pytest.mark.parametrize("definition,message", INVALID, ids=[m for _, m in INVALID])
def test_invalid_definition(definition, message):
    assert error_of(definition) == message


def test_error_is_a_value_error_with_errors_list():
    with pytest.raises(ValueError) as info:
        validate("p", ".*", {"expires": 0}, 0, "all")
    assert info.value.errors == ["0 is not a valid queue expiry"]


# -- pattern, apply-to, priority -------------------------------------------------------------

@pytest.mark.parametrize("apply_to", APPLY_TO)
def test_valid_apply_to(apply_to):
    assert validate("p", ".*", {"max-length": 1}, 0, apply_to).apply_to == apply_to


@pytest.mark.parametrize("apply_to", ["both", "queue", "Exchanges", "", "classic"])
def test_invalid_apply_to(apply_to):
    assert error_of({"max-length": 1}, apply_to=apply_to) == APPLY_TO_ERROR.format(apply_to)


def test_defaults_for_none_priority_and_apply_to():
    v = validate("p", ".*", {"max-length": 1}, None, None)
    assert (v.priority, v.apply_to) == (0, "all")


@pytest.mark.parametrize("pattern,reason", [
    ("(", '{"missing ), unterminated subpattern",0}'),
    ("a[", '{"unterminated character set",1}'),
    ("*a", '{"nothing to repeat",0}'),
])
def test_invalid_pattern(pattern, reason):
    assert error_of({"max-length": 1}, pattern=pattern) == (
        f"pattern should be regular expression but is invalid: {reason}")


@pytest.mark.parametrize("pattern,shown", [(5, "5"), (None, "null"), (["a"], '[<<"a">>]')])
def test_pattern_must_be_a_string(pattern, shown):
    assert error_of({"max-length": 1}, pattern=pattern) == f"pattern should be a binary but was {shown}"


@pytest.mark.parametrize("priority,expected", [(0, 0), (10, 10), (-3, -3), ("7", 7), ("+2", 2),
                                               ("-4", -4), (b"5", 5), (1.5, 1.5)])
def test_valid_priority(priority, expected):
    assert validate("p", ".*", {"max-length": 1}, priority, "all").priority == expected


@pytest.mark.parametrize("priority,message", [
    ("high", '<<"high">> priority must be a number'),
    ("", "<<>> priority must be a number"),  # io_lib prints an empty binary bare
    (" 5", '<<" 5">> priority must be a number'),
    ([1], "priority should be a number, actually was [1]"),
    (True, "priority should be a number, actually was true"),
    ({"a": 1}, 'priority should be a number, actually was #{<<"a">> => 1}'),
])
def test_invalid_priority(priority, message):
    assert error_of({"max-length": 1}, priority=priority) == message


def test_unparseable_priority_text_stops_before_other_checks():
    # rabbit_policy:parse_set/8 coerces the priority before anything else is validated
    assert error_of({}, pattern="(", priority="x", apply_to="bad") == '<<"x">> priority must be a number'


def test_all_errors_in_rabbitmq_order():
    # proplist/3 accumulates in reverse: definition, apply-to, pattern, priority
    with pytest.raises(PolicyError) as info:
        validate("p", 3, {"foo": 1}, [2], "bad")
    assert info.value.errors == [
        '[{<<"foo">>,1}] are not recognised policy settings',
        APPLY_TO_ERROR.format("bad"),
        "pattern should be a binary but was 3",
        "priority should be a number, actually was [2]",
    ]
    assert str(info.value) == "; ".join(info.value.errors)  # one line


def test_definition_is_copied():
    definition = {"ha-mode": "nodes", "ha-params": ["a"]}
    store = PolicyRegistry()
    policy = store.set("/", "p", ".*", definition)
    definition["ha-params"].append("b")
    definition["max-length"] = 1
    assert policy.definition == {"ha-mode": "nodes", "ha-params": ["a"]}


# -- matching --------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern,name,expected", [
    (".*", "anything", True),
    (".*", "", True),                # the default exchange's empty name too
    ("", "q", True),
    ("^orders\\.", "orders.created", True),
    ("^orders\\.", "my.orders.created", False),
    ("orders", "my.orders.created", True),   # unanchored: re:run finds it anywhere
    ("created$", "orders.created", True),
    ("created$", "orders.created.x", False),
    ("^q$", "q", True),
    ("^q$", "qq", False),
    ("ttl|dlx", "with-dlx", True),
    ("^amq\\.", "amq.topic", True),  # no exception for amq.* resources
    (".*", "amq.gen-JzTY20BRgKO-HjmUJj0wLg", True),  # nor for server-named queues
    ("[0-9]+", "q-12", True),
    ("[0-9]+", "q-x", False),
    ("Q", "q", False),               # case-sensitive
])
def test_pattern_matching(pattern, name, expected):
    policy = Policy("/", "p", pattern, {"max-length": 1})
    assert policy.matches("queue", name) is expected
    assert policy.matches("exchange", name) is expected


@pytest.mark.parametrize("apply_to,queue,exchange", [
    ("all", True, True),
    ("queues", True, False),
    ("classic_queues", True, False),
    ("quorum_queues", False, False),  # our queues are all classic
    ("streams", False, False),
    ("exchanges", False, True),
])
def test_apply_to_matching(apply_to, queue, exchange):
    policy = Policy("/", "p", ".*", {"max-length": 1}, 0, apply_to)
    assert policy.matches("queue", "x") is queue
    assert policy.matches("exchange", "x") is exchange


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        Policy("/", "p", ".*", {"max-length": 1}).matches("binding", "x")


# -- store: effective policy -----------------------------------------------------------------

def names(policies):
    return [p.name for p in policies]


@pytest.mark.parametrize("policies,kind,target,expected", [
    # (name, pattern, priority, apply-to) rows; the effective policy's name or None
    ([("a", ".*", 0, "all")], "queue", "q", "a"),
    ([("a", "^x", 0, "all")], "queue", "q", None),
    ([("low", ".*", 1, "all"), ("high", ".*", 5, "all")], "queue", "q", "high"),
    ([("high", ".*", 5, "all"), ("low", ".*", 1, "all")], "queue", "q", "high"),
    ([("neg", ".*", -1, "all"), ("zero", ".*", 0, "all")], "queue", "q", "zero"),
    # the higher priority wins only if it matches
    ([("low", ".*", 1, "all"), ("high", "^z", 5, "all")], "queue", "q", "low"),
    # and only if it applies to that kind
    ([("low", ".*", 1, "all"), ("high", ".*", 5, "exchanges")], "queue", "q", "low"),
    ([("low", ".*", 1, "all"), ("high", ".*", 5, "queues")], "exchange", "x", "low"),
    ([("q", ".*", 0, "quorum_queues")], "queue", "q", None),
    # ties: RabbitMQ's pick is undefined; ours is the smallest name, whatever the set order
    ([("b", ".*", 3, "all"), ("a", ".*", 3, "all")], "queue", "q", "a"),
    ([("a", ".*", 3, "all"), ("b", ".*", 3, "all")], "queue", "q", "a"),
    ([("c", ".*", 3, "all"), ("b", ".*", 3, "queues"), ("z", ".*", 4, "exchanges")], "queue", "q", "b"),
])
def test_effective(policies, kind, target, expected):
    store = PolicyRegistry()
    for name, pattern, priority, apply_to in policies:
        store.set("/", name, pattern, {"max-length": 1}, priority, apply_to)
    result = store.effective("/", kind, target)
    assert (result.name if result else None) == expected


def test_effective_is_per_vhost():
    store = PolicyRegistry()
    store.set("v1", "p", ".*", {"max-length": 1})
    assert store.effective("v1", "queue", "q").vhost == "v1"
    assert store.effective("v2", "queue", "q") is None
    assert store.effective("/", "queue", "q") is None


def test_set_replaces_same_name():
    store = PolicyRegistry()
    first = store.set("/", "p", "^a", {"max-length": 1}, 1, "queues")
    second = store.set("/", "p", "^b", {"message-ttl": 5}, 2, "exchanges")
    assert store.get("/", "p") == second != first
    assert store.list() == [second]
    assert store.effective("/", "queue", "a") is None
    assert store.effective("/", "exchange", "b") == second


def test_failed_set_keeps_the_old_policy():
    store = PolicyRegistry()
    old = store.set("/", "p", ".*", {"max-length": 1})
    with pytest.raises(PolicyError):
        store.set("/", "p", ".*", {"max-length": -1})
    assert store.get("/", "p") == old


def test_delete_get_list():
    store = PolicyRegistry()
    store.set("/", "b", ".*", {"max-length": 1}, 5)
    store.set("/", "a", ".*", {"max-length": 1}, 5)
    store.set("/", "c", ".*", {"max-length": 1}, 1)
    store.set("v", "a", ".*", {"max-length": 1}, 0)
    # lowest priority first (rabbit_policy:sort_by_priority/1), name breaks ties, vhosts sorted
    assert [(p.vhost, p.name) for p in store.list()] == [("/", "c"), ("/", "a"), ("/", "b"), ("v", "a")]
    assert names(store.list("/")) == ["c", "a", "b"]
    assert store.list("nope") == []
    assert store.get("v", "a").vhost == "v"
    assert store.get("v", "b") is None
    assert store.delete("/", "a") is True
    assert store.delete("/", "a") is False
    assert store.delete("nope", "a") is False
    assert store.get("/", "a") is None
    assert store.effective("/", "queue", "q").name == "b"
    assert store.delete("v", "a") is True
    assert names(store.list()) == ["c", "b"]


def test_policy_is_frozen_and_hashable():
    policy = PolicyRegistry().set("/", "p", ".*", {"max-length": 1})
    with pytest.raises(AttributeError):
        policy.priority = 3
    assert policy in {policy}


# -- effective arguments ---------------------------------------------------------------------

NO = object()  # "absent" marker for the table

QUEUE_PRECEDENCE = [
    # (policy key, argument value, policy value, effective x-value)
    # the minimum wins
    ("message-ttl", 1000, 5000, 1000),
    ("message-ttl", 5000, 1000, 1000),
    ("message-ttl", 0, 1000, 0),
    ("message-ttl", NO, 1000, 1000),
    ("expires", 60000, 10000, 10000),
    ("expires", 10000, 60000, 10000),
    ("expires", NO, 10000, 10000),
    ("max-length", 10, 5, 5),
    ("max-length", 5, 10, 5),
    ("max-length", 0, 10, 0),
    ("max-length", NO, 7, 7),
    ("max-length-bytes", 100, 1000, 100),
    ("max-length-bytes", 1000, 100, 100),
    ("max-length-bytes", NO, 100, 100),
    # the argument wins
    ("dead-letter-exchange", "arg-dlx", "pol-dlx", "arg-dlx"),
    ("dead-letter-exchange", "", "pol-dlx", ""),
    ("dead-letter-exchange", NO, "pol-dlx", "pol-dlx"),
    ("dead-letter-routing-key", "arg-rk", "pol-rk", "arg-rk"),
    ("dead-letter-routing-key", NO, "pol-rk", "pol-rk"),
    ("overflow", "drop-head", "reject-publish", "drop-head"),
    ("overflow", "reject-publish", "drop-head", "reject-publish"),
    ("overflow", NO, "reject-publish-dlx", "reject-publish-dlx"),
    ("queue-mode", "default", "lazy", "default"),
    ("queue-mode", NO, "lazy", "lazy"),
]


@pytest.mark.parametrize("key,arg,pol,expected", QUEUE_PRECEDENCE)
def test_queue_precedence(key, arg, pol, expected):
    arguments = {} if arg is NO else {"x-" + key: arg}
    policy = Policy("/", "p", ".*", {key: pol})
    result = effective_queue_arguments(arguments, policy)
    assert result == {"x-" + key: expected}


@pytest.mark.parametrize("key,value", [("message-ttl", 5), ("max-length", 3), ("dead-letter-exchange", "d")])
def test_argument_only(key, value):
    arguments = {"x-" + key: value}
    assert effective_queue_arguments(arguments, None) == arguments
    assert effective_queue_arguments(arguments, Policy("/", "p", ".*", {"alternate-exchange": "ae"})) == arguments


def test_queue_arguments_combined_and_untouched():
    arguments = {"x-message-ttl": 9000, "x-max-priority": 10, "x-single-active-consumer": True,
                 "x-dead-letter-exchange": "mine", "x-queue-type": "classic"}
    policy = Policy("/", "p", ".*", {
        "message-ttl": 3000, "dead-letter-exchange": "theirs", "dead-letter-routing-key": "rk",
        "max-length": 4, "ha-mode": "exactly", "ha-params": 2, "ha-sync-mode": "automatic",
        "alternate-exchange": "ae", "delivery-limit": 3, "queue-master-locator": "random"})
    result = effective_queue_arguments(arguments, policy)
    assert result == {"x-message-ttl": 3000, "x-max-priority": 10, "x-single-active-consumer": True,
                      "x-dead-letter-exchange": "mine", "x-queue-type": "classic",
                      "x-dead-letter-routing-key": "rk", "x-max-length": 4}
    assert arguments["x-message-ttl"] == 9000  # the input dict is not modified
    assert effective_queue_arguments(None, None) == {}


@pytest.mark.parametrize("arguments,definition,expected", [
    ({"alternate-exchange": "mine"}, {"alternate-exchange": "theirs"}, {"alternate-exchange": "mine"}),
    ({}, {"alternate-exchange": "theirs"}, {"alternate-exchange": "theirs"}),
    ({"alternate-exchange": "mine"}, {"message-ttl": 5}, {"alternate-exchange": "mine"}),
    ({"other": 1}, {"alternate-exchange": "ae", "max-length": 1}, {"other": 1, "alternate-exchange": "ae"}),
])
def test_exchange_precedence(arguments, definition, expected):
    before = dict(arguments)
    assert effective_exchange_arguments(arguments, Policy("/", "p", ".*", definition)) == expected
    assert arguments == before
    assert effective_exchange_arguments(arguments, None) == arguments
