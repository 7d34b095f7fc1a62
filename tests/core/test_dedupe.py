"""Tests for the pure dedup keys and sharing rules."""

from __future__ import annotations

import pytest

from throttlekit._core import dedupe

URL = "https://api.example.test/v1/items?page=2"
AUTH = [("Authorization", "Bearer alpha")]


def key(
    method: str = "GET",
    url: str = URL,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    extra: frozenset[str] = frozenset(),
) -> str:
    return dedupe.request_key(
        method, url, body, AUTH if headers is None else headers, extra
    )


def test_same_request_same_key() -> None:
    """Identical requests get identical keys."""
    assert key() == key()


def test_key_is_a_digest_without_secrets() -> None:
    """The key is 32 hexadecimal digits and holds neither URL nor credential."""
    value = key()

    assert len(value) == 32
    assert int(value, 16) >= 0
    assert "alpha" not in value
    assert "example" not in value


def test_method_case_does_not_matter() -> None:
    """The method is compared upper-cased."""
    assert key(method="get") == key(method="GET")


def test_header_name_case_does_not_matter() -> None:
    """Header names are compared lower-cased."""
    assert key(headers=[("AUTHORIZATION", "Bearer alpha")]) == key()


@pytest.mark.parametrize(
    "change",
    [
        {"method": "HEAD"},
        {"url": "https://api.example.test/v1/items?page=3"},
        {"url": "https://other@api.example.test/v1/items?page=2"},
        {"body": b"{}"},
        {"headers": [("Authorization", "Bearer beta")]},
        {"headers": []},
        {"headers": [*AUTH, ("Cookie", "s=1")]},
        {"headers": [*AUTH, ("X-Cisco-Meraki-API-Key", "k")]},
        {"headers": [*AUTH, ("Private-Token", "t")]},
        {"headers": [*AUTH, ("Accept", "text/csv")]},
        {"headers": [*AUTH, ("Range", "bytes=0-9")]},
    ],
    ids=[
        "method",
        "query",
        "userinfo",
        "body",
        "authorization",
        "no-authorization",
        "cookie",
        "meraki-key",
        "token-hint",
        "accept",
        "range",
    ],
)
def test_differences_that_change_the_key(change: dict[str, object]) -> None:
    """Any difference in method, URL, body or a keyed header changes the key."""
    assert key(**change) != key()  # type: ignore[arg-type]


def test_unkeyed_headers_are_ignored() -> None:
    """Headers that carry no identity, such as a request id, leave the key."""
    assert key(headers=[*AUTH, ("X-Request-Id", "42")]) == key()


def test_extra_identity_headers_are_keyed() -> None:
    """A name given as extra makes its header part of the key."""
    tenant_a = [*AUTH, ("X-Tenant", "a")]
    tenant_b = [*AUTH, ("X-Tenant", "b")]
    extra = frozenset({"x-tenant"})

    assert key(headers=tenant_a) == key(headers=tenant_b)
    assert key(headers=tenant_a, extra=extra) != key(headers=tenant_b, extra=extra)


def test_repeated_header_order_matters() -> None:
    """The values of a repeated keyed header are compared in order."""
    first = [("Cookie", "a=1"), ("Cookie", "b=2")]
    second = [("Cookie", "b=2"), ("Cookie", "a=1")]

    assert key(headers=first) != key(headers=second)


def test_fields_cannot_run_into_each_other() -> None:
    """Moving text between adjacent fields gives a different key."""
    assert key(headers=[("Cookie", "ab")]) != key(
        headers=[("Cookie", "a"), ("Cookie", "b")]
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("Content-Type", "application/json")], None),
        ([("Set-Cookie", "s=1")], "sets a cookie"),
        ([("vary", "Accept, *")], "varies on everything"),
        ([("Content-Length", "11")], "body above max_body"),
        ([("Content-Length", "10")], None),
        ([("Content-Length", "ten")], None),
    ],
    ids=["plain", "set-cookie", "vary-star", "too-long", "at-cap", "malformed-length"],
)
def test_refusal(headers: list[tuple[str, str]], expected: str | None) -> None:
    """A response is refused for a cookie, Vary *, or an announced body over the cap."""
    assert dedupe.refusal(headers, 10) == expected


def test_refusal_without_cap_ignores_length() -> None:
    """With no cap, no announced length is too long."""
    assert dedupe.refusal([("Content-Length", "999999999")], None) is None


def test_vary_names_are_merged_and_sorted() -> None:
    """Every Vary header counts; names come back lower-cased, sorted and unique."""
    headers = [("Vary", "X-Tenant, accept"), ("vary", "Accept")]

    assert dedupe.vary_names(headers) == ("accept", "x-tenant")


def test_selected_returns_values_per_name() -> None:
    """Each named header's values come back in order, empty when absent."""
    headers = [("X-A", "1"), ("x-a", "2"), ("X-B", "3")]

    assert dedupe.selected(headers, ["x-a", "x-c"]) == (
        ("x-a", ("1", "2")),
        ("x-c", ()),
    )
