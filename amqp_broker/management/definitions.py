"""GET/POST /api/definitions and /api/definitions/{vhost}: export and import every definition in
RabbitMQ 3.10's JSON shape, so a file exported here imports into RabbitMQ and back.

Export follows rabbit_mgmt_wm_definitions: users with their password hashes, vhosts by name,
permissions, policies, and the queues (all but exclusive ones), exchanges (all but the
default and amq.* ones) and bindings (all but the default exchange's implicit ones) of every
vhost. `?download=NAME` adds the attachment header the management UI asks for. Import takes
the JSON body (what `rabbitmqadmin import` sends) or the UI's multipart upload (field "file");
definitions_import.py checks and applies it.
"""
from __future__ import annotations

import json

from aiohttp import web

from .. import __version__, errors
from ..queue import Queue
from . import responses
from .definitions_import import ImportPlan, ImportRefused
from .overview import PRODUCT_NAME, RABBITMQ_VERSION
from .users import describe as describe_user


def policy_json(policy) -> dict:
    return {"vhost": policy.vhost, "name": policy.name, "pattern": policy.pattern,
            "apply-to": policy.apply_to, "definition": policy.definition, "priority": policy.priority}


def vhost_objects(vhost, with_vhost: bool) -> dict:
    """queues, exchanges and bindings of one vhost as RabbitMQ exports them (with a "vhost"
    field in the full export, without it in the per-vhost one)."""
    tag = {"vhost": vhost.name} if with_vhost else {}
    queues = [
        {"name": q.name, **tag, "durable": q.durable, "auto_delete": q.auto_delete,
         "arguments": responses.jsonable_table(q.arguments)}
        for q in responses.by_name(vhost.queues) if q.exclusive_owner is None
    ]
    exchanges = [
        {"name": x.name, **tag, "type": x.type_name, "durable": x.durable, "auto_delete": x.auto_delete,
         "internal": x.internal, "arguments": responses.jsonable_table(x.arguments)}
        for x in responses.by_name(vhost.exchanges) if x.name and not x.name.startswith("amq.")
    ]
    bindings = []
    for source in responses.by_name(vhost.exchanges):
        if not source.name:
            continue
        for dest, key, arguments in source.bindings():
            if isinstance(dest, Queue) and dest.exclusive_owner is not None:
                continue
            bindings.append({"source": source.name, **tag, "destination": dest.name,
                             "destination_type": "queue" if isinstance(dest, Queue) else "exchange",
                             "routing_key": key, "arguments": responses.jsonable_table(arguments)})
    return {"queues": queues, "exchanges": exchanges, "bindings": bindings}


def export_all(broker) -> dict:
    vhosts = responses.by_name(broker.vhosts)
    objects = [vhost_objects(v, True) for v in vhosts]
    return {
        "rabbit_version": RABBITMQ_VERSION,
        "rabbitmq_version": RABBITMQ_VERSION,
        "product_name": PRODUCT_NAME,
        "product_version": __version__,
        "users": [describe_user(u) for u in responses.by_name(broker.users.users)],
        "vhosts": [{"name": v.name} for v in vhosts],
        "permissions": [p.as_json() for p in broker.permissions.list()],
        "topic_permissions": [],
        "parameters": [],
        "global_parameters": [],
        "policies": [policy_json(p) for p in broker.policies.list()],
        "queues": [q for o in objects for q in o["queues"]],
        "exchanges": [x for o in objects for x in o["exchanges"]],
        "bindings": [b for o in objects for b in o["bindings"]],
    }


def export_vhost(broker, vhost) -> dict:
    return {
        "rabbit_version": RABBITMQ_VERSION,
        "parameters": [],
        "policies": [policy_json(p) for p in broker.policies.list(vhost.name)],
        **vhost_objects(vhost, False),
    }


async def _document(request: web.Request) -> dict | None:
    """The posted definitions, None when they are not a JSON object."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        upload = form.get("file")
        if upload is None:
            return None
        text = upload if isinstance(upload, str) else upload.file.read().decode("utf-8", "replace")
    else:
        text = await request.text()
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def routes(broker) -> list[web.RouteDef]:
    def answer(request: web.Request, body: dict) -> web.Response:
        response = responses.json_response(body)
        download = request.query.get("download")
        if download:
            response.headers["Content-Disposition"] = f"attachment; filename={download}"
        return response

    async def import_doc(request: web.Request, only_vhost: str | None) -> web.Response:
        doc = await _document(request)
        if doc is None:
            return responses.bad_request("failed_to_parse_json")
        try:
            plan = ImportPlan(broker, doc, only_vhost)
        except ImportRefused as exc:
            return responses.bad_request(exc.args[0])
        try:
            plan.apply()
        except (errors.AMQPError, ValueError) as exc:  # a check only applying could make
            reason = exc.explanation if isinstance(exc, errors.AMQPError) else str(exc)
            return responses.bad_request(reason)
        return web.Response(status=204)

    async def get_all(request: web.Request) -> web.Response:
        return answer(request, export_all(broker))

    async def post_all(request: web.Request) -> web.Response:
        return await import_doc(request, None)

    async def get_vhost(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.bad_request("vhost_not_found")  # RabbitMQ's answer here is a 400
        return answer(request, export_vhost(broker, vhost))

    async def post_vhost(request: web.Request) -> web.Response:
        name = request.match_info["vhost"]
        if name not in broker.vhosts:
            return responses.vhost_not_found()
        return await import_doc(request, name)

    return [
        web.get("/api/definitions", get_all),
        web.post("/api/definitions", post_all),
        web.get("/api/definitions/{vhost}", get_vhost),
        web.post("/api/definitions/{vhost}", post_vhost),
    ]
