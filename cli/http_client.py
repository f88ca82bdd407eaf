"""The management HTTP API as the administration commands see it: a small blocking client.

The commands never open the broker's database: everything goes through the same HTTP API
RabbitMQ's management plugin serves (paths, bodies and error bodies of RabbitMQ 3.10), so they
work against any broker speaking it. Every failure becomes an `ApiError` with a one-line text
that names RabbitMQ's reason, which the commands print and exit with.
"""
from __future__ import annotations

import html
import json
from typing import Any, Optional
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:15672"
DEFAULT_USER = "guest"
DEFAULT_PASSWORD = "guest"


class ApiError(Exception):
    """A request that did not succeed; str() is the one-line message for the user."""


def api_path(*segments: str) -> str:
    """`/api/` and the segments, each percent-encoded whole: "/" -> "%2F" as RabbitMQ wants."""
    return "/api/" + "/".join(quote(segment, safe="") for segment in segments)


class ManagementClient:
    """GET/PUT/POST/DELETE on the management API with basic auth; JSON in and out."""

    def __init__(self, url: str, user: str, password: str, timeout: float = 60.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, auth=(user, password), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ManagementClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def get(self, path: str, params: Optional[dict] = None) -> Any:
        return self._decode(self._send("GET", path, params=params))

    def put(self, path: str, body: Any) -> None:
        self._send("PUT", path, body=body)

    def post(self, path: str, body: Any) -> Any:
        return self._decode(self._send("POST", path, body=body))

    def delete(self, path: str, params: Optional[dict] = None, headers: Optional[dict] = None) -> None:
        self._send("DELETE", path, params=params, headers=headers)

    def _send(self, method: str, path: str, body: Any = None, params: Optional[dict] = None,
              headers: Optional[dict] = None) -> httpx.Response:
        content = None
        all_headers = dict(headers or {})
        if body is not None:
            content = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        try:
            response = self._http.request(method, path, content=content, params=params, headers=all_headers)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the management API at {self.url}: {describe_transport_error(exc)}") from None
        if response.status_code >= 400:
            raise ApiError(f"{reason_of(response)} ({response.status_code}, {method} {path})")
        return response

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"the management API answered {response.request.url.path} with non-JSON content") from None


def reason_of(response: httpx.Response) -> str:
    """RabbitMQ's `{"error": ..., "reason": ...}` body as "error: reason", else the status text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "reason" in body:
        reason = body["reason"]
        text = reason if isinstance(reason, str) else json.dumps(reason)
        # RabbitMQ escapes reasons for its web page and some span lines: one plain line here.
        return f"{body.get('error', 'error')}: {' '.join(html.unescape(text).split())}"
    return response.reason_phrase or f"HTTP {response.status_code}"


def describe_transport_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else (str(exc) or "cannot connect")
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return str(exc) or type(exc).__name__
