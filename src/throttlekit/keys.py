"""Key functions: map a request to the name of the budget it spends.

A key function takes an `httpx.Request` and returns a short string, or
``None`` when the policy does not apply to that request (the request then
passes that policy untouched). Keys become part of backend key names, so
they never contain a secret: header values are stored as digests.

Example:
    >>> import throttlekit as tk
    >>> per_org = tk.RateLimit(
    ...     "10/second", key=tk.keys.path_param("organizations")
    ... )
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import httpx

__all__ = [
    "KeyFunc",
    "argument",
    "constant",
    "digest",
    "header",
    "host",
    "path_param",
    "resolve",
]

KeyFunc = Callable[[Any], "str | None"]
"""A key function: a request (or a `Call`, under `throttle`) to a key or None."""


def host() -> KeyFunc:
    """Key by the request's host, with the port when it is not the default.

    Example: ``"host:api.meraki.com"``.
    """

    def key(request: httpx.Request) -> str:
        url = request.url
        port = f":{url.port}" if url.port is not None else ""
        return f"host:{url.host}{port}"

    return key


def path_param(name: str, *, default: str | None = None) -> KeyFunc:
    """Key by the path segment that follows the segment ``name``.

    ``path_param("organizations")`` maps ``/api/v1/organizations/123/networks``
    to ``"organizations:123"``.

    Args:
        name: The segment before the value, such as ``"organizations"``.
        default: The key when the path has no such segment or no value after
            it. ``None`` (default) means the policy does not apply.
    """
    _check_name("name", name)

    def key(request: httpx.Request) -> str | None:
        segments = [s for s in request.url.path.split("/") if s]
        for before, value in itertools.pairwise(segments):
            if before == name:
                return f"{name}:{value}"
        return default

    return key


def header(name: str, *, default: str | None = None) -> KeyFunc:
    """Key by a header's value, kept only as a digest.

    ``header("X-Cisco-Meraki-API-Key")`` gives every API key its own budget
    without the key itself ever reaching a log or a backend key name.

    Args:
        name: The header's name, any case.
        default: The key when the header is absent. ``None`` (default)
            means the policy does not apply.
    """
    _check_name("name", name)
    label = name.lower()

    def key(request: httpx.Request) -> str | None:
        value = request.headers.get(name)
        if value is None:
            return default
        return f"{label}:{digest(value)}"

    return key


def argument(name: str, *, secret: bool = False, default: str | None = None) -> KeyFunc:
    """Key a decorated function's call by one of its arguments.

    For `throttle` and task base classes, whose key functions receive a
    `Call`. ``argument("org_id")`` maps ``get_networks(org_id="123")`` to
    ``"org_id:123"``, whether the value came by position, keyword or default.

    Args:
        name: The parameter's name.
        secret: Store the value only as a digest (for API keys and tokens).
        default: The key when the value is ``None``. ``None`` (default) means
            the policy does not apply to that call.
    """
    _check_name("name", name)

    def key(call: Any) -> str | None:
        value = call.argument(name)
        if value is None:
            return default
        text = digest(str(value)) if secret else str(value)
        return f"{name}:{text}"

    return key


def constant(value: str) -> KeyFunc:
    """Key every request the same: one budget for all of them."""
    _check_name("value", value)

    def key(request: httpx.Request) -> str:
        return value

    return key


def resolve(key: KeyFunc | str | None) -> KeyFunc:
    """Turn a policy's ``key`` argument into a key function.

    ``None`` means one budget per host for requests (one budget for all
    calls under `throttle`); a string means that fixed key; a callable is
    used as it is, and must return a string or ``None``.
    """
    if key is None:
        return _host_or_all
    if isinstance(key, str):
        return constant(key)
    if callable(key):
        return _checked(key)
    raise TypeError(f"key must be a key function, a string or None, got {key!r}")


def _host_or_all(call: Any) -> str | None:
    if isinstance(call, httpx.Request):
        return host()(call)
    return "all"


def _checked(key: KeyFunc) -> KeyFunc:
    def checked(call: Any) -> str | None:
        value = key(call)
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"key function {key!r} returned {value!r}; "
                "a key must be a string, or None to skip the policy"
            )
        return value

    return checked


def digest(value: str | bytes) -> str:
    """Return a short, stable digest of a secret, safe to log and store."""
    data = value.encode() if isinstance(value, str) else value
    return hashlib.blake2b(data, digest_size=12, person=b"throttlekit").hexdigest()


def _check_name(param: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{param} must be a non-empty string, got {value!r}")
