"""erlang:phash2/1,2: Erlang's portable term hash, for the terms RabbitMQ hashes where the result
is visible to clients (the management API names a binding with arguments by
`base64url(<<(erlang:phash2(Args, 1 bsl 32)):32>>)`, rabbit_mgmt_format:args_hash).

The algorithm is OTP's make_hash2 (erts/emulator/beam/erl_term_hashing.c; documented as stable
across machines and releases), for the term kinds field tables are made of: binaries, atoms,
integers of any size, floats, tuples and lists. Terms are given as Python values: `bytes` is a
binary, `Atom` an atom, `int`, `float`, `tuple`, `list`.
"""
from __future__ import annotations

import struct

_M = 0xFFFFFFFF
HCONST = 0x9E3779B9
HCONST_2 = 0x3C6EF372
HCONST_3 = 0xDAA66D2B
HCONST_4 = 0x78DDE6E4
HCONST_9 = 0x8FF34781
HCONST_10 = 0x2E2AC13A
HCONST_11 = 0xCC623AF3
HCONST_12 = 0x6A99B4AC
HCONST_13 = 0x08D12E65
NIL_DEF = 0x2  # the type code of [] in make_hash (utils.c NIL_DEF)
EMPTY_LIST_HASH = 3468870702  # [] hashed first


class Atom(str):
    """An Erlang atom (its text)."""


class _Cons:
    """The rest of a list still to hash (what make_hash2 pushes on its stack)."""

    __slots__ = ("items", "start")

    def __init__(self, items: list, start: int):
        self.items = items
        self.start = start


def _mix(a: int, b: int, c: int) -> tuple[int, int, int]:
    """Bob Jenkins' mix of three 32-bit words (make_hash2's MIX)."""
    a = (a - b - c) & _M; a ^= c >> 13
    b = (b - c - a) & _M; b ^= (a << 8) & _M
    c = (c - a - b) & _M; c ^= b >> 13
    a = (a - b - c) & _M; a ^= c >> 12
    b = (b - c - a) & _M; b ^= (a << 16) & _M
    c = (c - a - b) & _M; c ^= b >> 5
    a = (a - b - c) & _M; a ^= c >> 3
    b = (b - c - a) & _M; b ^= (a << 10) & _M
    c = (c - a - b) & _M; c ^= b >> 15
    return a, b, c


def _hash2(x: int, y: int, const: int, h: int) -> int:
    """UINT32_HASH_2: mix two words (with a type constant) into the running hash."""
    return _mix((const + x) & _M, (const + y) & _M, h)[2]


def atom_hash(text: str) -> int:
    """The hash value an atom carries (hashpjw over its UTF-8 text, with OTP's Latin-1
    clutch: a two-byte sequence for a code point below 256 counts as that one byte)."""
    data = text.encode("utf-8")
    h = 0
    i = 0
    n = len(data)
    while i < n:
        v = data[i]
        i += 1
        if i < n and (v & 0xFE) == 0xC2 and (data[i] & 0xC0) == 0x80:
            v = ((v << 6) | (data[i] & 0x3F)) & 0xFF
            i += 1
        h = ((h << 4) + v) & _M
        g = h & 0xF0000000
        if g:
            h ^= g >> 24
            h ^= g
    return h


def _block_hash(data: bytes, initval: int) -> int:
    a = b = HCONST
    c = initval
    n = len(data)
    full = n - n % 12
    for k in range(0, full, 12):
        a = (a + int.from_bytes(data[k:k + 4], "little")) & _M
        b = (b + int.from_bytes(data[k + 4:k + 8], "little")) & _M
        c = (c + int.from_bytes(data[k + 8:k + 12], "little")) & _M
        a, b, c = _mix(a, b, c)
    tail = data[full:]
    c = (c + n) & _M
    # the first byte of c is reserved for the length
    c = (c + (int.from_bytes(tail[8:11], "little") << 8)) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    return _mix(a, b, c)[2]


def _integer(value: int, h: int) -> int:
    if -(2**27) <= value < 2**27:  # fits 28 bits: SINT32_HASH
        if value < 0:
            h = _hash2((-value) & _M, 0, HCONST, h)
        return _hash2(value & _M, 0, HCONST, h)
    const = HCONST_10 if value < 0 else HCONST_11
    magnitude = -value if value < 0 else value
    while True:  # 64-bit digits, low first, each as two 32-bit halves
        h = _hash2(magnitude & _M, (magnitude >> 32) & _M, const, h)
        magnitude >>= 64
        if not magnitude:
            return h


def phash2(term, range_: int = 2**32) -> int:
    """erlang:phash2(Term, Range); the full 32-bit hash for Range 2^32."""
    h = _make_hash2(term)
    return h if range_ == 2**32 else h % range_


def _make_hash2(term) -> int:
    if isinstance(term, Atom):
        return atom_hash(term)
    h = 0
    stack: list = []
    while True:
        if isinstance(term, _Cons):
            items, start = term.items, term.start
            sh = count = 0
            while start < len(items) and _is_byte(items[start]):  # strings: 4 bytes a word
                sh = ((sh << 8) + items[start]) & _M
                start += 1
                if count == 3:
                    h = _hash2(sh, 0, HCONST_4, h)
                    sh = count = 0
                else:
                    count += 1
            if count:
                h = _hash2(sh, 0, HCONST_4, h)
            if start < len(items):
                stack.append(_Cons(items, start + 1))
                term = items[start]
                continue
            term = []  # the list's tail
        if isinstance(term, list):
            if term:
                term = _Cons(term, 0)
                continue
            h = EMPTY_LIST_HASH if h == 0 else _hash2(NIL_DEF, 0, HCONST_2, h)
        elif isinstance(term, Atom):
            h = atom_hash(term) if h == 0 else _hash2(atom_hash(term), 0, HCONST_3, h)
        elif isinstance(term, bool):
            raise TypeError("booleans are the atoms true/false: pass Atom")
        elif isinstance(term, int):
            h = _integer(term, h)
        elif isinstance(term, float):
            bits = struct.unpack(">Q", struct.pack(">d", term if term != 0.0 else 0.0))[0]
            h = _hash2(bits >> 32, bits & _M, HCONST_12, h)
        elif isinstance(term, (bytes, bytearray)):
            con = (HCONST_13 + h) & _M
            h = _block_hash(bytes(term), con) if term else con
        elif isinstance(term, tuple):
            h = _hash2(len(term), 0, HCONST_9, h)
            if term:
                stack.extend(reversed(term[1:]))
                term = term[0]
                continue
        else:
            raise TypeError(f"no Erlang term for {type(term).__name__}")
        if not stack:
            return h
        term = stack.pop()


def _is_byte(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255
