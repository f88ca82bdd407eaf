"""Throughput/latency scenarios: publish-confirm, consume, e2e, fanout, rpc, backlog."""
from __future__ import annotations

import asyncio
import sys
import time

from .actors import ConfirmPublisher, CountingConsumer, RpcClient, RpcResponder
from .errors import BenchError
from .metrics import RssSampler, _lat_metrics
from .run import _result, _Run


async def _publish_confirm(r: _Run, o: dict, persistent: bool) -> dict:
    await r.setup()
    q = r.name("pub-p" if persistent else "pub")
    await r.declare_queue(q, durable=persistent)
    conn = await r.connect("publisher")
    ch = await conn.channel()
    await ch.confirm_select()
    pub = ConfirmPublisher(ch, "", q, o["size"], o["count"], o["window"], persistent=persistent)
    r.start_clock()
    pub.start()
    await r.wait([pub.done], pub.progress,
                 lambda: "published %d, confirmed %d, nacked %d" % pub.progress())
    el = pub.t_done - pub.t0
    m = {"msg/s": pub.acked / el}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": pub.published, "confirmed": pub.acked,
                                      "nacked": pub.nacked})


async def _prefill(r: _Run, exchange, rk, count, size, window, persistent=False):
    conn = await r.connect("prefill")
    ch = await conn.channel()
    await ch.confirm_select()
    pub = ConfirmPublisher(ch, exchange, rk, size, count, max(window, 1000), persistent=persistent)
    pub.start()
    await r.wait([pub.done], pub.progress,
                 lambda: "prefill: published %d, confirmed %d, nacked %d" % pub.progress())
    if pub.nacked:
        raise BenchError(f"prefill: broker nacked {pub.nacked} messages")
    await conn.close()
    r.conns.remove(conn)
    return pub


async def _consume(r: _Run, o: dict) -> dict:
    admin = await r.setup()
    q = r.name("consume")
    await r.declare_queue(q)
    await _prefill(r, "", q, o["count"], o["size"], o["window"])
    ok = await admin.queue_declare(q, passive=True)
    if ok.message_count != o["count"]:
        raise BenchError(f"after prefill the queue holds {ok.message_count} messages, "
                         f"expected {o['count']}")
    conn = await r.connect("consumer")
    ch = await conn.channel()
    await ch.qos(o["prefetch"])
    cons = CountingConsumer(ch, o["count"], o["prefetch"] // 2)
    r.start_clock()
    t0 = time.perf_counter()
    await ch.consume(q, cons)
    await r.wait([cons.done], lambda: cons.received, lambda: f"received {cons.received}")
    el = cons.t_done - t0
    m = {"msg/s": cons.received / el}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": o["count"], "confirmed": o["count"], "nacked": 0,
                                      "delivered": cons.received})


async def _e2e(r: _Run, o: dict, persistent: bool) -> dict:
    await r.setup()
    q = r.name("e2e-p" if persistent else "e2e")
    await r.declare_queue(q, durable=persistent)
    cconn = await r.connect("consumer")
    cch = await cconn.channel()
    await cch.qos(o["prefetch"])
    cons = CountingConsumer(cch, o["count"], o["prefetch"] // 2, latency=True)
    await cch.consume(q, cons)
    pconn = await r.connect("publisher")
    pch = await pconn.channel()
    await pch.confirm_select()
    pub = ConfirmPublisher(pch, "", q, max(8, o["size"]), o["count"], o["window"],
                           persistent=persistent, stamp=True)
    r.start_clock()
    pub.start()
    await r.wait([pub.done, cons.done], lambda: (pub.progress(), cons.received),
                 lambda: "published %d, confirmed %d, nacked %d" % pub.progress()
                 + f", received {cons.received}")
    el = max(pub.t_done, cons.t_done) - pub.t0
    m = {"msg/s": cons.received / (cons.t_done - pub.t0), **_lat_metrics(cons.lat)}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": pub.published, "confirmed": pub.acked,
                                      "nacked": pub.nacked, "delivered": cons.received})


async def _fanout(r: _Run, o: dict) -> dict:
    await r.setup()
    nq = o["fanout_queues"]
    x = r.name("fanout")
    await r.declare_exchange(x, "fanout")
    qs = [r.name(f"fanout{i}") for i in range(nq)]
    for q in qs:
        await r.declare_queue(q)
        await r.admin.queue_bind(q, x)
    cconn = await r.connect("consumers")
    consumers = []
    for q in qs:
        ch = await cconn.channel()
        await ch.qos(o["prefetch"])
        c = CountingConsumer(ch, o["count"], o["prefetch"] // 2)
        await ch.consume(q, c)
        consumers.append(c)
    pconn = await r.connect("publisher")
    pch = await pconn.channel()
    await pch.confirm_select()
    pub = ConfirmPublisher(pch, x, "", o["size"], o["count"], o["window"])

    def delivered():
        return sum(c.received for c in consumers)

    r.start_clock()
    pub.start()
    await r.wait([pub.done] + [c.done for c in consumers], lambda: (pub.progress(), delivered()),
                 lambda: "published %d, confirmed %d, nacked %d" % pub.progress()
                 + f", delivered {delivered()} of {o['count'] * nq}")
    t_del = max(c.t_done for c in consumers)
    el = max(pub.t_done, t_del) - pub.t0
    m = {"publish msg/s": pub.acked / (pub.t_done - pub.t0), "deliver msg/s": delivered() / (t_del - pub.t0)}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": pub.published, "confirmed": pub.acked,
                                      "nacked": pub.nacked, "delivered": delivered(),
                                      "expected_delivered": o["count"] * nq})


async def _rpc(r: _Run, o: dict, direct: bool) -> dict:
    await r.setup()
    sq = r.name("rpc-direct" if direct else "rpc")
    await r.declare_queue(sq)
    sconn = await r.connect("rpc server")
    sch = await sconn.channel()
    await sch.qos(100)
    responder = RpcResponder(sch)
    await sch.consume(sq, responder, no_ack=False)
    cconn = await r.connect("rpc client")
    cch = await cconn.channel()
    if direct:
        reply_to = "amq.rabbitmq.reply-to"
    else:
        ok = await cch.queue_declare("", exclusive=True, auto_delete=True)
        reply_to = ok.queue
    client = RpcClient(cch, sq, reply_to, o["size"], o["rpc_count"])
    await cch.consume(reply_to, client, no_ack=True)
    r.start_clock()
    client.start()
    await r.wait([client.done], lambda: client.replies,
                 lambda: f"requests sent {client.sent}, handled by server {responder.handled}, "
                         f"replies {client.replies}, mismatched {client.mismatched}")
    el = client.t_done - client.t0
    m = {"round trips/s": client.replies / el, **_lat_metrics(client.lat)}
    r.stop_clock(m)
    return _result("", r.url, el, m, {"published": client.sent, "confirmed": client.sent,
                                      "nacked": 0, "delivered": client.replies,
                                      "mismatched": client.mismatched})


async def _backlog(r: _Run, o: dict) -> dict:
    """Publish `count` numbered persistent messages with confirms into a durable queue with no
    consumer, sampling the broker's RSS; then consume them all, checking count and order."""
    admin = await r.setup()
    q = r.name("backlog")
    await r.declare_queue(q, durable=True)
    n = o["count"]
    rss = RssSampler(r.broker_pid)
    m: dict = {}
    rss_start = rss.sample()
    if rss_start is not None:
        m["RSS before MB"] = rss_start
    rss.start()
    try:
        pconn = await r.connect("publisher")
        pch = await pconn.channel()
        await pch.confirm_select()
        pub = ConfirmPublisher(pch, "", q, max(8, o["size"]), n, o["window"], persistent=True,
                               numbered=True)
        rss.reset()
        r.start_clock()
        pub.start()
        await r.wait([pub.done], pub.progress,
                     lambda: "published %d, confirmed %d, nacked %d" % pub.progress()
                     + (f", broker RSS {rss.last:.0f} MB" if rss.last is not None else ""))
        el_pub = pub.t_done - pub.t0
        m["publish msg/s"] = pub.acked / el_pub
        rss.sample()
        if rss.peak is not None:
            m["peak RSS publish MB"] = rss.peak
        await pconn.close()
        r.conns.remove(pconn)
        await asyncio.sleep(1.0)  # let the broker settle (write-behind, GC) before the end sample
        if rss.sample() is not None:
            m["RSS after publish MB"] = rss.last
        ok = await admin.queue_declare(q, passive=True)
        if ok.message_count != pub.acked:
            raise BenchError(f"after publishing the queue holds {ok.message_count} messages, "
                             f"{pub.acked} were confirmed")
        if r.broker_pid:
            print(f"    backlog of {n:,}: broker RSS {m.get('RSS after publish MB', float('nan')):.0f} MB "
                  f"(peak {m.get('peak RSS publish MB', float('nan')):.0f} MB while publishing)",
                  file=sys.stderr, flush=True)

        cconn = await r.connect("consumer")
        cch = await cconn.channel()
        await cch.qos(o["prefetch"])
        cons = CountingConsumer(cch, pub.acked, o["prefetch"] // 2, check_order=True)
        rss.reset()
        t0 = time.perf_counter()
        await cch.consume(q, cons)
        await r.wait([cons.done], lambda: cons.received,
                     lambda: f"received {cons.received} of {pub.acked}"
                     + (f", broker RSS {rss.last:.0f} MB" if rss.last is not None else ""))
        el_cons = cons.t_done - t0
        m["consume msg/s"] = cons.received / el_cons
        rss.sample()
        if rss.peak is not None:
            m["peak RSS consume MB"] = rss.peak
        r.stop_clock(m)
    finally:
        rss.stop()
    if cons.disorder:
        raise BenchError(f"consumed {cons.received} messages, {cons.disorder} out of order "
                         f"(publish {m['publish msg/s']:.0f} msg/s, consume {m['consume msg/s']:.0f} msg/s)")
    return _result("", r.url, el_pub + el_cons, m,
                   {"published": pub.published, "confirmed": pub.acked, "nacked": pub.nacked,
                    "delivered": cons.received, "out_of_order": cons.disorder})
