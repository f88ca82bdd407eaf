"""Bringing a broker's durable state back from its store at start: exchanges, queues and
bindings into their vhosts, then users and permissions (or, on the first start, the defaults)."""
from __future__ import annotations

from .args import Arguments
from .exchanges import make_exchange
from .permissions import FULL
from .queue import Queue
from .vhost_registry import DEFAULT_VHOST


def recover_definitions(store, vhosts: dict) -> None:
    """Durable exchanges, queues and bindings, into the vhosts already recovered."""
    defs = store.load()  # argument tables come back encoded, as they were saved
    for xd in defs.exchanges:
        vhost = vhosts.get(xd.vhost)
        if vhost is None or xd.name in vhost.exchanges:
            continue
        args = Arguments.decode(xd.arguments)
        ex = make_exchange(xd.type, xd.name, xd.durable, xd.auto_delete, xd.internal, args.plain)
        ex.typed_arguments = args.typed
        vhost.exchanges[xd.name] = ex
    for qd in defs.queues:
        vhost = vhosts.get(qd.vhost)
        if vhost is None or qd.name in vhost.queues:
            continue
        args = Arguments.decode(qd.arguments)
        queue = Queue(vhost, qd.name, qd.durable, None, qd.auto_delete, args.plain, args.typed)
        if store.persists_messages and qd.store_id is not None:
            queue.attach_store(store, qd.store_id)
            queue.recover(qd.message_count, qd.min_seq, qd.max_seq, qd.delivered_seq)
        vhost.queues[qd.name] = queue
    for bd in defs.bindings:
        vhost = vhosts.get(bd.vhost)
        if vhost is None:
            continue
        source = vhost.exchanges.get(bd.source)
        dest = (vhost.queues if bd.destination_type == "queue" else vhost.exchanges).get(bd.destination)
        if source is None or dest is None:
            continue
        vhost.restore_binding(source, dest, bd.routing_key, Arguments.decode(bd.arguments).plain)


async def load_recovered_queues(store, vhosts: dict) -> None:
    """Every recovered queue reads its first page from disk, its stored messages keep their
    absolute expiries, and its x-expires lease starts again."""
    for vhost in vhosts.values():
        for queue in list(vhost.queues.values()):
            if queue.store is not None and queue.disk is not None:
                queue.disk.recover_expiries(await store.expiring(queue.store_id))
            await queue.wait_paged_in()
            queue.touch()


def recover_users(store, users, permissions) -> None:
    """Users and permissions live in the store once it has users; the first start writes the
    defaults, each allowed everything on the default vhost (as RabbitMQ's guest is)."""
    users.attach_store(store)
    permissions.attach_store(store)
    rows = store.users()
    if rows:
        users.load(rows)
        permissions.load(store.permissions())
    else:
        for user in users.users.values():
            users.save(user)
            permissions.set(user.name, DEFAULT_VHOST, FULL, FULL, FULL)
