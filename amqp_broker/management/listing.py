"""Sorting, filtering, pagination and column selection of list endpoints, as rabbitmq_management
does it (rabbit_mgmt_util:augment/sort_list/columns, 3.10), sans-IO: query parameters in, the
body to send out, so every rule is a unit test.

- `sort=key` (a dotted path into the objects, e.g. `message_stats.publish`), `sort_reverse=true`.
  Without `sort` the list keeps its order (the resource modules list by name already).
- `columns=a,b.c` keeps only those fields (unknown ones are dropped silently, as RabbitMQ).
- Pagination happens only when `page` is given: `page_size` (default 100, at most 500), `name`
  (a case-insensitive substring of the name, or a regular expression with `use_regex=true`),
  and the body becomes `{filtered_count, item_count, items, page, page_count, page_size,
  total_count}`. A page past the end is a 400 `page_out_of_range`, except page 1 of nothing.
"""
from __future__ import annotations

import math
import re
from typing import Mapping

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


class ListingError(ValueError):
    """Bad listing parameters: `error` and `reason` are RabbitMQ's 400 body."""

    def __init__(self, error: str, reason: str):
        super().__init__(reason)
        self.error = error
        self.reason = reason


def apply(query: Mapping[str, str], items: list[dict]):
    """The body to answer a list request with (a list, or the pagination object)."""
    page = _page_params(query)
    total = len(items)
    if page is not None:
        items = _filter_by_name(query, items)
    items = _sorted(query, items)
    if page is None:
        return _columns(query, items)
    body = _paginate(items, page, total)
    body["items"] = _columns(query, body["items"])
    return body


def _page_params(query: Mapping[str, str]) -> tuple[int, int] | None:
    if "page" not in query:
        return None
    try:
        page = int(query["page"])
        size = int(query["page_size"]) if "page_size" in query else None
    except ValueError:
        raise ListingError("bad_request", "Pagination parameters are invalid") from None
    if page < 1 or (size is not None and not 1 <= size <= MAX_PAGE_SIZE):
        shown = "undefined" if size is None else size
        raise ListingError(
            "invalid_pagination_parameters",
            f"Invalid pagination parameters: page number {page}, page size {shown}",
        )
    return page, size or DEFAULT_PAGE_SIZE


def _filter_by_name(query: Mapping[str, str], items: list[dict]) -> list[dict]:
    pattern = query.get("name")
    if not pattern:
        return items
    if query.get("use_regex") == "true":
        try:
            regex = re.compile(pattern)
        except re.error:
            raise ListingError("bad_request", "Pagination parameters are invalid") from None
        return [item for item in items if regex.search(str(item.get("name", "")))]
    needle = pattern.lower()
    return [item for item in items if needle in str(item.get("name", "")).lower()]


def lookup(item: dict, path: str):
    """The value at a dotted path (`message_stats.publish`), None where it is missing."""
    value = item
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _sort_key(path: str):
    # mixed types (a missing stat is None, names are strings) must still order deterministically
    def key(item: dict):
        value = lookup(item, path)
        if value is None:
            return (0, 0, "")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return (2, 0, str(value))
        return (1, value, "")

    return key


def _sorted(query: Mapping[str, str], items: list[dict]) -> list[dict]:
    path = query.get("sort")
    reverse = query.get("sort_reverse") == "true"
    if path:
        return sorted(items, key=_sort_key(path), reverse=reverse)
    return list(reversed(items)) if reverse else items


def _columns(query: Mapping[str, str], items: list[dict]) -> list[dict]:
    wanted = [c for c in query.get("columns", "").split(",") if c]
    if not wanted:
        return items
    return [_pick(item, wanted) for item in items]


def _pick(item: dict, paths: list[str]) -> dict:
    picked: dict = {}
    for path in paths:
        parts = path.split(".")
        if not _has_path(item, parts):
            continue
        value = lookup(item, path)
        target = picked
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return picked


def _has_path(item: dict, parts: list[str]) -> bool:
    value = item
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return True


def _paginate(items: list[dict], page_size_pair: tuple[int, int], total: int) -> dict:
    page, size = page_size_pair
    page_count = math.ceil(len(items) / size)
    if page > max(page_count, 1):
        raise ListingError(
            "page_out_of_range", f"Page out of range, page: {page} page size: {size}, len: {len(items)}"
        )
    chunk = items[(page - 1) * size: page * size]
    return {
        "filtered_count": len(items),
        "item_count": len(chunk),
        "items": chunk,
        "page": page,
        "page_count": page_count,
        "page_size": size,
        "total_count": total,
    }
