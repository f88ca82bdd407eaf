"""/api/users: list, show, create/update (PUT), delete, bulk delete, users without permissions.

PUT follows rabbit_auth_backend_internal:put_user/3 of RabbitMQ 3.10: `tags` (a comma string
or a list) or the older `administrator` flag is required; `password` sets a new SHA-256 hash,
`password_hash` (+ `hashing_algorithm`) imports one; neither creates a user without a password,
or clears the password of an existing user. 201 when created, 204 when updated.
"""
from __future__ import annotations

from aiohttp import web

from ..auth import SHA256, BadPasswordHash, User, decode_password_hash
from . import responses
from .request_body import BodyError, json_object, missing_keys, parse_bool

# fixed paths under /api/users/ that are not user names (RabbitMQ answers 405 to other methods)
RESERVED = {"without-permissions": "GET", "bulk-delete": "POST"}


def describe(user: User) -> dict:
    return {
        "name": user.name,
        "password_hash": user.exported_hash,
        "hashing_algorithm": user.hashing_algorithm,
        "tags": list(user.tags),
        "limits": {},
    }


class BadUser(ValueError):
    """A user body RabbitMQ refuses; args[0] is the 400 reason."""


def parse_tags(body: dict) -> tuple[str, ...]:
    if "tags" in body:
        tags = body["tags"]
        if isinstance(tags, str):
            parts = tags.split(",")
        elif isinstance(tags, list) and all(isinstance(t, (str, int, float)) for t in tags):
            parts = [str(t) for t in tags]  # list items are not split on commas, only trimmed
        else:
            raise BadUser("tags must be a comma-separated string or a list")
        return tuple(t.strip() for t in parts if t.strip())
    if "administrator" in body:
        admin = parse_bool(body["administrator"])
        if admin is None:
            raise BadUser(["not_boolean", body["administrator"]])
        return ("administrator",) if admin else ()
    raise BadUser("tags_not_present")


def user_from_body(name: str, body: dict) -> User:
    """The user a PUT body describes (nothing is stored here); BadUser if refused."""
    tags = parse_tags(body)
    has_password, has_hash = "password" in body, "password_hash" in body
    if has_password and has_hash:
        raise BadUser("both_password_and_password_hash_are_provided")
    if has_hash:
        text = body["password_hash"]
        algorithm = body.get("hashing_algorithm", SHA256)
        if not isinstance(text, str):
            raise BadUser(["not_base64", text])
        if not isinstance(algorithm, str):
            raise BadUser("hashing_algorithm must be a string")
        try:
            return User.from_hash(name, decode_password_hash(text), algorithm, tags)
        except BadPasswordHash:
            raise BadUser(["not_base64", text]) from None
    if has_password:
        if not isinstance(body["password"], str):
            raise BadUser("password must be a string")
        return User(name, body["password"], tags)
    # neither: a new user cannot log in with a password; an existing one loses its password
    return User(name, None, tags)


def routes(broker) -> list[web.RouteDef]:
    users = broker.users

    def listed(request: web.Request, items: list[User]) -> web.Response:
        return responses.listing(request, [describe(u) for u in items])

    async def list_users(request: web.Request) -> web.Response:
        return listed(request, responses.by_name(users.users))

    async def without_permissions(request: web.Request) -> web.Response:
        granted = {p.user for p in broker.permissions.list()}
        return listed(request, [u for u in responses.by_name(users.users) if u.name not in granted])

    async def bulk_delete(request: web.Request) -> web.Response:
        try:
            body = await json_object(request)
        except BodyError as exc:
            return responses.bad_request(exc.reason)
        if "users" not in body:
            return responses.bad_request(missing_keys(["users"]))
        names = body["users"]
        if not isinstance(names, list):
            return responses.bad_request("users must be a list")
        # every name is checked before anything is deleted: a refused request changes nothing
        for name in names:
            if not isinstance(name, str) or name not in users.users:
                return responses.bad_request(["no_such_user", name])
        for name in names:
            delete_user(name)
        return web.Response(status=204)

    def delete_user(name: str) -> None:
        users.delete(name)  # the store drops the user's permission rows with it
        broker.permissions.forget_user(name)

    def reserved(request: web.Request) -> web.Response | None:
        allowed = RESERVED.get(request.match_info["user"])
        if allowed is None:
            return None
        return web.Response(status=405, headers={"Allow": f"{allowed}, OPTIONS"})

    async def show(request: web.Request) -> web.Response:
        refusal = reserved(request)
        if refusal is not None:
            return refusal
        user = users.users.get(request.match_info["user"])
        if user is None:
            return responses.not_found()
        return responses.json_response(describe(user))

    async def put(request: web.Request) -> web.Response:
        refusal = reserved(request)
        if refusal is not None:
            return refusal
        name = request.match_info["user"]
        try:
            body = await json_object(request)
        except BodyError as exc:
            return responses.bad_request(exc.reason)
        existing = users.users.get(name)
        try:
            user = user_from_body(name, body)
        except BadUser as exc:
            return responses.bad_request(exc.args[0])
        users.put(user)
        return web.Response(status=204 if existing is not None else 201)

    async def delete(request: web.Request) -> web.Response:
        refusal = reserved(request)
        if refusal is not None:
            return refusal
        name = request.match_info["user"]
        if name not in users.users:
            return responses.not_found()
        delete_user(name)
        return web.Response(status=204)

    async def user_permissions(request: web.Request) -> web.Response:
        name = request.match_info["user"]
        if name not in users.users:
            return responses.not_found()
        return responses.listing(request, [p.as_json() for p in broker.permissions.list(user=name)])

    async def user_topic_permissions(request: web.Request) -> web.Response:
        if request.match_info["user"] not in users.users:
            return responses.not_found()
        return responses.listing(request, [])  # topic permissions are not kept: never any

    return [
        web.get("/api/users", list_users),
        web.get("/api/users/without-permissions", without_permissions),
        web.post("/api/users/bulk-delete", bulk_delete),
        web.get("/api/users/{user}", show),
        web.put("/api/users/{user}", put),
        web.delete("/api/users/{user}", delete),
        web.get("/api/users/{user}/permissions", user_permissions),
        web.get("/api/users/{user}/topic-permissions", user_topic_permissions),
    ]
