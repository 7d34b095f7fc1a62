"""Key functions in `throttlekit.keys`."""

from __future__ import annotations

import httpx
import pytest

import throttlekit as tk


def request(url: str, headers: dict[str, str] | None = None) -> httpx.Request:
    return httpx.Request("GET", url, headers=headers)


def test_host_includes_a_non_default_port() -> None:
    """The host key carries the port only when one is given."""
    assert tk.keys.host()(request("https://api.meraki.com/x")) == "host:api.meraki.com"
    assert tk.keys.host()(request("http://127.0.0.1:8080/x")) == "host:127.0.0.1:8080"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/organizations/123/networks", "organizations:123"),
        ("/organizations/abc", "organizations:abc"),
        ("/organizations", None),
        ("/networks/N_1/devices", None),
    ],
    ids=["nested", "last", "no-value", "absent"],
)
def test_path_param_takes_the_segment_after_the_name(
    path: str, expected: str | None
) -> None:
    """path_param returns the segment after the name, or None without it."""
    key = tk.keys.path_param("organizations")

    assert key(request(f"https://h{path}")) == expected


def test_path_param_default_applies_when_absent() -> None:
    """A default key is used when the path has no such segment."""
    key = tk.keys.path_param("organizations", default="unknown-org")

    assert key(request("https://h/networks/N_1")) == "unknown-org"


def test_header_key_stores_only_a_digest() -> None:
    """The header key never contains the header's value."""
    secret = "0123456789abcdef0123456789abcdef01234567"
    key = tk.keys.header("X-Cisco-Meraki-API-Key")

    value = key(request("https://h/", {"x-cisco-meraki-api-key": secret}))

    assert value is not None
    assert secret not in value
    assert value == f"x-cisco-meraki-api-key:{tk.keys.digest(secret)}"
    assert key(request("https://h/")) is None


def test_different_secrets_get_different_keys() -> None:
    """Two API keys map to two budgets."""
    key = tk.keys.header("Authorization")

    first = key(request("https://h/", {"authorization": "Bearer a"}))
    second = key(request("https://h/", {"authorization": "Bearer b"}))

    assert first != second


def test_resolve_accepts_none_strings_and_callables() -> None:
    """None means one budget per host, a string a fixed key, a callable itself."""
    req = request("https://h/")

    assert tk.keys.resolve(None)(req) == "host:h"
    assert tk.keys.resolve("fixed")(req) == "fixed"
    assert tk.keys.resolve(lambda r: "custom")(req) == "custom"
    with pytest.raises(TypeError, match="key must be"):
        tk.keys.resolve(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "factory", [tk.keys.path_param, tk.keys.header, tk.keys.constant]
)
def test_empty_names_are_refused(factory: object) -> None:
    """Key functions refuse an empty name."""
    with pytest.raises(ValueError, match="non-empty string"):
        factory("")  # type: ignore[operator]
