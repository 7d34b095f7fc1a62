"""Dedup keys and sharing rules: which requests are the same, and which
responses may be handed to more than one caller.

Pure: no I/O and no httpx. Headers arrive as ``(name, value)`` string pairs,
in any case.

Two requests are the same when they agree on all of:

- the method, upper-cased;
- the full URL, with its query string and any user info;
- the body, compared by digest;
- the values, in order, of every *keyed* header: the credential headers in
  `IDENTITY_HEADERS`, the names a user adds, any header whose name contains
  one of `CREDENTIAL_HINTS`, and the headers in `VARIANT_HEADERS` that pick
  the representation (content negotiation, ranges, conditionals).

The key is a BLAKE2b digest of those fields, each prefixed with its length so
that no two different requests encode alike. Neither the URL nor any header
value can be read back from it, so it is safe to log and to store.

A response is shared only when it sets no cookie, does not say ``Vary: *``,
and does not announce a body above the size cap. A response that varies on
request headers is shared only with callers whose values for those headers
match the leader's (`selected`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable

__all__ = [
    "CREDENTIAL_HINTS",
    "IDENTITY_HEADERS",
    "VARIANT_HEADERS",
    "is_keyed",
    "refusal",
    "request_key",
    "selected",
    "vary_names",
]

Headers = Iterable[tuple[str, str]]

#: Headers that carry the caller's identity, lower-cased.
IDENTITY_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "x-cisco-meraki-api-key",
        "api-key",
    }
)

#: Any header whose lower-cased name contains one of these is keyed too, so
#: a vendor's own credential header (``X-Auth-Token``, ``Private-Token``)
#: never lets two callers share a response. Keying too much only costs a
#: missed coalescing; keying too little would leak a response.
CREDENTIAL_HINTS = (
    "auth",
    "token",
    "key",
    "secret",
    "session",
    "cookie",
    "credential",
    "signature",
    "password",
)

#: Headers that choose which representation the server sends back.
VARIANT_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "accept-language",
        "range",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "if-range",
    }
)

_PERSON = b"throttlekit.dd"


def is_keyed(name: str, extra: Collection[str] = ()) -> bool:
    """Return whether header ``name`` is part of a request's identity.

    Args:
        name: The header's name, any case.
        extra: More keyed names, lower-cased.
    """
    name = name.lower()
    if name in IDENTITY_HEADERS or name in VARIANT_HEADERS or name in extra:
        return True
    return any(hint in name for hint in CREDENTIAL_HINTS)


def request_key(
    method: str,
    url: str,
    body: bytes,
    headers: Headers,
    extra: Collection[str] = (),
) -> str:
    """Return the dedup key of a request: equal keys mean the same request.

    Args:
        method: The request method, any case.
        url: The full URL, query string included.
        body: The request body; ``b""`` for none.
        headers: The request headers as ``(name, value)`` pairs.
        extra: More keyed header names, lower-cased.

    Returns:
        32 hexadecimal digits.
    """
    keyed = [(n.lower(), v) for n, v in headers if is_keyed(n, extra)]
    # Sort by name only: a stable sort keeps repeated headers in their order.
    keyed.sort(key=lambda item: item[0])

    hasher = hashlib.blake2b(digest_size=16, person=_PERSON)
    _feed(hasher, method.upper())
    _feed(hasher, url)
    _feed(hasher, hashlib.blake2b(body, digest_size=32).digest())
    for name, value in keyed:
        _feed(hasher, name)
        _feed(hasher, value)
    return hasher.hexdigest()


def refusal(headers: Headers, max_body: int | None) -> str | None:
    """Return why a response must not be shared, or ``None`` if it may be.

    Args:
        headers: The response headers as ``(name, value)`` pairs.
        max_body: Bytes of body that may be shared; ``None`` for no cap.
    """
    for name, value in headers:
        name = name.lower()
        if name in ("set-cookie", "set-cookie2"):
            return "sets a cookie"
        if name == "vary" and "*" in _tokens(value):
            return "varies on everything"
        if name == "content-length" and _above(value, max_body):
            return "body above max_body"
    return None


def vary_names(headers: Headers) -> tuple[str, ...]:
    """Return the request headers a response varies on, lower-cased, sorted.

    Args:
        headers: The response headers as ``(name, value)`` pairs.
    """
    names = set()
    for name, value in headers:
        if name.lower() == "vary":
            names.update(_tokens(value))
    names.discard("*")
    return tuple(sorted(names))


def selected(
    headers: Headers, names: Iterable[str]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Return a request's values for the headers ``names``, in order.

    Two requests may share a response that varies on ``names`` only when
    this is equal for both.

    Args:
        headers: The request headers as ``(name, value)`` pairs.
        names: Header names, lower-cased.
    """
    pairs = [(n.lower(), v) for n, v in headers]
    return tuple((name, tuple(v for n, v in pairs if n == name)) for name in names)


def _feed(hasher: hashlib.blake2b, field: str | bytes) -> None:
    data = field if isinstance(field, bytes) else field.encode("utf-8", "surrogatepass")
    hasher.update(len(data).to_bytes(8, "big"))
    hasher.update(data)


def _tokens(value: str) -> set[str]:
    return {token.strip().lower() for token in value.split(",") if token.strip()}


def _above(value: str, limit: int | None) -> bool:
    # A malformed length proves nothing; the capped read still applies.
    value = value.strip()
    if limit is None or not (value.isascii() and value.isdigit()):
        return False
    return int(value) > limit
