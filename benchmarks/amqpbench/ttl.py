"""The ttl scenario: cost of TTLs at publish, dead-letter lateness."""
from __future__ import annotations

import asyncio
import random
import sys
import time

from .actors import LatenessConsumer, TtlPublisher
from .errors import BenchError
from .metrics import METRICS, _percentile
from .run import _result, _Run


EARLY_TOLERANCE_MS = 5.0   # a dead-letter arriving more than this before its due time is "early"


def ttl_values(lo: int, hi: int, distinct: int) -> list[int]:
    """`distinct` TTLs (ms) evenly spaced from lo to hi inclusive."""
    if lo <= 0 or hi < lo:
        raise ValueError(f"bad TTL range {lo}..{hi} ms")
    if distinct <= 1 or hi == lo:
        return [lo]
    return sorted({round(lo + (hi - lo) * i / (distinct - 1)) for i in range(distinct)})


async def _ttl_publish(r: _Run, queue: str, ttls: list[int], per_message: bool, o: dict,
                       clock: bool = False) -> TtlPublisher:
    """Publish one message per TTL into `queue` on a fresh connection; returns the finished
    publisher (t0..t_done is first write to last confirm)."""
    conn = await r.connect("publisher")
    ch = await conn.channel()
    await ch.confirm_select()
    pub = TtlPublisher(ch, "", queue, o["size"], ttls, o["window"], per_message)
    if clock:
        r.start_clock()
    pub.start()
    await r.wait([pub.done], pub.progress,
                 lambda: f"{queue}: " + "published %d, confirmed %d, nacked %d" % pub.progress())
    await conn.close()
    r.conns.remove(conn)
    return pub


async def _ttl_plain(r: _Run, label: str, ttls: list[int], o: dict) -> TtlPublisher:
    q = r.name(label)
    await r.declare_queue(q)
    pub = await _ttl_publish(r, q, ttls, False, o)
    await r.delete_queue(q)
    rate = pub.acked / (pub.t_done - pub.t0)
    print(f"    {label}: {rate:,.0f} msg/s", file=sys.stderr, flush=True)
    return pub


async def _ttl_expiring(r: _Run, label: str, ttls: list[int], per_message: bool,
                        queue_ttl: int | None, o: dict, m: dict) -> dict:
    """Publish into a queue whose x-dead-letter-exchange is a fanout exchange bound to a
    dead-letter queue, consumed (no-ack) from the start; then wait until every message has been
    dead-lettered, or until the last confirm + max TTL + ttl_margin. Fills `m` with the publish
    rate and the lateness of the dead-letters; returns the counts."""
    n = len(ttls)
    dlx, dlq, q = r.name(f"{label}-dlx"), r.name(f"{label}-dlq"), r.name(label)
    await r.declare_exchange(dlx, "fanout")
    await r.declare_queue(dlq)
    await r.admin.queue_bind(dlq, dlx)
    args = {"x-dead-letter-exchange": dlx}
    if queue_ttl is not None:
        args["x-message-ttl"] = queue_ttl
    await r.declare_queue(q, arguments=args)
    cconn = await r.connect("dead-letter consumer")
    cch = await cconn.channel()
    cons = LatenessConsumer(cch, n)
    await cch.consume(dlq, cons, no_ack=True)
    pub = await _ttl_publish(r, q, ttls, per_message, o, clock=(label == "ttl"))
    if label == "ttl":
        r.stop_clock(m)   # CPU over the timed publish of the mixed-TTL run
    rate = pub.acked / (pub.t_done - pub.t0)
    prefix = "" if label == "ttl" else label + " "
    m[f"{prefix}publish msg/s"] = rate

    # bounded wait for the dead-letters: RabbitMQ expires per-message TTLs only at the head of
    # the queue, so with mixed TTLs some arrive late; never wait for ever
    loop = asyncio.get_running_loop()
    deadline = loop.time() - (time.perf_counter() - pub.t_done) + max(ttls) / 1000 + o["ttl_margin"]
    while not cons.done.done():
        for c in r.conns:
            if c.error is not None:
                raise BenchError(f"{c.error} [progress: {label}: {cons.received} of {n} "
                                 f"dead-lettered]") from c.error
        left = deadline - loop.time()
        if left <= 0:
            break
        await asyncio.wait([cons.done] + [c.closed for c in r.conns if not c.closed.done()],
                           timeout=min(1.0, left), return_when=asyncio.FIRST_COMPLETED)
    left_in_queue = (await r.admin.queue_declare(q, passive=True)).message_count
    await cconn.close()
    r.conns.remove(cconn)
    await r.delete_queue(q)
    await r.delete_queue(dlq)
    await r.delete_exchange(dlx)

    m[f"{prefix}dead-lettered"] = cons.received
    if cons.received > 1 and cons.t_last_ns > cons.t_first_ns:
        m[f"{prefix}dead-letter msg/s"] = (cons.received - 1) / ((cons.t_last_ns - cons.t_first_ns) / 1e9)
    late = sorted(cons.late)
    early = sum(1 for v in late if v < -EARLY_TOLERANCE_MS * 1e6)
    if late:
        m[f"{prefix}lateness p50 ms"] = _percentile(late, 0.50) / 1e6
        m[f"{prefix}lateness p99 ms"] = _percentile(late, 0.99) / 1e6
        m[f"{prefix}lateness max ms"] = late[-1] / 1e6
    m[f"{prefix}early"] = early
    msg = (f"    {label}: {rate:,.0f} msg/s; dead-lettered {cons.received:,} of {n:,}"
           + (f", lateness p50 {late[len(late) // 2] / 1e6:.1f} ms, max {late[-1] / 1e6:.1f} ms"
              if late else "")
           + (f", {early} early" if early else "")
           + (f", {left_in_queue:,} still in the queue" if left_in_queue else ""))
    print(msg, file=sys.stderr, flush=True)
    return {"published": pub.published, "confirmed": pub.acked, "nacked": pub.nacked,
            "dead_lettered": cons.received, "early": early, "left_in_queue": left_in_queue,
            "min_lateness_ms": late[0] / 1e6 if late else None}


async def _ttl(r: _Run, o: dict) -> dict:
    """Per-publish cost of TTLs and expiry lateness: see the README (scenario `ttl`)."""
    await r.setup()
    n = o["count"]
    values = ttl_values(o["ttl_min"], o["ttl_max"], o["ttl_distinct"])
    mixed = random.Random(o["ttl_seed"]).choices(values, k=n)
    queue_ttl = (o["ttl_min"] + o["ttl_max"]) // 2
    t0 = time.perf_counter()
    m: dict = {}
    # plain publish twice, before and after the TTL runs; the faster one is the baseline, so
    # that warm-up (heap growth...) cannot flatter the ratio
    plain1 = await _ttl_plain(r, "ttl-plain", [queue_ttl] * n, o)
    c_mixed = await _ttl_expiring(r, "ttl", mixed, True, None, o, m)
    c_queue = await _ttl_expiring(r, "queue-ttl", [queue_ttl] * n, False, queue_ttl, o, m)
    plain2 = await _ttl_plain(r, "ttl-plain2", [queue_ttl] * n, o)
    plain_rates = [p.acked / (p.t_done - p.t0) for p in (plain1, plain2)]
    base = max(plain_rates)
    out = {"plain publish msg/s": base}
    out.update(m)
    out["ttl publish / plain publish"] = m["publish msg/s"] / base
    out["queue-ttl publish / plain publish"] = m["queue-ttl publish msg/s"] / base
    out["ttl publish msg/s"] = out.pop("publish msg/s")
    order = [k for k, _ in METRICS["ttl"]]
    out = {**{k: out[k] for k in order if k in out}, **{k: v for k, v in out.items() if k not in order}}
    pubs = (plain1, plain2)
    counts = {"published": n,
              "confirmed": min([p.acked for p in pubs] + [c_mixed["confirmed"], c_queue["confirmed"]]),
              "nacked": sum(p.nacked for p in pubs) + c_mixed["nacked"] + c_queue["nacked"],
              "dead_lettered": c_mixed["dead_lettered"], "early": c_mixed["early"],
              "left_in_queue": c_mixed["left_in_queue"],
              "queue_ttl_dead_lettered": c_queue["dead_lettered"], "queue_ttl_early": c_queue["early"],
              "queue_ttl_left_in_queue": c_queue["left_in_queue"]}
    return _result("", r.url, time.perf_counter() - t0, out, counts,
                   plain_publish_runs=plain_rates, ttl_values_ms=values, queue_ttl_ms=queue_ttl,
                   ttl_margin_s=o["ttl_margin"],
                   min_lateness_ms={"ttl": c_mixed["min_lateness_ms"],
                                    "queue-ttl": c_queue["min_lateness_ms"]})
