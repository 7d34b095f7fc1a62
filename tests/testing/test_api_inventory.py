"""The inventory profile: networks and devices charged to their organization."""

from __future__ import annotations

from fractions import Fraction

import pytest

from throttlekit.testing import ApiRequest, MerakiInventoryProfile
from throttlekit.testing._profiles import ORGANIZATION_LIMITED, build_profile

T0 = Fraction(0)


def get(path: str) -> ApiRequest:
    """Return a GET request for ``path`` from one address."""
    return ApiRequest("GET", f"/api/v1{path}", "127.0.0.1")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/organizations",
            [
                {"id": "1", "name": "Organization 1"},
                {"id": "2", "name": "Organization 2"},
            ],
        ),
        (
            "/organizations/2/networks",
            [{"id": "N_2_1", "organizationId": "2", "name": "Network N_2_1"}],
        ),
        (
            "/organizations/2/devices",
            [
                {"serial": "Q002-0001-0001", "networkId": "N_2_1", "model": "MR46"},
                {"serial": "Q002-0001-0002", "networkId": "N_2_1", "model": "MR46"},
            ],
        ),
        (
            "/organizations/2/inventory/devices",
            [
                {"serial": "Q002-0001-0001", "networkId": "N_2_1", "model": "MR46"},
                {"serial": "Q002-0001-0002", "networkId": "N_2_1", "model": "MR46"},
            ],
        ),
        (
            "/networks/N_2_1",
            {"id": "N_2_1", "organizationId": "2", "name": "Network N_2_1"},
        ),
        (
            "/networks/N_1_1/devices",
            [
                {"serial": "Q001-0001-0001", "networkId": "N_1_1", "model": "MR46"},
                {"serial": "Q001-0001-0002", "networkId": "N_1_1", "model": "MR46"},
            ],
        ),
        (
            "/devices/Q001-0001-0002",
            {
                "serial": "Q001-0001-0002",
                "networkId": "N_1_1",
                "model": "MR46",
                "name": "Device Q001-0001-0002",
            },
        ),
        (
            "/devices/Q002-0001-0001/clients",
            {
                "organizationId": "2",
                "method": "GET",
                "path": "/api/v1/devices/Q002-0001-0001/clients",
            },
        ),
    ],
    ids=[
        "organizations",
        "org-networks",
        "org-devices",
        "org-inventory",
        "network",
        "network-devices",
        "device",
        "device-other",
    ],
)
def test_routes_answer_from_the_inventory(path: str, body: object) -> None:
    """Each route answers 200 with the inventory's JSON."""
    profile = MerakiInventoryProfile(organizations=2, networks=1, devices=2)

    verdict = profile.limiter().decide(get(path), T0)

    assert (verdict.status, verdict.body) == (200, body)


@pytest.mark.parametrize(
    ("path", "organization"),
    [
        ("/organizations/2/networks", "2"),
        ("/networks/N_2_1/clients", "2"),
        ("/devices/Q002-0001-0003/lldpCdp", "2"),
        ("/organizations", None),
    ],
    ids=["organization", "network", "device", "no-organization"],
)
def test_calls_count_against_their_owner(path: str, organization: str | None) -> None:
    """A network or device call counts against the organization owning it."""
    profile = MerakiInventoryProfile(organizations=2, networks=1, devices=3)

    verdict = profile.limiter().decide(get(path), T0)

    assert verdict.organization == organization


@pytest.mark.parametrize(
    "path",
    [
        "/networks/N_3_1",
        "/networks/N_1_2/devices",
        "/networks/N_01_1",
        "/networks/L_1",
        "/devices/Q001-0001-0003",
        "/devices/Q1-1-1",
        "/organizations/0/networks",
        "/networks",
    ],
    ids=[
        "org-beyond",
        "network-beyond",
        "padded-id",
        "not-an-id",
        "device-beyond",
        "unpadded-serial",
        "org-zero",
        "no-id",
    ],
)
def test_unknown_ids_get_404(path: str) -> None:
    """An id outside the inventory, or spelled otherwise, gets 404, counted
    against no organization."""
    profile = MerakiInventoryProfile(organizations=2, networks=1, devices=2)

    verdict = profile.limiter().decide(get(path), T0)

    assert verdict.status == 404
    assert verdict.organization is None
    assert list(verdict.body) == ["errors"]


def test_networks_share_their_organizations_bucket() -> None:
    """Calls under an organization's networks and devices spend its burst of
    10 together; the eleventh gets the organization's 429."""
    limiter = MerakiInventoryProfile().limiter()
    paths = ["/organizations/1/networks", "/networks/N_1_1", "/devices/Q001-0002-0001"]

    statuses = [limiter.decide(get(paths[i % 3]), T0).status for i in range(10)]
    refused = limiter.decide(get("/networks/N_1_2/clients"), T0)
    other = limiter.decide(get("/networks/N_2_1/clients"), T0)

    assert statuses == [200] * 10
    assert (refused.status, refused.organization) == (429, "1")
    assert refused.body == {"errors": [ORGANIZATION_LIMITED]}
    assert other.status == 200


def test_spec_rebuilds_the_profile() -> None:
    """build_profile turns spec() back into an equal profile."""
    profile = MerakiInventoryProfile(organizations=5, networks=3, devices=0)

    assert build_profile(profile.spec()) == profile


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"organizations": 0}, "organizations must be an int >= 1, got 0"),
        ({"networks": -1}, "networks must be an int >= 0, got -1"),
        ({"devices": 1.5}, "devices must be an int >= 0, got 1.5"),
        ({"org_rate": 0}, "org_rate must be positive and finite, got 0"),
    ],
    ids=["organizations", "networks", "devices", "org-rate"],
)
def test_bad_options_are_refused(options: dict[str, object], message: str) -> None:
    """Counts and rates out of range raise ValueError naming them."""
    with pytest.raises(ValueError, match="must be") as raised:
        MerakiInventoryProfile(**options)  # type: ignore[arg-type]

    assert str(raised.value) == message
