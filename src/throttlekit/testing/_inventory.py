"""`MerakiInventoryProfile`: the Meraki-like limits over a made-up inventory.

`MerakiProfile` only knows the organization in a path. The real API also
counts ``/networks/{networkId}/...`` and ``/devices/{serial}/...`` against the
organization that owns the network or device, and answers the lookups that
say who that is. This profile does the same over a generated inventory:
organizations ``"1"`` to ``"N"``, each with networks ``N_<org>_<n>``, each
with devices ``Q<org>-<n>-<d>`` (numbers zero-padded to three and four
digits, as in ``Q001-0002-0003``).

Routes, under any prefix such as ``/api/v1``, answered 200 with JSON when
admitted:

- ``GET /organizations``: ``[{"id", "name"}]``, counted against the source
  address only;
- ``GET /organizations/{org}/networks``: ``[{"id", "organizationId",
  "name"}]``;
- ``GET /organizations/{org}/devices`` and
  ``GET /organizations/{org}/inventory/devices``: ``[{"serial",
  "networkId", "model"}]``;
- ``GET /networks/{id}``: ``{"id", "organizationId", "name"}``;
- ``GET /networks/{id}/devices``: ``[{"serial", "networkId", "model"}]``;
- ``GET /devices/{serial}``: ``{"serial", "networkId", "name", "model"}``;
- any other path under a known organization, network or device: the
  generic answer of `MerakiProfile`.

An id the inventory does not hold gets 404 with ``{"errors": [...]}`` and
counts against the source address only. Rate limits and their 429s are
exactly `MerakiProfile`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from ._profiles import _PROFILES, ApiRequest, MerakiLimiter, MerakiProfile, Verdict

__all__ = ["MerakiInventoryLimiter", "MerakiInventoryProfile"]

_KINDS = ("organizations", "networks", "devices")
_MODEL = "MR46"


@dataclass(frozen=True)
class MerakiInventoryProfile:
    """Meraki-like limits over an inventory of organizations, networks and
    devices, each call counted against the organization that owns it.

    See the module docstring for the ids and routes.

    Args:
        organizations: Organizations in the inventory, at least 1; default 3.
        networks: Networks per organization, at least 0; default 2.
        devices: Devices per network, at least 0; default 2.
        org_rate: Requests per second per organization; default 10.
        org_burst: Requests an idle organization admits at once; default 10.
        client_rate: Requests per second per source address; default 100.
        client_burst: Requests an idle source address admits at once.
            ``None`` (default): equal to ``client_rate``.

    Example:
        >>> from throttlekit.testing import MerakiInventoryProfile, serve
        >>> with serve(MerakiInventoryProfile(organizations=5)) as api:
        ...     print(api.url)  # doctest: +SKIP
    """

    organizations: int = 3
    networks: int = 2
    devices: int = 2
    org_rate: float = 10.0
    org_burst: float = 10.0
    client_rate: float = 100.0
    client_burst: float | None = None

    def __post_init__(self) -> None:
        _check_count("organizations", self.organizations, 1)
        _check_count("networks", self.networks, 0)
        _check_count("devices", self.devices, 0)
        self.meraki_profile()  # checks the rates

    def meraki_profile(self) -> MerakiProfile:
        """Return the `MerakiProfile` holding this profile's rates."""
        return MerakiProfile(
            self.org_rate, self.org_burst, self.client_rate, self.client_burst
        )

    def limiter(self) -> MerakiInventoryLimiter:
        """Return a fresh limiter; its buckets start full on first use."""
        return MerakiInventoryLimiter(self)

    def spec(self) -> dict[str, Any]:
        """Return the profile as JSON data that `build_profile` accepts."""
        return {"profile": "meraki-inventory", **asdict(self)}

    def network_ids(self, org: int) -> list[str]:
        """Return the ids of organization ``org``'s networks."""
        return [network_id(org, n) for n in range(1, self.networks + 1)]

    def device_serials(self, org: int, network: int) -> list[str]:
        """Return the serials of the devices in network ``network`` of
        organization ``org``."""
        return [serial(org, network, d) for d in range(1, self.devices + 1)]


def network_id(org: int, network: int) -> str:
    """Return the id of network ``network`` of organization ``org``."""
    return f"N_{org}_{network}"


def serial(org: int, network: int, device: int) -> str:
    """Return the serial of a device; see the module docstring."""
    return f"Q{org:03d}-{network:04d}-{device:04d}"


@dataclass
class MerakiInventoryLimiter:
    """Routes a call to its organization, then lets a `MerakiLimiter`
    decide it as a call under ``/organizations/{org}``."""

    profile: MerakiInventoryProfile
    buckets: MerakiLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.buckets = self.profile.meraki_profile().limiter()

    def decide(self, request: ApiRequest, now: Fraction) -> Verdict:
        """Charge ``request`` to its organization and answer it."""
        org, status, body = self._route(request.path)
        charged = "/" if org is None else f"/organizations/{org}"
        verdict = self.buckets.decide(
            ApiRequest(request.method, charged, request.client), now
        )
        if verdict.status != 200:
            return verdict
        if body is None:
            method, path = request.method, request.path
            body = {"organizationId": org, "method": method, "path": path}
        return Verdict(status, body, organization=org)

    def _route(self, path: str) -> tuple[str | None, int, Any]:
        """Return the organization a path is charged to, its status and its
        body (``None`` for the generic one)."""
        segments = [segment for segment in path.split("/") if segment]
        at = next((i for i, s in enumerate(segments) if s in _KINDS), None)
        if at is None:
            return None, 200, None
        kind, rest = segments[at], segments[at + 1 :]
        if kind == "organizations" and not rest:
            return None, 200, self._organizations()

        ident = rest[0] if rest else ""
        numbers = self._numbers(kind, ident)
        if numbers is None:
            return None, 404, {"errors": [f"No such {kind[:-1]}: {ident!r}"]}
        return str(numbers[0]), 200, self._body(kind, rest, numbers)

    def _numbers(self, kind: str, ident: str) -> tuple[int, ...] | None:
        """Return the numbers of an id in the inventory, or ``None``."""
        numbers = _parse(kind, ident)
        inventory = self.profile
        limits = (inventory.organizations, inventory.networks, inventory.devices)
        if numbers is None or _id(kind, numbers) != ident:
            return None
        # An organization's id has one number, a device's all three.
        inside = all(1 <= n <= most for n, most in zip(numbers, limits, strict=False))
        return numbers if inside else None

    def _body(self, kind: str, rest: list[str], numbers: tuple[int, ...]) -> Any:
        """Return the body of a known id's route; ``None`` for generic."""
        leaf = rest[1:]
        org = numbers[0]
        nets = range(1, self.profile.networks + 1)
        if kind == "organizations" and leaf == ["networks"]:
            return [self._network(org, n) for n in nets]
        if kind == "organizations" and leaf in (["devices"], ["inventory", "devices"]):
            return [d for n in nets for d in self._devices(org, n)]
        if kind == "networks" and leaf == []:
            return self._network(org, numbers[1])
        if kind == "networks" and leaf == ["devices"]:
            return self._devices(org, numbers[1])
        if kind == "devices" and leaf == []:
            return {**_device(rest[0], org, numbers[1]), "name": f"Device {rest[0]}"}
        return None

    def _organizations(self) -> list[dict[str, str]]:
        count = self.profile.organizations
        return [
            {"id": str(o), "name": f"Organization {o}"} for o in range(1, count + 1)
        ]

    def _network(self, org: int, net: int) -> dict[str, str]:
        ident = network_id(org, net)
        return {"id": ident, "organizationId": str(org), "name": f"Network {ident}"}

    def _devices(self, org: int, net: int) -> list[dict[str, str]]:
        serials = self.profile.device_serials(org, net)
        return [_device(s, org, net) for s in serials]


def _device(serial: str, org: int, net: int) -> dict[str, str]:
    return {"serial": serial, "networkId": network_id(org, net), "model": _MODEL}


def _parse(kind: str, ident: str) -> tuple[int, ...] | None:
    """Return the numbers an id is made of, or ``None`` if it is not one."""
    if kind == "organizations":
        parts = [ident]
    elif kind == "networks" and ident.startswith("N_"):
        parts = ident[2:].split("_")
    elif kind == "devices" and ident.startswith("Q"):
        parts = ident[1:].split("-")
    else:
        return None
    if not all(part.isdigit() and part.isascii() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def _id(kind: str, numbers: tuple[int, ...]) -> str | None:
    """Return the id made of ``numbers``, so that only one spelling is known."""
    if kind == "organizations" and len(numbers) == 1:
        return str(numbers[0])
    if kind == "networks" and len(numbers) == 2:
        return network_id(*numbers)
    if kind == "devices" and len(numbers) == 3:
        return serial(*numbers)
    return None


def _check_count(name: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


_PROFILES["meraki-inventory"] = MerakiInventoryProfile
