"""Combining repeated runs, sanity checks of the counts, and the results table."""
from __future__ import annotations

import statistics

from .metrics import INFO_METRICS, METRICS
from .ttl import EARLY_TOLERANCE_MS


def _aggregate(runs: list[dict], pick: str) -> dict:
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return {}
    keys = {k for r in ok for k in r["metrics"]}
    higher = {k: h for ms in METRICS.values() for k, h in ms}
    out = {}
    for k in keys:
        vals = [r["metrics"][k] for r in ok if k in r["metrics"]]
        if pick == "best" and k in higher:
            out[k] = max(vals) if higher[k] else min(vals)
        else:
            out[k] = statistics.median(vals)
    return out


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def render_table(scenarios, names, agg, errors) -> str:
    hdr = ["scenario", "metric"] + names
    ratio_names = [f"{names[0]} / {n}" for n in names[1:]]
    hdr += ratio_names
    lines = ["| " + " | ".join(hdr) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(hdr) - 2)) + "|"]
    for sc in scenarios:
        for metric, higher in METRICS[sc] + INFO_METRICS:
            vals = [agg.get((sc, n), {}).get(metric) for n in names]
            info = (metric, higher) in INFO_METRICS
            if info and all(v is None for v in vals):
                continue
            cells = []
            for n, v in zip(names, vals):
                cells.append("ERROR" if (sc, n) in errors and v is None else _fmt(v))
            ratios = []
            for v in vals[1:]:
                if info or vals[0] is None or v is None or v == 0:
                    ratios.append("")
                else:
                    ratios.append(f"{vals[0] / v:.2f}")
            label = metric + ("" if info else (" ↑" if higher else " ↓"))
            lines.append("| " + " | ".join([sc, label] + cells + ratios) + " |")
    return "\n".join(lines)


def _count_problems(res: dict) -> str:
    c = res["counts"]
    probs = []
    if c.get("nacked"):
        probs.append(f"{c['nacked']} nacked")
    if c.get("confirmed") is not None and c.get("published") is not None and c["confirmed"] + c.get("nacked", 0) < c["published"]:
        probs.append(f"only {c['confirmed']} of {c['published']} confirmed")
    if c.get("mismatched"):
        probs.append(f"{c['mismatched']} replies with wrong correlation id")
    if c.get("out_of_order"):
        probs.append(f"{c['out_of_order']} delivered out of order")
    if res.get("scenario") == "backlog" and c.get("delivered") is not None and c["delivered"] != c["confirmed"]:
        probs.append(f"{c['delivered']} of {c['confirmed']} confirmed messages delivered")
    if res.get("scenario") == "ttl":
        for pre, label in (("", "ttl"), ("queue_ttl_", "queue-ttl")):
            if c[pre + "dead_lettered"] != c["published"]:
                probs.append(f"{label}: {c[pre + 'dead_lettered']} of {c['published']} dead-lettered "
                             f"within max TTL + {res.get('ttl_margin_s', '?')} s")
            if c[pre + "early"]:
                probs.append(f"{label}: {c[pre + 'early']} dead-lettered more than "
                             f"{EARLY_TOLERANCE_MS:g} ms before their TTL")
    return ", ".join(probs)
