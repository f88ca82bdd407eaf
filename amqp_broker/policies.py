"""Policies: validation, matching and precedence, as RabbitMQ 3.10 does them. Pure: no I/O.

Sources (rabbitmq-server, deps/rabbit/src): rabbit_policy.erl (matching, priority sort, apply-to,
definition shape), rabbit_policies.erl (per-key validators), rabbit_mirror_queue_misc.erl and
rabbit_mirror_queue_mode_{all,exactly,nodes}.erl (ha-* keys), rabbit_queue_location_validator.erl
(queue-master-locator), rabbit_parameter_validation.erl (pattern, priority),
rabbit_amqqueue_process.erl process_args_policy/1 (policy vs argument precedence).

Error texts are RabbitMQ's format strings with their ~p arguments rendered as Erlang prints
JSON-decoded terms (strings are binaries: <<"lazy">>), so messages read exactly like
`rabbitmqctl set_policy` output after its "Validation failed" header.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from .erlang_terms import erl_charlist, erl_json

APPLY_TO = ("all", "exchanges", "queues", "classic_queues", "quorum_queues", "streams")
# what each apply-to value reaches; our queues are all classic, so quorum_queues and streams
# policies are valid (RabbitMQ accepts them) but never match anything here
_QUEUE_APPLY_TO = frozenset({"all", "queues", "classic_queues"})
_EXCHANGE_APPLY_TO = frozenset({"all", "exchanges"})


class PolicyError(ValueError):
    """A rejected policy. RabbitMQ collects every failing field (rabbit_runtime_parameters
    flatten_errors/1) and prints one per line; we join them with '; ' to keep one line."""

    def __init__(self, errors: list[str] | str):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors))


# -- definition validators -------------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true is an atom, not 1


def _int_at_least(minimum: int, what: str):
    def check(v):
        return None if _is_int(v) and v >= minimum else f"{erl_json(v)} is not a valid {what}"
    return check


def _string(what: str):
    def check(v):
        return None if isinstance(v, str) else f"{erl_json(v)} is not a valid {what}"
    return check


def _one_of(values, what: str):
    def check(v):
        return None if isinstance(v, str) and v in values else f"{erl_json(v)} is not a valid {what}"
    return check


_MAX_AGE = re.compile(r"([0-9]*)(.*)", re.S)


def _max_age(v):
    # rabbit_amqqueue:check_max_age/1: a positive count and one unit of Y M D h m s
    m = _MAX_AGE.fullmatch(v) if isinstance(v, str) else None
    if m and m.group(1) and int(m.group(1)) > 0 and m.group(2) in ("Y", "M", "D", "h", "m", "s"):
        return None
    return f"{erl_json(v)} is not a valid max age"


# rabbit_policies:validate_policy0/2, key by key. Its fold visits the definition in sorted key
# order (JSON objects decode to maps) and stops at the first failure.
_CORE = {
    "alternate-exchange": _string("alternate exchange name"),
    "dead-letter-exchange": _string("dead letter exchange name"),
    "dead-letter-routing-key": _string("dead letter routing key"),
    # only >= 0 here: the 10-year cap (rabbit_misc:check_expiry) applies to x-arguments only
    "message-ttl": _int_at_least(0, "message TTL"),
    "expires": _int_at_least(1, "queue expiry"),
    "max-length": _int_at_least(0, "maximum length"),
    "max-length-bytes": _int_at_least(0, "maximum length in bytes"),
    # RabbitMQ's own (copy-pasted) text for both in-memory limits
    "max-in-memory-length": _int_at_least(0, "maximum memory in bytes"),
    "max-in-memory-bytes": _int_at_least(0, "maximum memory in bytes"),
    "queue-mode": _one_of(("default", "lazy"), "queue-mode value"),
    "overflow": _one_of(("drop-head", "reject-publish", "reject-publish-dlx"), "overflow value"),
    "delivery-limit": _int_at_least(0, "delivery limit"),
    "max-age": _max_age,
    "queue-leader-locator": _one_of(("client-local", "random", "least-leaders"),
                                    "queue leader locator value"),
    "initial-cluster-size": _int_at_least(0, "cluster size"),
    "max-segment-size": _int_at_least(0, "segment size"),
}
_LOCATORS = ("min-masters", "client-local", "random")  # rabbit_queue_master_locator types
HA_KEYS = ("ha-mode", "ha-params", "ha-sync-mode", "ha-sync-batch-size",
           "ha-promote-on-shutdown", "ha-promote-on-failure")


def _validate_master_locator(value) -> str | None:
    # rabbit_queue_location_validator:validate_policy/1
    return None if value in _LOCATORS else f"{erl_json(value)} invalid queue-master-locator value"


def _validate_ha(defn: dict) -> str | None:
    """rabbit_mirror_queue_misc:validate_policy/1: all six keys checked together, first error
    wins, in this order: mode, params (by the mode's module), sync mode, batch, promote x2."""
    present = {k: defn[k] for k in HA_KEYS if k in defn}
    if not present:
        return None
    if "ha-mode" not in present:
        return "ha-mode must be specified to specify ha-params, ha-sync-mode or ha-promote-on-shutdown"
    mode, params = present["ha-mode"], present.get("ha-params")
    missing = "ha-params" not in present
    if mode not in ("all", "exactly", "nodes"):
        return f"{erl_json(mode)} is not a valid ha-mode value"
    if mode == "all" and not missing:
        return 'ha-mode="all" does not take parameters'
    # a missing ha-params reaches the mode module as the atom none
    shown = "none" if missing else erl_json(params)
    if mode == "exactly" and not (_is_int(params) and params > 0):
        return f'ha-mode="exactly" takes an integer, {shown} given'
    if mode == "nodes":
        if not isinstance(params, list):
            return f'ha-mode="nodes" takes a list, {shown} given'
        if not params:
            return 'ha-mode="nodes" list must be non-empty'
        bad = [n for n in params if not isinstance(n, str)]
        if bad:
            return f'ha-mode="nodes" takes a list of strings, {erl_json(bad)} was not a string'
    for key, allowed, text in (
        ("ha-sync-mode", ("manual", "automatic"), 'ha-sync-mode must be "manual" or "automatic"'),
        ("ha-sync-batch-size", None, None),
        ("ha-promote-on-shutdown", ("always", "when-synced"),
         'ha-promote-on-shutdown must be "always" or "when-synced"'),
        ("ha-promote-on-failure", ("always", "when-synced"),
         'ha-promote-on-failure must be "always" or "when-synced"'),
    ):
        if key not in present:
            continue
        value = present[key]
        if allowed is None:
            if not (_is_int(value) and value > 0):
                return f"ha-sync-batch-size takes an integer greater than 0, {erl_json(value)} given"
        elif value not in allowed:
            return f"{text}, got {erl_json(value)}"
    return None


def _validate_definition(defn) -> str | None:
    """rabbit_policy:validation/3 + validation0/2: each validator module sees its own keys;
    keys no module claims are reported only when every module passed."""
    if not isinstance(defn, dict):
        return f"definition must be a dictionary: {erl_json(defn)}"
    if not defn:
        return "no policy provided"
    keys = sorted(defn, key=lambda k: (not isinstance(k, str), str(k)))
    # Module order is a hash-set order in RabbitMQ (proplists:get_keys/1); ours is fixed:
    # core keys, then queue-master-locator, then ha-*.
    for key in keys:
        check = _CORE.get(key) if isinstance(key, str) else None
        if check is not None and (error := check(defn[key])) is not None:
            return error
    if "queue-master-locator" in defn and (error := _validate_master_locator(defn["queue-master-locator"])):
        return error
    if (error := _validate_ha(defn)) is not None:
        return error
    unknown = [(k, defn[k]) for k in keys
               if not (isinstance(k, str) and (k in _CORE or k in HA_KEYS or k == "queue-master-locator"))]
    if unknown:
        return f"{erl_json(unknown)} are not recognised policy settings"
    return None


# -- whole-policy validation -----------------------------------------------------------------

class ValidatedPolicy(NamedTuple):
    name: str
    pattern: str
    definition: dict
    priority: int
    apply_to: str


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")


def validate(name: str, pattern: str, definition: dict, priority=0, apply_to: str = "all") -> ValidatedPolicy:
    """Check a policy as `rabbitmqctl set_policy` / PUT /api/policies would; returns the
    normalised fields or raises PolicyError with RabbitMQ's text(s)."""
    if priority is None:
        priority = 0  # rabbit_policy:set/8 defaults an undefined priority and apply-to
    if apply_to is None:
        apply_to = "all"
    if isinstance(priority, (str, bytes)):
        # rabbit_policy:parse_set/8 coerces the CLI's text first and stops at once if it fails
        text = priority.decode("utf-8", "replace") if isinstance(priority, bytes) else priority
        if not _INTEGER_TEXT.fullmatch(text):
            raise PolicyError(f"{erl_json(priority)} priority must be a number")
        priority = int(text)
    errors = []
    # rabbit_parameter_validation:proplist/3 prepends each result, so RabbitMQ lists them in
    # reverse constraint order: definition, apply-to, pattern, priority
    if (error := _validate_definition(definition)) is not None:
        errors.append(error)
    if apply_to not in APPLY_TO:
        errors.append(f"apply-to '{apply_to}' unrecognised; should be one of: 'queues', "
                      # the double space is RabbitMQ's (two concatenated literals)
                      "'classic_queues',  'quorum_queues', 'streams', 'exchanges', or 'all'")
    if not isinstance(pattern, str):
        errors.append(f"pattern should be a binary but was {erl_json(pattern)}")
    else:
        try:
            re.compile(pattern)
        except re.error as exc:
            # RabbitMQ shows re:compile's {ErrorString, Offset}; PCRE's wording differs from
            # Python's, so the reason text is Python's in the same shape
            errors.append(f"pattern should be regular expression but is invalid: "
                          f"{{{erl_charlist(exc.msg)},{exc.pos or 0}}}")
    # rabbit_parameter_validation:number/2 accepts any number (floats too)
    if not isinstance(priority, (int, float)) or isinstance(priority, bool):
        errors.append(f"priority should be a number, actually was {erl_json(priority)}")
    if errors:
        raise PolicyError(errors)
    return ValidatedPolicy(name, pattern, _copy(definition), priority, apply_to)


def _copy(value):
    # a private deep copy, so a caller mutating its dict cannot change a stored policy
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclass(frozen=True)
class Policy:
    vhost: str
    name: str
    pattern: str
    definition: dict = field(hash=False)  # a dict: keep the dataclass hashable without it
    priority: int = 0
    apply_to: str = "all"
    _regex: re.Pattern = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        object.__setattr__(self, "_regex", re.compile(self.pattern))

    def matches(self, kind: str, name: str) -> bool:
        """rabbit_policy:matches/3: apply-to fits the kind, and the pattern is found anywhere in
        the name (re:run, unanchored). There is no exception for amq.* names, exclusive or
        server-named queues: a policy applies to them all (only mirroring skips exclusive
        queues, rabbit_mirror_queue_misc:is_mirrored/1)."""
        if kind == "queue":
            allowed = _QUEUE_APPLY_TO
        elif kind == "exchange":
            allowed = _EXCHANGE_APPLY_TO
        else:
            raise ValueError(f"kind must be 'queue' or 'exchange', not {kind!r}")
        return self.apply_to in allowed and self._regex.search(name) is not None


class PolicyRegistry:
    """The policies of every vhost, validated and matched, in memory only. Applying them to
    queues and exchanges, and persisting them, is PolicyService's job (policy_service.py)."""

    def __init__(self):
        self._by_vhost: dict[str, dict[str, Policy]] = {}

    def set(self, vhost: str, name: str, pattern: str, definition: dict, priority=0,
            apply_to: str = "all") -> Policy:
        v = validate(name, pattern, definition, priority, apply_to)
        policy = Policy(vhost, v.name, v.pattern, v.definition, v.priority, v.apply_to)
        self._by_vhost.setdefault(vhost, {})[name] = policy  # same name: replaced
        return policy

    def delete(self, vhost: str, name: str) -> bool:
        policies = self._by_vhost.get(vhost)
        if not policies or name not in policies:
            return False
        del policies[name]
        if not policies:
            del self._by_vhost[vhost]
        return True

    def get(self, vhost: str, name: str) -> Policy | None:
        return self._by_vhost.get(vhost, {}).get(name)

    def list(self, vhost: str | None = None) -> list[Policy]:
        """Lowest priority first, as rabbit_policy:list_formatted/1 (sort_by_priority/1)
        returns them to `rabbitmqctl list_policies` and GET /api/policies; name breaks ties."""
        vhosts = sorted(self._by_vhost) if vhost is None else [vhost]
        out: list[Policy] = []
        for vh in vhosts:
            out.extend(sorted(self._by_vhost.get(vh, {}).values(), key=lambda p: (p.priority, p.name)))
        return out

    def effective(self, vhost: str, kind: str, name: str) -> Policy | None:
        """The one policy that applies (rabbit_policy:match/2): the highest priority among
        the matching ones. For equal priorities RabbitMQ's pick is arbitrary (the order the
        runtime-parameter table returns them; its docs call it "undeterministic"); ours is
        deterministic: the lexicographically smallest name."""
        best = None
        for policy in self._by_vhost.get(vhost, {}).values():
            if policy.matches(kind, name) and (
                best is None
                or policy.priority > best.priority
                or (policy.priority == best.priority and policy.name < best.name)
            ):
                best = policy
        return best


# -- precedence between a policy and the declared arguments ----------------------------------

# rabbit_amqqueue_process:process_args_policy/1 (3.10): res_min keys take the smaller of the
# two values, res_arg keys let the declared argument win. ha-* and the quorum/stream keys are
# not queue arguments of a classic queue.
_MIN_KEYS = ("message-ttl", "expires", "max-length", "max-length-bytes")
_ARG_WINS_KEYS = ("dead-letter-exchange", "dead-letter-routing-key", "overflow", "queue-mode")


def effective_queue_arguments(arguments: dict, policy: Policy | None) -> dict:
    """The x-arguments a classic queue runs with once `policy` applies to it."""
    out = dict(arguments or {})
    if policy is None:
        return out
    for key in _MIN_KEYS + _ARG_WINS_KEYS:
        if key not in policy.definition:
            continue
        pol, arg_key = policy.definition[key], "x-" + key
        arg = out.get(arg_key)
        if arg is None:
            out[arg_key] = pol
        elif key in _MIN_KEYS and _is_int(arg) and _is_int(pol):
            out[arg_key] = min(arg, pol)
        # else: res_arg, the declared argument stays
    return out


def effective_exchange_arguments(arguments: dict, policy: Policy | None) -> dict:
    """rabbit_policy:get_arg/3: an exchange's own alternate-exchange argument beats the
    policy's; the policy's applies only when the argument is absent."""
    out = dict(arguments or {})
    if policy is not None and out.get("alternate-exchange") is None and "alternate-exchange" in policy.definition:
        out["alternate-exchange"] = policy.definition["alternate-exchange"]
    return out
