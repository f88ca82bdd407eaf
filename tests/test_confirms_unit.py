"""Unit tests for amqp_broker.confirms.ConfirmTracker: publisher-confirm numbering and the
coalescing of basic.ack / basic.nack frames (RabbitMQ's rabbit_channel:coalesce_and_send).

The model-based test plays a client that applies every frame with AMQP's `multiple`
semantics (multiple=true settles every outstanding seqno <= tag) and checks that each
published message is settled exactly once, with the broker's verdict, and never while the
broker still holds it.
"""
from __future__ import annotations

import random

import pytest

from amqp_broker.confirms import ConfirmTracker

ACK, NACK = True, False


def publish(tracker: ConfirmTracker, n: int) -> list[int]:
    return [tracker.publish() for _ in range(n)]


# --------------------------------------------------------------------------- basics


def test_seqnos_start_at_one_and_increase():
    t = ConfirmTracker()
    assert publish(t, 5) == [1, 2, 3, 4, 5]
    assert t.next_seq == 6
    assert not t.has_ready
    assert t.flush() == []


def test_hold_pending_and_release():
    t = ConfirmTracker()
    publish(t, 3)
    t.hold(1)
    t.hold(3)
    assert t.pending_count == 2 and t.pending() == [1, 3]
    t.ack(2)
    assert t.has_ready
    t.ack(1)
    assert t.pending() == [3]
    t.nack(3)
    assert t.pending() == [] and t.pending_count == 0
    t.flush()
    assert not t.has_ready and t.flush() == []


def test_single_ack_is_not_multiple():
    t = ConfirmTracker()
    publish(t, 1)
    t.ack(1)
    assert t.flush() == [(ACK, 1, False)]
    assert t.flush() == []


def test_burst_of_acks_is_one_multiple_ack():
    t = ConfirmTracker()
    for seq in publish(t, 1000):
        t.ack(seq)
    assert t.flush() == [(ACK, 1000, True)]
    # next burst continues from there
    for seq in publish(t, 3):
        t.ack(seq)
    assert t.flush() == [(ACK, 1003, True)]


def test_acks_settled_out_of_order_are_sorted():
    t = ConfirmTracker()
    publish(t, 5)
    for seq in (5, 2, 4, 1, 3):
        t.ack(seq)
    assert t.flush() == [(ACK, 5, True)]


def test_pending_seqno_in_the_middle():
    t = ConfirmTracker()
    publish(t, 10)
    t.hold(4)
    for seq in range(1, 11):
        if seq != 4:
            t.ack(seq)
    assert t.flush() == [(ACK, 3, True)] + [(ACK, s, False) for s in range(5, 11)]
    t.ack(4)
    assert t.flush() == [(ACK, 4, False)]


def test_pending_seqno_first_means_no_multiple():
    t = ConfirmTracker()
    publish(t, 4)
    t.hold(1)
    for seq in (2, 3, 4):
        t.ack(seq)
    assert t.flush() == [(ACK, 2, False), (ACK, 3, False), (ACK, 4, False)]


def test_ack_of_a_held_seqno_below_others_still_pending():
    t = ConfirmTracker()
    publish(t, 6)
    for seq in (2, 3, 5):
        t.hold(seq)
    t.ack(1)
    t.ack(4)
    t.ack(6)
    frames = t.flush()
    assert [f[1] for f in frames] == [1, 4, 6]
    assert frames[1:] == [(ACK, 4, False), (ACK, 6, False)]  # above the pending 2: one by one
    t.ack(3)
    t.ack(2)
    assert t.flush() == [(ACK, 3, True)]  # 2 and 3: nothing pending below 5
    t.ack(5)
    assert t.flush() == [(ACK, 5, False)]


def test_acks_first_then_nacks_and_no_multiple_ack_over_a_nack():
    t = ConfirmTracker()
    publish(t, 6)
    for seq in (1, 2, 4, 5):
        t.ack(seq)
    t.nack(3)
    t.nack(6)
    frames = t.flush()
    acks = [f for f in frames if f[0] is ACK]
    nacks = [f for f in frames if f[0] is NACK]
    assert frames == acks + nacks  # every ack before any nack
    assert acks == [(ACK, 2, True), (ACK, 4, False), (ACK, 5, False)]
    # whatever the coalescing of the nacks, they must settle exactly {3, 6} given acks went first
    assert settle_all(frames, set(range(1, 7))) == {1: ACK, 2: ACK, 3: NACK, 4: ACK, 5: ACK, 6: NACK}


def test_single_nack():
    t = ConfirmTracker()
    publish(t, 2)
    t.ack(1)
    t.nack(2)
    frames = t.flush()
    assert frames[0] == (ACK, 1, False)
    assert settle_all(frames, {1, 2}) == {1: ACK, 2: NACK}


def test_nack_never_covers_a_pending_seqno():
    t = ConfirmTracker()
    publish(t, 5)
    t.hold(2)
    t.nack(1)
    t.nack(3)
    t.nack(4)
    t.ack(5)
    frames = t.flush()
    assert frames[0] == (ACK, 5, False)
    assert [f[:2] for f in frames[1:]] == [(NACK, 1), (NACK, 3), (NACK, 4)]
    assert frames[2:] == [(NACK, 3, False), (NACK, 4, False)]  # above the pending 2: one by one
    assert settle_all(frames, {1, 2, 3, 4, 5}, frozenset({2})) == {1: NACK, 3: NACK, 4: NACK, 5: ACK}


def test_flush_takes_everything_ready():
    t = ConfirmTracker()
    publish(t, 3)
    t.ack(1)
    t.nack(2)
    t.ack(3)
    t.flush()
    assert t.ready_acks == [] and t.ready_nacks == [] and not t.has_ready


# --------------------------------------------------------------------------- model-based


def settle_all(frames, outstanding: set[int], pending: frozenset = frozenset()) -> dict[int, bool]:
    """Apply frames as a client does. Returns {seqno: verdict} of what they settled and
    removes those seqnos from `outstanding`. Fails on any frame a careful client would
    reject or that would settle a message the broker still holds."""
    settled: dict[int, bool] = {}
    for is_ack, tag, multiple in frames:
        assert tag in outstanding, f"frame {(is_ack, tag, multiple)} names a settled/unknown seqno"
        assert tag not in pending, f"frame {(is_ack, tag, multiple)} names a pending seqno"
        if multiple:
            covered = {s for s in outstanding if s <= tag}
        else:
            covered = {tag}
        bad = covered & pending
        assert not bad, f"frame {(is_ack, tag, multiple)} would settle pending seqnos {sorted(bad)}"
        for s in covered:
            settled[s] = is_ack
        outstanding -= covered
    return settled


@pytest.mark.parametrize("seed", range(40))
def test_model_random_publish_hold_settle_flush(seed):
    rng = random.Random(seed)
    t = ConfirmTracker()
    truth: dict[int, bool] = {}  # verdict the broker decided
    held: set[int] = set()  # broker still holds (pending)
    outstanding: set[int] = set()  # client: published, not yet confirmed
    client_verdicts: dict[int, bool] = {}
    nack_rate = rng.choice([0.0, 0.05, 0.3])
    hold_rate = rng.choice([0.0, 0.2, 0.6])

    def decide(seq):
        verdict = rng.random() >= nack_rate
        truth[seq] = verdict
        (t.ack if verdict else t.nack)(seq)

    def do_flush():
        frames = t.flush()
        assert all(not (a is NACK and b is ACK) for (a, *_), (b, *_) in zip(frames, frames[1:])), \
            "acks must precede nacks"
        assert sum(1 for f in frames if f[0] is ACK and f[2]) <= 1
        settled = settle_all(frames, outstanding, frozenset(held))
        for seq, verdict in settled.items():
            assert seq not in client_verdicts, f"seqno {seq} settled twice"
            assert verdict == truth[seq], f"seqno {seq}: client saw {verdict}, broker decided {truth[seq]}"
            client_verdicts[seq] = verdict
        # everything the broker decided is confirmed by the end of this flush
        assert outstanding == held, (sorted(outstanding), sorted(held))

    for _step in range(300):
        action = rng.random()
        if action < 0.45:
            for seq in publish(t, rng.randint(1, 6)):
                outstanding.add(seq)
                if rng.random() < hold_rate:
                    t.hold(seq)
                    held.add(seq)
                else:
                    decide(seq)
        elif action < 0.75:
            if held:
                for seq in rng.sample(sorted(held), rng.randint(1, len(held))):
                    held.discard(seq)
                    decide(seq)
        else:
            do_flush()
        assert t.pending_count == len(held)
        assert set(t.pending()) == held

    for seq in sorted(held, key=lambda _s: rng.random()):
        held.discard(seq)
        decide(seq)
    do_flush()
    assert outstanding == set()
    assert client_verdicts == truth
    assert sorted(client_verdicts) == list(range(1, t.next_seq))


# --------------------------------------------------------------------------- RabbitMQ, frame for frame


def rabbit_confirms(acks, nacks, unconfirmed):
    """rabbit_channel:send_confirms_and_nacks/1 (3.10-3.13), transcribed:

        send_confirms([MsgSeqNo], _, State) -> send(#'basic.ack'{delivery_tag = MsgSeqNo});
        send_confirms(Cs, Rs, State) -> coalesce_and_send(Cs, Rs, ack...);
        send_nacks(Rs, Cs, State) -> coalesce_and_send(Rs, Cs, nack...)   % no single-nack clause

        coalesce_and_send(MsgSeqNos, NegativeMsgSeqNos, MkMsgFun, #ch{unconfirmed = UC}) ->
            SMsgSeqNos = lists:usort(MsgSeqNos),
            UnconfirmedCutoff = case rabbit_confirms:is_empty(UC) of
                                    true  -> lists:last(SMsgSeqNos) + 1;
                                    false -> rabbit_confirms:smallest(UC) end,
            Cutoff = lists:min([UnconfirmedCutoff | NegativeMsgSeqNos]),
            {Ms, Ss} = lists:splitwith(fun(X) -> X < Cutoff end, SMsgSeqNos),
            case Ms of [] -> ok; _ -> send(MkMsgFun(lists:last(Ms), true)) end,
            [send(MkMsgFun(SeqNo, false)) || SeqNo <- Ss]
    """

    def coalesce(is_ack, seqs, negatives):
        s = sorted(set(seqs))
        cutoff = min([min(unconfirmed) if unconfirmed else s[-1] + 1, *negatives])
        ms = [x for x in s if x < cutoff]
        ss = [x for x in s if x >= cutoff]
        return ([(is_ack, ms[-1], True)] if ms else []) + [(is_ack, x, False) for x in ss]

    out = []
    if len(acks) == 1:
        out.append((ACK, acks[0], False))
    elif acks:
        out += coalesce(ACK, acks, nacks)
    if nacks:
        out += coalesce(NACK, nacks, acks)
    return out


def test_matches_rabbitmq_on_the_common_cases():
    cases = [
        # (published, held, acked, nacked)
        (5, [], [1, 2, 3, 4, 5], []),
        (1, [], [1], []),
        (10, [4], [s for s in range(1, 11) if s != 4], []),
        (4, [1], [2, 3, 4], []),
    ]
    for published, held, acked, nacked in cases:
        t = ConfirmTracker()
        publish(t, published)
        for s in held:
            t.hold(s)
        for s in acked:
            t.ack(s)
        for s in nacked:
            t.nack(s)
        assert t.flush() == rabbit_confirms(acked, nacked, set(held))


@pytest.mark.parametrize("published,held,acked,nacked", [
    (3, [2], [1, 3], []),  # RabbitMQ: ack(1, multiple=true), ack(3)
    (1, [], [], [1]),  # RabbitMQ: nack(1, multiple=true) -- send_nacks has no single-seqno clause
    (6, [], [1, 2, 4, 5], [3, 6]),  # RabbitMQ: ack(2,true) ack(4) ack(5) nack(3) nack(6)
])
def test_flush_is_rabbitmq_coalesce_and_send_frame_for_frame(published, held, acked, nacked):
    """confirms.py says it coalesces "exactly as RabbitMQ's rabbit_channel:coalesce_and_send
    does". RabbitMQ (a) sends a multiple=true ack/nack for the part below the cutoff even when
    that part is a single seqno (only a flush with exactly one ack in total gets the
    multiple=false special case; nacks never do), and (b) cuts nacks off at the smallest ack of
    the same batch. Both are semantically equivalent to ours for a client, but not the same
    frames."""
    t = ConfirmTracker()
    publish(t, published)
    for s in held:
        t.hold(s)
    for s in acked:
        t.ack(s)
    for s in nacked:
        t.nack(s)
    assert t.flush() == rabbit_confirms(acked, nacked, set(held))


def test_rabbitmq_reference_is_itself_safe():
    """The transcription above satisfies the same client-side model (keeps the reference honest)."""
    rng = random.Random(5)
    for _ in range(2000):
        n = rng.randint(1, 12)
        seqs = list(range(1, n + 1))
        held = {s for s in seqs if rng.random() < 0.2}
        decided = [s for s in seqs if s not in held]
        acks = [s for s in decided if rng.random() < 0.7]
        nacks = [s for s in decided if s not in acks]
        frames = rabbit_confirms(acks, nacks, held)
        outstanding = set(seqs)
        settled = settle_all(frames, outstanding, frozenset(held))
        assert settled == {**{s: ACK for s in acks}, **{s: NACK for s in nacks}}
