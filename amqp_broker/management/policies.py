"""/api/policies[/{vhost}[/{name}]]: list, show, set (PUT) and delete policies through the
broker's policy service (amqp_broker/policy_service.py), which validates, stores and applies
them.

The 400 bodies are rabbitmq_management 3.10's (rabbit_mgmt_wm_policy, then
rabbit_policy:set/7 and rabbit_parameter_validation): missing keys first, as the Erlang term
`[{key_missing,pattern}]`; then every failing field, one a line after "Validation failed", in
the order definition, apply-to, pattern, priority; the whole text HTML-escaped, as the
management plugin escapes its error reasons. Two HTTP rules differ from `rabbitmqctl
set_policy`, which the policy registry follows: apply-to is one of queues/exchanges/all in
3.10's API, and a priority must be a JSON number (the CLI's text is not coerced).
"""
from __future__ import annotations

import json

from aiohttp import web

from ..erlang_terms import erl_json
from ..policies import PolicyError, validate
from . import responses

HTTP_APPLY_TO = ("queues", "exchanges", "all")
REQUIRED = ("pattern", "definition")


def describe(policy) -> dict:
    return {
        "vhost": policy.vhost,
        "name": policy.name,
        "pattern": policy.pattern,
        "apply-to": policy.apply_to,
        "definition": policy.definition,
        "priority": policy.priority,
    }


def escape_html(text: str) -> str:
    """rabbit_mgmt_util's escaping of an error reason: only &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def validation_failed(errors: list[str]) -> web.Response:
    return responses.bad_request(escape_html("Validation failed\n\n" + "".join(e + "\n" for e in errors)))


def _errors_of(name: str, pattern, definition) -> list[str]:
    try:
        validate(name, pattern, definition)
    except PolicyError as exc:
        return exc.errors
    return []


def field_errors(name: str, body: dict) -> list[str]:
    """What is wrong with a PUT body that has both required keys, in RabbitMQ's order."""
    # the registry checks the definition and the pattern with RabbitMQ's texts; each is asked
    # about alone (the other one known good) so the HTTP-only checks can go in between
    errors = _errors_of(name, "", body["definition"])
    apply_to = body.get("apply-to", "all")
    if apply_to not in HTTP_APPLY_TO:
        shown = apply_to if isinstance(apply_to, str) else erl_json(apply_to)
        errors.append(f"apply-to '{shown}' unrecognised; should be 'queues', 'exchanges' or 'all'")
    errors += _errors_of(name, body["pattern"], {"max-length": 0})
    priority = body.get("priority", 0)
    if not isinstance(priority, (int, float)) or isinstance(priority, bool):
        errors.append(f"priority should be a number, actually was {erl_json(priority)}")
    return errors


def routes(broker) -> list[web.RouteDef]:
    async def list_all(request: web.Request) -> web.Response:
        return responses.listing(request, [describe(p) for p in broker.policies.list()])

    async def list_vhost(request: web.Request) -> web.Response:
        vhost = request.match_info["vhost"]
        if vhost not in broker.vhosts:
            return responses.not_found()
        return responses.listing(request, [describe(p) for p in broker.policies.list(vhost)])

    async def show(request: web.Request) -> web.Response:
        vhost, name = request.match_info["vhost"], request.match_info["name"]
        policy = broker.policies.registry.get(vhost, name)
        if policy is None:
            return responses.not_found()
        return responses.json_response(describe(policy))

    async def put(request: web.Request) -> web.Response:
        vhost, name = request.match_info["vhost"], request.match_info["name"]
        if vhost not in broker.vhosts:
            return responses.vhost_not_found()
        try:
            body = json.loads(await request.text() or "{}")
        except ValueError:
            return responses.bad_request("not_json")
        if not isinstance(body, dict):
            return responses.bad_request("not_json")
        missing = [key for key in REQUIRED if key not in body]
        if missing:
            return responses.bad_request("[" + ",".join(f"{{key_missing,{k}}}" for k in missing) + "]")
        errors = field_errors(name, body)
        if errors:
            return validation_failed(errors)
        existed = broker.policies.registry.get(vhost, name) is not None
        try:
            broker.policies.set(vhost, name, body["pattern"], body["definition"],
                                body.get("priority", 0), body.get("apply-to", "all"))
        except PolicyError as exc:
            return validation_failed(exc.errors)
        return web.Response(status=204 if existed else 201)

    async def delete(request: web.Request) -> web.Response:
        if not broker.policies.delete(request.match_info["vhost"], request.match_info["name"]):
            return responses.not_found()
        return web.Response(status=204)

    return [
        web.get("/api/policies", list_all),
        web.get("/api/policies/{vhost}", list_vhost),
        web.get("/api/policies/{vhost}/{name}", show),
        web.put("/api/policies/{vhost}/{name}", put),
        web.delete("/api/policies/{vhost}/{name}", delete),
    ]
