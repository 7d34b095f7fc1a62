"""`MerakiOrganizations`: charge network and device calls to their organization.

The Meraki Dashboard API limits each organization, and counts a call under
``/networks/{networkId}/...`` or ``/devices/{serial}/...`` against the
organization owning the network or device, though its URL names none. This
policy learns the owners from the API's own answers, once per id for the
whole fleet, and puts each call's organization on the request as the
``"throttlekit.meraki.organization"`` extension, which `meraki_org_key`
reads:

1. A call under ``/organizations/{organizationId}`` needs nothing.
2. Lists teach for free: the answers to ``GET .../organizations/{id}/
   networks``, ``.../organizations/{id}/devices``, ``.../organizations/
   {id}/inventory/devices`` and ``.../networks/{id}/devices`` name the
   organization's networks or devices, and every one is remembered.
3. For a network or a device, the backend is asked (`Backend.recall`).
4. If it does not know, a lookup is sent, with the call's own headers (so
   its own credentials): ``GET .../networks/{networkId}`` answers
   ``organizationId``; ``GET .../devices/{serial}`` answers ``networkId``,
   whose owner is found the same way. A call that is itself such a lookup
   is sent once, and its answer both learned from and returned.
5. Owners are kept in the backend for ``ttl`` seconds (`Backend.remember`),
   so every process sharing it learns each one once; a 404 (no such id) is
   kept for at most a minute. Other answers teach nothing.

A lookup is a chicken-and-egg: the organization it would be charged to is
what it asks. It goes down the policies after this one with no
organization, so it spends the per-client budget and the ``"unmapped"``
budget of `meraki_org_key` (one line, at the organization rate, shared by
all calls of unknown organization). Once its answer names the owner, it is
also charged to each budget in ``charge``, after the fact and without
waiting: the calls behind it then make room for it, as the server's own
bucket does.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from .. import keys as _keys
from .._exceptions import ThrottlekitError
from .._flow import Context, Flow, Reserve, Send
from .._validate import seconds
from ..policies import Dedupe, RateLimit
from ..policies.dedupe import DEDUPLICATED

__all__ = ["ORGANIZATION", "MerakiOrganizations", "meraki_org_key"]

logger = logging.getLogger("throttlekit.presets")

#: Request extension: the id of the organization a call is charged to.
ORGANIZATION = "throttlekit.meraki.organization"

_KINDS = ("organizations", "networks", "devices")
# The owner of an id the API says does not exist, kept as the empty string.
_UNKNOWN = ""
# A 404 is remembered this long at most: the id may be created soon.
_NOT_FOUND_TTL = 60.0
# List answers that name networks or devices of one organization: the
# path after the organization or network id, and what each item holds.
_LISTS = {
    ("organizations", ("networks",)): ("networks", "id"),
    ("organizations", ("devices",)): ("devices", "serial"),
    ("organizations", ("inventory", "devices")): ("devices", "serial"),
    ("networks", ("devices",)): ("devices", "serial"),
}
# Headers that describe a body; a lookup has none.
_BODY_HEADERS = frozenset({"content-length", "content-type", "transfer-encoding"})


@dataclass(frozen=True)
class _Target:
    """The first organization, network or device a path names.

    Attributes:
        kind: ``"organizations"``, ``"networks"`` or ``"devices"``.
        ident: The id or serial after it.
        base: The path before ``kind``, such as ``"/api/v1"``.
        rest: The path's segments after ``ident``.
    """

    kind: str
    ident: str
    base: str
    rest: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """The path of the lookup that names this target's owner."""
        return f"{self.base}/{self.kind}/{self.ident}"

    def sibling(self, kind: str, ident: str) -> _Target:
        """Return another target under the same base path."""
        return _Target(kind, ident, self.base, ())


def meraki_org_key(default: str | None = "unmapped") -> _keys.KeyFunc:
    """Key a Meraki call by its organization, wherever the URL hides it.

    Maps ``/organizations/{organizationId}/...`` to
    ``"organizations:{organizationId}"``, as
    ``keys.path_param("organizations")`` does, so both share budgets; and
    a network or device call to its owner, once `MerakiOrganizations` has
    put it on the request.

    Args:
        default: The key of calls with no known organization: lookups,
            ``GET /organizations``, calls before their owner is learned.
            Default ``"unmapped"``: one budget for all of them. ``None``
            means the policy does not apply to them.
    """
    if default is not None and (not isinstance(default, str) or not default):
        raise ValueError(f"default must be a non-empty string or None, got {default!r}")

    def key(call: Any) -> str | None:
        if not isinstance(call, httpx.Request):
            return default
        target = _locate(call.url.path)
        if target is not None and target.kind == "organizations":
            return f"organizations:{target.ident}"
        org = call.extensions.get(ORGANIZATION)
        return f"organizations:{org}" if isinstance(org, str) and org else default

    return key


class MerakiOrganizations:
    """Learn which organization owns each network and device, fleet-wide.

    Calls under ``/networks/{id}`` and ``/devices/{serial}`` carry no
    organization id; this policy learns their owners from list answers and,
    failing that, from lookups, keeps them in the backend, and puts each
    call's owner on it for `meraki_org_key`. Put it first: its lookups go
    down the policies after it, so they are deduplicated, retried and paced
    like any call. See the module docstring for how an owner is learned and
    what the lookups cost.

    Args:
        ttl: Seconds an owner is remembered in the backend; default one
            day. Networks rarely move between organizations.
        charge: Budgets to charge a lookup to once its owner is known,
            usually the per-organization `RateLimit` keyed by
            `meraki_org_key`; default none.
        name: Prefix of the names of remembered owners; default
            ``"meraki:owner"``.

    Raises:
        TypeError: ``charge`` holds something other than `RateLimit`.
        ValueError: ``ttl`` is not positive and finite, or ``name`` is
            empty.

    Example:
        >>> import throttlekit as tk
        >>> from throttlekit.presets import MerakiOrganizations, meraki_org_key
        >>> per_org = tk.RateLimit("10/second", burst=8, key=meraki_org_key())
        >>> transport = tk.ThrottledTransport(
        ...     MerakiOrganizations(charge=[per_org]), per_org
        ... )

    Note:
        Lookups are merged within a process; processes that miss the same
        id at the same moment each send one. A lookup refused by a budget
        (`RateLimited`) fails the call; one that fails otherwise leaves the
        call with no organization, charged as ``"unmapped"``.
    """

    def __init__(
        self,
        *,
        ttl: float | timedelta = 86400.0,
        charge: Iterable[RateLimit] = (),
        name: str = "meraki:owner",
    ) -> None:
        limit = seconds("ttl", ttl)
        if not limit or math.isinf(limit):
            raise ValueError(f"ttl must be positive and finite seconds, got {ttl!r}")
        self.ttl = limit
        self.charge = tuple(charge)
        for policy in self.charge:
            if not isinstance(policy, RateLimit):
                raise TypeError(f"charge must hold RateLimit policies, got {policy!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.name = name
        # Lookups merge here whatever follows; a Dedupe of the caller's
        # after this one keeps its own registry, so neither waits on itself.
        self._dedupe = Dedupe()

    def __repr__(self) -> str:
        return f"MerakiOrganizations(ttl={self.ttl:g})"

    def flow(self, call: Any, ctx: Context) -> Flow[Any]:
        """Put the call's organization on it, learning it first if need be."""
        target = _locate(call.url.path) if isinstance(call, httpx.Request) else None
        if target is None:
            return (yield Send(call))

        if target.kind != "organizations":
            known = yield Recall(self._note(target))
            if known is None and _asks_for(call, target):
                return (yield from self._answer_itself(call, target, ctx))
            yield from self._place(call, target, known, ctx)

        response = yield Send(call)
        yield from self._harvest(call, target, response)
        return response

    def _place(
        self, call: httpx.Request, target: _Target, known: str | None, ctx: Context
    ) -> Flow[None]:
        """Tag the call with its owner: ``known``, or learned now."""
        if known is None:
            org, sent = yield from self._learn(call, target, ctx)
            yield from self._settle(call, org, sent, ctx)
        elif known:
            call.extensions[ORGANIZATION] = known

    def _answer_itself(
        self, call: httpx.Request, target: _Target, ctx: Context
    ) -> Flow[httpx.Response]:
        """Send a call that is its own lookup, and learn from its answer."""
        response: httpx.Response = yield from self._dedupe.flow(call, ctx)
        org, sent = yield from self._read(call, target, response, ctx)
        yield from self._settle(call, org, sent + 1, ctx)
        return response

    def _resolve(
        self, call: httpx.Request, target: _Target, ctx: Context
    ) -> Flow[tuple[str | None, int]]:
        """Return ``target``'s owner, remembered or learned, and how many
        lookups that sent."""
        known = yield Recall(self._note(target))
        if known is not None:
            return known or None, 0
        return (yield from self._learn(call, target, ctx))

    def _learn(
        self, call: httpx.Request, target: _Target, ctx: Context
    ) -> Flow[tuple[str | None, int]]:
        """Send the lookup for ``target``; return the owner and how many
        lookups went out."""
        lookup = _lookup(call, target)
        try:
            response: httpx.Response = yield from self._dedupe.flow(lookup, ctx)
        except ThrottlekitError:
            raise
        except httpx.HTTPError as exc:
            logger.debug("lookup of %s failed: %r", target.path, exc)
            return None, 0

        org, sent = yield from self._read(call, target, response, ctx)
        return org, sent + 1

    def _read(
        self,
        call: httpx.Request,
        target: _Target,
        response: httpx.Response,
        ctx: Context,
    ) -> Flow[tuple[str | None, int]]:
        """Learn ``target``'s owner from its lookup's answer; return it and
        the further lookups sent (a device's network)."""
        body = yield Read(response)
        if response.status_code == 404:
            ttl = min(self.ttl, _NOT_FOUND_TTL)
            yield Remember(self._note(target), _UNKNOWN, ttl)
            return None, 0
        field = "organizationId" if target.kind == "networks" else "networkId"
        found = _field(body, field)
        if not response.is_success or found is None:
            return None, 0

        org: str | None = found
        sent = 0
        if target.kind == "devices":
            network = target.sibling("networks", found)
            org, sent = yield from self._resolve(call, network, ctx)
        if org is not None:
            logger.debug(
                "learned %s:%s -> organization %s", target.kind, target.ident, org
            )
            yield Remember(self._note(target), org, self.ttl)
        return org, sent

    def _settle(
        self, call: httpx.Request, org: str | None, sent: int, ctx: Context
    ) -> Flow[None]:
        """Tag the call with its owner and charge the owner for lookups."""
        if org is None:
            return
        call.extensions[ORGANIZATION] = org
        for policy in self.charge:
            key = policy.key(call)
            if key is None or sent == 0:
                continue
            bucket = f"{policy.name}|{key}"
            for _ in range(sent):
                # The lookup went out already: its place is charged, and
                # its wait falls on the calls behind it.
                yield Reserve(bucket, policy.limits, 1.0, None)
            ctx.note(bucket)

    def _harvest(
        self, call: httpx.Request, target: _Target, response: Any
    ) -> Flow[None]:
        """Learn the owner of every network or device a list answer names."""
        listed = _LISTS.get((target.kind, target.rest))
        org = target.ident if target.kind == "organizations" else None
        org = org or call.extensions.get(ORGANIZATION)
        if listed is None or not org or call.method != "GET":
            return
        if not isinstance(response, httpx.Response) or not response.is_success:
            return
        if response.extensions.get(DEDUPLICATED):
            return  # a copy shared by Dedupe: its leader has taught it

        kind, field = listed
        body = yield Read(response)
        for ident in _items(body, field):
            yield Remember(self._note(target.sibling(kind, ident)), org, self.ttl)

    def _note(self, target: _Target) -> str:
        return f"{self.name}|{target.kind}:{target.ident}"


@dataclass(frozen=True)
class Recall:
    """Ask the backend for a remembered value; the result is it or None."""

    key: str

    def run(self, ctx: Context) -> str | None:
        return ctx.backend.recall(self.key)

    async def arun(self, ctx: Context) -> str | None:
        return await ctx.backend.arecall(self.key)


@dataclass(frozen=True)
class Remember:
    """Keep a value in the backend for ``ttl`` seconds."""

    key: str
    value: str
    ttl: float

    def run(self, ctx: Context) -> None:
        ctx.backend.remember(self.key, self.value, self.ttl)

    async def arun(self, ctx: Context) -> None:
        await ctx.backend.aremember(self.key, self.value, self.ttl)


@dataclass(frozen=True)
class Read:
    """Read a response's body; the result is the bytes. The response stays
    usable, its content loaded."""

    response: httpx.Response

    def run(self, ctx: Context) -> bytes:
        return self.response.read()

    async def arun(self, ctx: Context) -> bytes:
        return await self.response.aread()


def _locate(path: str) -> _Target | None:
    """Return the first organization, network or device ``path`` names."""
    segments = [segment for segment in path.split("/") if segment]
    for index, (kind, ident) in enumerate(itertools.pairwise(segments)):
        if kind in _KINDS:
            base = "".join(f"/{s}" for s in segments[:index])
            return _Target(kind, ident, base, tuple(segments[index + 2 :]))
    return None


def _asks_for(call: httpx.Request, target: _Target) -> bool:
    """Whether ``call`` is the very lookup that names ``target``'s owner."""
    url = call.url
    return call.method == "GET" and url.path == target.path and not url.query


def _lookup(call: httpx.Request, target: _Target) -> httpx.Request:
    """Build the lookup for ``target``, with ``call``'s headers and timeouts."""
    url = call.url.copy_with(path=target.path, query=None, fragment=None)
    headers = [
        (name, value)
        for name, value in call.headers.multi_items()
        if name.lower() not in _BODY_HEADERS
    ]
    extensions = {k: v for k, v in call.extensions.items() if k == "timeout"}
    return httpx.Request("GET", url, headers=headers, extensions=extensions)


def _items(body: bytes, name: str) -> list[str]:
    """Return a string field of each object of a JSON array."""
    try:
        data = json.loads(body)
    except ValueError:
        return []
    items = data if isinstance(data, list) else []
    found = (item.get(name) for item in items if isinstance(item, dict))
    return [value for value in found if isinstance(value, str) and value]


def _field(body: bytes, name: str) -> str | None:
    """Return a string field of a JSON object, or None."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None
