"""Topic exchange: dotted routing keys matched against patterns with ``*`` and ``#``.

Semantics (RabbitMQ's rabbit_db_topic_exchange, which 3.12 shares):
  * keys and patterns split on ``.``; ``""`` is zero words, ``"a..b"`` is ``a``, ``""``, ``b``
    and ``"a."`` is ``a``, ``""`` (empty words are ordinary words);
  * ``*`` matches exactly one word, which may be the empty word;
  * ``#`` matches zero or more words, so ``#`` matches ``""``, ``a.#`` matches ``a`` and
    ``#.a`` matches ``a``;
  * anything else, including ``a*`` or ``#a``, is a literal word; matching is case-sensitive.

The patterns live in a trie of words, walked the way RabbitMQ walks its trie: at each node try
the literal next word, then ``*``, then ``#`` swallowing 0..n of the remaining words. Two
things keep this cheap on the per-message path:

  * results are cached per routing key (most applications publish with a small set of keys);
    any bind/unbind drops the cache, and the cache is dropped wholesale when it grows past
    ``CACHE_LIMIT`` so high-cardinality keys cannot make it grow without bound;
  * during one walk, a ``#`` node is walked at most once per word position. Without that,
    patterns like ``#.#.#`` or ``#.a.#`` explore the same (node, position) pairs
    combinatorially many times (RabbitMQ itself does); with it each "#" node costs at most
    one visit per word of the key.
"""
from __future__ import annotations

from .base import NO_ROUTE, Exchange, decref, incref

__all__ = ["TopicExchange", "split_words", "CACHE_LIMIT"]

CACHE_LIMIT = 10_000


def split_words(key: str) -> list[str]:
    """Split a routing key or pattern into words exactly as RabbitMQ's split_topic_key does."""
    # str.split("") would give [""], one empty word; RabbitMQ treats "" as no words at all.
    return key.split(".") if key else []


class _Node:
    """One trie node. Wildcards get dedicated slots so the walk needs no string compares."""

    __slots__ = ("children", "star", "hash", "dests")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}  # literal word -> child
        self.star: _Node | None = None  # child for "*"
        self.hash: _Node | None = None  # child for "#"
        # destination -> number of bindings whose pattern ends here (several bindings can share
        # a pattern and destination when their arguments differ).
        self.dests: dict[object, int] = {}

    def is_empty(self) -> bool:
        return not (self.dests or self.children or self.star or self.hash)


def _walk(node: _Node, words: list[str], i: int, n: int, out: dict, done: dict) -> None:
    """Collect into ``out`` the destinations of patterns under ``node`` matching words[i:].

    ``done`` maps each "#" node to the lowest word position it has been walked from in this
    routing. Entering a "#" at position i walks it at every position j >= i (it swallows
    words[i:j]), so a later entry at i' >= i has nothing new to find and one at i' < i only
    needs the positions [i', i).
    """
    if i < n:
        if node.children:
            child = node.children.get(words[i])
            if child is not None:
                _walk(child, words, i + 1, n, out, done)
        s = node.star
        if s is not None:
            _walk(s, words, i + 1, n, out, done)
    elif node.dests:
        out.update(node.dests)
    h = node.hash
    if h is not None:
        # Also reached with i == n: a trailing "#" matches zero words ("a.#" matches "a").
        lowest = done.get(h, n + 1)
        if i < lowest:
            done[h] = i
            for j in range(i, lowest):
                _walk(h, words, j, n, out, done)


class TopicExchange(Exchange):
    type_name = "topic"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._root = _Node()
        self._cache: dict[str, tuple] = {}

    def route(self, routing_key: str, headers: dict | None = None) -> tuple:
        cached = self._cache.get(routing_key)
        if cached is not None:
            return cached
        if not self._bindings:
            return NO_ROUTE
        words = split_words(routing_key)
        out: dict = {}
        _walk(self._root, words, 0, len(words), out, {})
        result = tuple(out) if out else NO_ROUTE
        cache = self._cache
        if len(cache) >= CACHE_LIMIT:
            # Dropping everything is crude but O(1) amortised and keeps memory bounded; the
            # hot keys come back on their next publish.
            cache.clear()
        cache[routing_key] = result
        return result

    def binding_added(self, destination, routing_key, arguments, frozen) -> None:
        node = self._root
        for word in split_words(routing_key):
            if word == "*":
                nxt = node.star
                if nxt is None:
                    nxt = node.star = _Node()
            elif word == "#":
                nxt = node.hash
                if nxt is None:
                    nxt = node.hash = _Node()
            else:
                nxt = node.children.get(word)
                if nxt is None:
                    nxt = node.children[word] = _Node()
            node = nxt
        if incref(node.dests, destination):
            self._cache.clear()

    def binding_removed(self, destination, routing_key, arguments, frozen) -> None:
        # Remember the path so emptied nodes can be pruned bottom-up: a trie that only grows
        # would slow down walks after churn of short-lived bindings (e.g. per-client queues).
        path: list[tuple[_Node, str]] = []
        node = self._root
        for word in split_words(routing_key):
            path.append((node, word))
            if word == "*":
                node = node.star
            elif word == "#":
                node = node.hash
            else:
                node = node.children[word]
        if not decref(node.dests, destination):
            return  # another binding (other arguments) still routes here: result unchanged
        self._cache.clear()
        while path and node.is_empty():
            parent, word = path.pop()
            if word == "*":
                parent.star = None
            elif word == "#":
                parent.hash = None
            else:
                del parent.children[word]
            node = parent
