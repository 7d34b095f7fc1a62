"""The Meraki-like profile: which requests it admits and how it refuses."""

from __future__ import annotations

from fractions import Fraction

import pytest

from throttlekit.testing import ApiRequest, MerakiProfile
from throttlekit.testing._profiles import (
    CLIENT_LIMITED,
    ORGANIZATION_LIMITED,
    build_profile,
    organization_of,
)

T0 = Fraction(0)


def get(path: str, client: str = "127.0.0.1") -> ApiRequest:
    """Return a GET request for ``path`` from ``client``."""
    return ApiRequest("GET", path, client)


def org_path(org: str) -> str:
    """Return an API path under organization ``org``."""
    return f"/api/v1/organizations/{org}/networks"


def test_an_organization_gets_its_burst_then_429() -> None:
    """Ten calls at once pass; the eleventh gets 429, Retry-After 1, errors."""
    limiter = MerakiProfile().limiter()

    statuses = [limiter.decide(get(org_path("7")), T0).status for _ in range(10)]
    refused = limiter.decide(get(org_path("7")), T0)

    assert statuses == [200] * 10
    assert refused.status == 429
    assert refused.headers == (("retry-after", "1"),)
    assert refused.body == {"errors": [ORGANIZATION_LIMITED]}
    assert refused.organization == "7"


def test_a_success_names_the_call() -> None:
    """A successful call answers with its organization, method and path."""
    verdict = MerakiProfile().limiter().decide(get(org_path("42")), T0)

    assert verdict.status == 200
    assert verdict.body == {
        "organizationId": "42",
        "method": "GET",
        "path": "/api/v1/organizations/42/networks",
    }
    assert verdict.headers == ()


@pytest.mark.parametrize(
    ("rate", "retry_after"),
    [(0.25, "4"), (0.3, "4"), (2, "1"), (100, "1")],
    ids=["exact-seconds", "rounds-up", "below-one-second", "tiny-wait"],
)
def test_retry_after_is_whole_seconds_rounded_up(rate: float, retry_after: str) -> None:
    """Retry-After is the wait rounded up to whole seconds, and at least 1."""
    limiter = MerakiProfile(org_rate=rate, org_burst=1).limiter()
    limiter.decide(get(org_path("1")), T0)

    refused = limiter.decide(get(org_path("1")), T0)

    assert refused.headers == (("retry-after", retry_after),)


def test_organizations_have_separate_buckets() -> None:
    """One organization's spent budget does not refuse another's calls."""
    limiter = MerakiProfile(org_burst=1).limiter()

    first = limiter.decide(get(org_path("a")), T0)
    second = limiter.decide(get(org_path("b")), T0)
    again = limiter.decide(get(org_path("a")), T0)

    assert (first.status, second.status, again.status) == (200, 200, 429)


def test_the_source_address_limit_spans_organizations() -> None:
    """The per-address bucket refuses once spent, whatever the organization."""
    limiter = MerakiProfile(client_rate=3).limiter()

    statuses = [limiter.decide(get(org_path(str(i))), T0).status for i in range(4)]
    other = limiter.decide(get(org_path("9"), client="10.0.0.2"), T0)

    assert statuses == [200, 200, 200, 429]
    assert limiter.decide(get(org_path("0")), T0).body == {"errors": [CLIENT_LIMITED]}
    assert other.status == 200


def test_a_refused_call_spends_no_token() -> None:
    """A call refused by the address limit leaves its organization's tokens."""
    limiter = MerakiProfile(org_burst=2, client_rate=1, client_burst=1).limiter()
    limiter.decide(get(org_path("x"), client="10.0.0.1"), T0)

    refused = limiter.decide(get(org_path("x"), client="10.0.0.1"), T0)
    passed = limiter.decide(get(org_path("x"), client="10.0.0.2"), T0)

    assert refused.status == 429
    assert passed.status == 200
    assert limiter.organizations["x"].tokens == 0


def test_the_bucket_refills_on_the_given_clock() -> None:
    """After 0.1 s at 10/s an empty organization admits exactly one call."""
    limiter = MerakiProfile().limiter()
    for _ in range(10):
        limiter.decide(get(org_path("1")), T0)

    later = Fraction(1, 10)
    statuses = [limiter.decide(get(org_path("1")), later).status for _ in range(2)]

    assert statuses == [200, 429]


def test_paths_without_an_organization_count_per_address_only() -> None:
    """A call outside /organizations/ has no organization and spends no org."""
    limiter = MerakiProfile(org_burst=1).limiter()

    verdict = limiter.decide(get("/api/v1/networks/N_1/clients"), T0)

    assert verdict.status == 200
    assert verdict.organization is None
    assert limiter.organizations == {}


@pytest.mark.parametrize(
    ("path", "org"),
    [
        ("/api/v1/organizations/123/networks", "123"),
        ("/organizations/abc", "abc"),
        ("/api/v1/organizations", None),
        ("/api/v1/organizations/", None),
        ("/api/v1/networks/N_1", None),
    ],
    ids=["nested", "last-segment", "no-value", "trailing-slash", "other"],
)
def test_organization_is_the_segment_after_organizations(
    path: str, org: str | None
) -> None:
    """The organization id is the path segment after ``organizations``."""
    assert organization_of(path) == org


def test_a_profile_travels_as_plain_data() -> None:
    """A profile rebuilt from its spec equals the original."""
    profile = MerakiProfile(org_rate=5, org_burst=3, client_rate=50, client_burst=7)

    assert build_profile(profile.spec()) == profile


def test_an_unknown_profile_name_is_refused() -> None:
    """Rebuilding a profile of an unknown name names the known ones."""
    with pytest.raises(
        ValueError, match="unknown profile 'nope'; known: headers, meraki"
    ):
        build_profile({"profile": "nope"})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"org_rate": 0}, "org_rate must be positive"),
        ({"org_burst": 0.5}, "org_burst must be at least 1"),
        ({"client_rate": float("inf")}, "client_rate must be positive"),
        ({"client_burst": 0}, "client_burst must be positive"),
    ],
    ids=["org-rate", "org-burst", "client-rate", "client-burst"],
)
def test_invalid_profile_settings_name_the_parameter(
    options: dict[str, float], message: str
) -> None:
    """An invalid rate or burst raises ValueError naming the parameter."""
    with pytest.raises(ValueError, match=message):
        MerakiProfile(**options)
