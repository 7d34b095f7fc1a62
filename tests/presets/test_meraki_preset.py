"""`presets.meraki`: the Meraki policies, in order, with Meraki's numbers."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

import throttlekit as tk
from throttlekit import presets
from throttlekit.presets import MerakiOrganizations

REQUEST = httpx.Request("GET", "https://api.meraki.com/api/v1/organizations/1/networks")


def test_policies_come_in_the_documented_order() -> None:
    """Map, Dedupe, Retry, HeaderPacing, per-client then per-org budget."""
    policies = presets.meraki()

    assert [type(p) for p in policies] == [
        MerakiOrganizations,
        tk.Dedupe,
        tk.Retry,
        tk.HeaderPacing,
        tk.RateLimit,
        tk.RateLimit,
    ]


def test_budgets_leave_headroom_below_merakis_bursts() -> None:
    """10/s per organization with burst 8, 100/s per client with burst 80."""
    *_, client, org = presets.meraki()

    assert isinstance(client, tk.RateLimit)
    assert isinstance(org, tk.RateLimit)
    assert (org.name, org.limits) == ("meraki:org", (tk.Limit(10, 1, 8),))
    assert (client.name, client.limits) == ("meraki:client", (tk.Limit(100, 1, 80),))
    assert org.key(REQUEST) == "organizations:1"
    assert client.key(REQUEST) == "host:api.meraki.com"


def test_share_scales_the_organization_rate() -> None:
    """share=0.5 gives 5/s, burst 4, and an adaptive rate from 5 down to 0.5."""
    policies = presets.meraki(share=0.5)
    pacing, org = policies[3], policies[-1]

    assert isinstance(pacing, tk.HeaderPacing)
    assert isinstance(org, tk.RateLimit)
    assert org.limits == (tk.Limit(5, 1, 4),)
    assert pacing.config.adaptive == tk.AdaptiveRate(5.0, floor=0.5)
    assert pacing.key(REQUEST) == "organizations:1"


def test_a_small_share_keeps_a_burst_of_one() -> None:
    """A burst below one call is raised to one."""
    org = presets.meraki(share=0.05)[-1]

    assert isinstance(org, tk.RateLimit)
    assert org.limits == (tk.Limit(0.5, 1, 1),)


def test_lookups_are_charged_to_the_organization_budget() -> None:
    """The map charges its lookups to the per-organization budget, and
    remembers owners for a day."""
    policies = presets.meraki()
    owners = policies[0]

    assert isinstance(owners, MerakiOrganizations)
    assert owners.charge == (policies[-1],)
    assert owners.ttl == 86400.0


def test_retry_has_a_fleet_budget() -> None:
    """Retry makes 6 attempts within a shared RetryBudget."""
    retry = presets.meraki(attempts=3)[2]

    assert isinstance(retry, tk.Retry)
    assert retry.attempts == 3
    assert isinstance(retry.budget, tk.RetryBudget)


def test_options_add_and_remove_policies() -> None:
    """concurrency adds a cap after Retry; dedupe=False and map_ttl=None
    leave out Dedupe and the map."""
    policies = presets.meraki(concurrency=4, dedupe=False, map_ttl=None)

    assert [type(p) for p in policies] == [
        tk.Retry,
        tk.Concurrency,
        tk.HeaderPacing,
        tk.RateLimit,
        tk.RateLimit,
    ]
    assert isinstance(policies[1], tk.Concurrency)
    assert policies[1].limit == 4
    assert policies[1].key(REQUEST) == "host:api.meraki.com"


def test_given_dedupe_and_keys_are_used() -> None:
    """A Dedupe passed in is used as it is; client_key keys the per-client
    budget; map_ttl accepts a timedelta."""
    dedupe = tk.Dedupe()
    policies = presets.meraki(
        dedupe=dedupe, client_key="egress-a", map_ttl=timedelta(hours=1)
    )
    owners, client = policies[0], policies[-2]

    assert policies[1] is dedupe
    assert isinstance(client, tk.RateLimit)
    assert client.key(REQUEST) == "egress-a"
    assert isinstance(owners, MerakiOrganizations)
    assert owners.ttl == 3600.0


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"share": 0}, ValueError, "share must be in (0, 1], got 0"),
        ({"share": 1.5}, ValueError, "share must be in (0, 1], got 1.5"),
        ({"share": "1"}, TypeError, "share must be a number, got '1'"),
        ({"headroom": 1}, ValueError, "headroom must be in [0, 1), got 1"),
        ({"headroom": -0.1}, ValueError, "headroom must be in [0, 1), got -0.1"),
        (
            {"org_rate": float("inf")},
            ValueError,
            "org_rate must be positive and finite, got inf",
        ),
        ({"client_rate": True}, TypeError, "client_rate must be a number, got True"),
        (
            {"concurrency": 0},
            ValueError,
            "concurrency must be an int >= 1 or None, got 0",
        ),
        (
            {"concurrency": 2.5},
            ValueError,
            "concurrency must be an int >= 1 or None, got 2.5",
        ),
        (
            {"dedupe": "yes"},
            TypeError,
            "dedupe must be a bool or a Dedupe, got 'yes'",
        ),
        ({"attempts": 0}, ValueError, "attempts must be an int >= 1, got 0"),
        (
            {"map_ttl": 0},
            ValueError,
            "map_ttl must be positive and finite seconds, got 0",
        ),
    ],
    ids=[
        "share-zero",
        "share-above-one",
        "share-text",
        "headroom-one",
        "headroom-negative",
        "org-rate-infinite",
        "client-rate-bool",
        "concurrency-zero",
        "concurrency-float",
        "dedupe-text",
        "attempts-zero",
        "map-ttl-zero",
    ],
)
def test_bad_arguments_are_refused(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    """Bad arguments raise at once, naming the parameter and the value."""
    with pytest.raises(error) as raised:
        presets.meraki(**options)  # type: ignore[arg-type]

    assert str(raised.value) == message
