"""Hypothesis strategies for hostile AMQP input: streams of random and mutated frames, sent
after a correct handshake + channel.open 1 (see helpers.robust.drive).

The structure (how many frames, of which kind, which mutation) is drawn by hypothesis itself,
so a failing stream shrinks towards a short one; the bytes inside a frame come from the seeded
generators of helpers.fuzz, fed a hypothesis-controlled Random (reproducible and shrinkable).
"""
from __future__ import annotations

from hypothesis import strategies as st
from pamqp import commands as C

from helpers.fuzz import (
    ALL_METHODS,
    CATEGORIES,
    body,
    content_header,
    method,
    method_parts,
    mutate_method,
    rand_method_values,
    rand_properties,
)
from helpers.raw import raw_frame

# Frame types: the four AMQP ones (1 method, 2 header, 3 body, 8 heartbeat), and some that
# do not exist (0, 4, 9 and the frame-end byte 206 used as a type).
_FRAME_TYPES = (1, 1, 2, 3, 8, 0, 4, 9, 206, 255)
# Channel 1 is open, 0 is the connection's, the rest were never opened.
_CHANNELS = (1, 1, 1, 0, 2, 5, 65535)


@st.composite
def method_frames(draw) -> bytes:
    """Any method of the protocol (client or server side), with random field values, often
    structurally mutated (flipped bits, truncation, trailing junk, lying lengths)."""
    cls = draw(st.sampled_from(ALL_METHODS))
    channel = draw(st.sampled_from(_CHANNELS))
    rng = draw(st.randoms(use_true_random=False))
    return raw_frame(1, channel, mutate_method(rng, method_parts(cls, rand_method_values(rng, cls))))


@st.composite
def raw_frames(draw) -> bytes:
    """A well-delimited frame of any type on any channel, with an arbitrary payload; now and
    then with a wrong frame-end byte."""
    ftype = draw(st.sampled_from(_FRAME_TYPES))
    channel = draw(st.sampled_from(_CHANNELS))
    payload = draw(st.binary(max_size=48))
    end = draw(st.sampled_from((0xCE, 0xCE, 0xCE, 0x00, 0xCF)))
    return raw_frame(ftype, channel, payload, end)


@st.composite
def content_frames(draw) -> bytes:
    """basic.publish, a content header and bodies on channel 1 - in order or not, with a body
    size that may lie and a property list that may be corrupt."""
    rng = draw(st.randoms(use_true_random=False))
    data = draw(st.binary(max_size=64))
    declared = len(data) + draw(st.sampled_from((0, 0, 0, 1, -1, 100)))
    frames = [
        method(1, C.Basic.Publish, routing_key=draw(st.sampled_from(("fuzz-sink", "nowhere", "")))),
        content_header(1, max(0, declared), rand_properties(rng),
                       draw(st.sampled_from((60, 60, 60, 50, 0)))),
    ]
    if data:
        frames += [body(1, data[i : i + 16]) for i in range(0, len(data), 16)]
    order = draw(st.permutations(range(len(frames))))
    if draw(st.booleans()):
        frames = [frames[i] for i in order]
    return b"".join(frames)


@st.composite
def seeded_cases(draw) -> bytes:
    """One case of the seeded fuzzer (helpers.fuzz): random bytes, random frames, mutated
    methods, scrambled content, huge declared sizes."""
    make = draw(st.sampled_from([make for make, _count in CATEGORIES]))
    _category, data = make(draw(st.randoms(use_true_random=False)))
    return data


_PIECES = st.one_of(method_frames(), raw_frames(), content_frames(), seeded_cases(),
                    st.binary(min_size=1, max_size=24))


@st.composite
def frame_streams(draw) -> bytes:
    """A stream of 1-6 hostile pieces, possibly mutated as a whole (a flipped byte, a cut)."""
    data = b"".join(draw(st.lists(_PIECES, min_size=1, max_size=6)))
    mutation = draw(st.sampled_from(("none", "none", "none", "flip", "cut")))
    if mutation == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes((data[at] ^ draw(st.integers(1, 255)),)) + data[at + 1:]
    elif mutation == "cut" and len(data) > 1:
        data = data[: draw(st.integers(1, len(data) - 1))]
    return data
