"""`MerakiOrganizations` and `meraki_org_key`: network and device calls
charged to the organization that owns them."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import httpx
import pytest

import throttlekit as tk
from throttlekit.backends.redis import RedisBackend
from throttlekit.presets import ORGANIZATION, MerakiOrganizations, meraki_org_key
from throttlekit.testing import FakeClock

BASE = "http://meraki.test/api/v1"
NETWORKS = {"N_1": "1", "N_2": "2"}
DEVICES = {"Q-1": "N_1"}
LIMITS = (tk.Limit(10, 1, 3),)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeApi:
    """Answers lookups from a small inventory, and lists; records requests."""

    def __init__(self, fail: Callable[[httpx.Request], None] | None = None) -> None:
        self.seen: list[httpx.Request] = []
        self.fail = fail

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if self.fail is not None:
            self.fail(request)
        status, body = self.answer(request.url.path.removeprefix("/api/v1"))
        return httpx.Response(status, json=body)

    def answer(self, path: str) -> tuple[int, object]:
        kind, ident, *rest = path.strip("/").split("/")
        if kind == "networks" and not rest:
            if ident not in NETWORKS:
                return 404, {"errors": ["not found"]}
            return 200, {"id": ident, "organizationId": NETWORKS[ident]}
        if kind == "devices" and not rest:
            return 200, {"serial": ident, "networkId": DEVICES[ident]}
        if rest in (["networks"], ["devices"]):
            return 200, [{"id": "N_7"}, {"serial": "Q-7"}, {"x": 1}]
        return 200, {"path": path}

    def paths(self) -> list[str]:
        """Return the paths requested, without the API prefix."""
        return [r.url.path.removeprefix("/api/v1") for r in self.seen]


def client(
    api: FakeApi, clock: FakeClock, backend: tk.Backend | None = None
) -> httpx.Client:
    """Return a client whose calls pass the map and a per-org budget."""
    per_org = tk.RateLimit(LIMITS, key=meraki_org_key(), name="org")
    transport = tk.ThrottledTransport(
        MerakiOrganizations(charge=[per_org]),
        per_org,
        transport=httpx.MockTransport(api),
        backend=backend or tk.MemoryBackend(clock=clock.now),
        sleep=clock.sleep,
    )
    headers = {"Authorization": "Bearer secret"}
    return httpx.Client(transport=transport, base_url=BASE, headers=headers)


def test_a_network_call_looks_up_its_owner_once() -> None:
    """The first call on a network sends one lookup with the caller's
    credentials, then goes charged to the owner; the next sends none."""
    api, clock = FakeApi(), FakeClock()
    with client(api, clock) as http:
        first = http.get("/networks/N_1/clients")
        second = http.get("/networks/N_1/clients")

    assert api.paths() == [
        "/networks/N_1",
        "/networks/N_1/clients",
        "/networks/N_1/clients",
    ]
    assert api.seen[0].headers["authorization"] == "Bearer secret"
    assert first.extensions["throttlekit.keys"] == (
        "org|unmapped",
        "org|organizations:1",
    )
    assert second.extensions["throttlekit.keys"] == ("org|organizations:1",)
    assert second.request.extensions[ORGANIZATION] == "1"


def test_a_device_call_looks_up_its_network_then_its_owner() -> None:
    """A device's lookup names its network, whose lookup names the owner;
    both are remembered."""
    api, clock = FakeApi(), FakeClock()
    with client(api, clock) as http:
        http.get("/devices/Q-1/clients")
        http.get("/networks/N_1/clients")
        http.get("/devices/Q-1/lldpCdp")

    assert api.paths() == [
        "/devices/Q-1",
        "/networks/N_1",
        "/devices/Q-1/clients",
        "/networks/N_1/clients",
        "/devices/Q-1/lldpCdp",
    ]


def test_lookups_are_charged_to_the_owner_after_the_fact() -> None:
    """Two lookups and the call spend 3 of the owner's burst of 3: the next
    place there waits one interval, 0.1 s."""
    api, clock = FakeApi(), FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    with client(api, clock, backend) as http:
        http.get("/devices/Q-1/clients")

    probe = backend.reserve("org|organizations:1", LIMITS, 1, None)

    assert probe.wait == pytest.approx(0.1, abs=1e-9)
    assert backend.reserve("org|unmapped", LIMITS, 1, None).wait == pytest.approx(
        0.0, abs=1e-9
    )


def test_a_call_that_is_its_own_lookup_is_sent_once() -> None:
    """GET /networks/{id} goes out once; its answer is returned whole and
    teaches the owner."""
    api, clock = FakeApi(), FakeClock()
    with client(api, clock) as http:
        network = http.get("/networks/N_2")
        later = http.get("/networks/N_2/clients")

    assert api.paths() == ["/networks/N_2", "/networks/N_2/clients"]
    assert network.json() == {"id": "N_2", "organizationId": "2"}
    assert network.extensions["throttlekit.keys"] == (
        "org|unmapped",
        "org|organizations:2",
    )
    assert later.extensions["throttlekit.keys"] == ("org|organizations:2",)


def test_an_unknown_network_is_remembered_for_a_minute() -> None:
    """A 404 lookup is remembered 60 s: calls meanwhile go unmapped without
    a lookup; after it, the next call looks up again."""
    api, clock = FakeApi(), FakeClock()
    with client(api, clock) as http:
        first = http.get("/networks/N_9/clients")
        clock.advance(59.0)
        http.get("/networks/N_9/clients")
        clock.advance(1.0)
        http.get("/networks/N_9/clients")

    assert api.paths() == [
        "/networks/N_9",
        "/networks/N_9/clients",
        "/networks/N_9/clients",
        "/networks/N_9",
        "/networks/N_9/clients",
    ]
    assert first.extensions["throttlekit.keys"] == ("org|unmapped",)


def test_a_failed_lookup_teaches_nothing() -> None:
    """A lookup that fails to connect leaves the call unmapped, and the next
    call looks up again."""

    def fail(request: httpx.Request) -> None:
        if request.url.path == "/api/v1/networks/N_1":
            raise httpx.ConnectError("refused", request=request)

    api, clock = FakeApi(fail), FakeClock()
    with client(api, clock) as http:
        first = http.get("/networks/N_1/clients")
        http.get("/networks/N_1/clients")

    assert api.paths() == ["/networks/N_1", "/networks/N_1/clients"] * 2
    assert first.status_code == 200
    assert first.extensions["throttlekit.keys"] == ("org|unmapped",)


def test_lists_teach_the_owners_of_what_they_name() -> None:
    """An organization's network list and a network's device list teach the
    owner of every item, so their calls need no lookup."""
    api, clock = FakeApi(), FakeClock()
    with client(api, clock) as http:
        http.get("/organizations/3/networks")
        network = http.get("/networks/N_7/clients")
        http.get("/networks/N_1/devices")
        device = http.get("/devices/Q-7/clients")

    assert api.paths() == [
        "/organizations/3/networks",
        "/networks/N_7/clients",
        "/networks/N_1",
        "/networks/N_1/devices",
        "/devices/Q-7/clients",
    ]
    assert network.request.extensions[ORGANIZATION] == "3"
    assert device.request.extensions[ORGANIZATION] == "1"


@pytest.mark.anyio
async def test_concurrent_lookups_of_one_network_send_one() -> None:
    """Five concurrent calls on an unknown network send one lookup, then
    their own calls, each charged to the owner."""
    arrived, release = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/api/v1/networks/N_1":
            arrived.set()
            await release.wait()
            return httpx.Response(200, json={"organizationId": "1"})
        return httpx.Response(200, json={})

    async def open_the_gate() -> None:
        await arrived.wait()
        for _ in range(20):  # every caller reaches the lookup and waits
            await asyncio.sleep(0)
        release.set()

    per_org = tk.RateLimit("100/second", key=meraki_org_key(), name="org")
    transport = tk.AsyncThrottledTransport(
        MerakiOrganizations(charge=[per_org]),
        per_org,
        transport=httpx.MockTransport(handler),
        backend=tk.MemoryBackend(),
    )
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        calls = [http.get("/networks/N_1/clients") for _ in range(5)]
        *responses, _ = await asyncio.gather(*calls, open_the_gate())

    assert seen.count("/api/v1/networks/N_1") == 1
    assert seen.count("/api/v1/networks/N_1/clients") == 5
    assert {r.request.extensions[ORGANIZATION] for r in responses} == {"1"}


def test_owners_are_shared_through_redis(redis_url: str) -> None:
    """An owner one process learned is known to another sharing the Redis
    backend: it sends no lookup."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    first = RedisBackend.from_url(redis_url, namespace=namespace)
    second = RedisBackend.from_url(redis_url, namespace=namespace)
    api, clock = FakeApi(), FakeClock()
    try:
        with client(api, clock, first) as http:
            http.get("/networks/N_2/clients")
        with client(api, clock, second) as http:
            response = http.get("/networks/N_2/clients")
    finally:
        first.close()
        second.close()

    assert api.paths() == ["/networks/N_2", *["/networks/N_2/clients"] * 2]
    assert response.extensions["throttlekit.keys"] == ("org|organizations:2",)


@pytest.mark.parametrize(
    ("path", "extensions", "key"),
    [
        ("/api/v1/organizations/5/networks", {}, "organizations:5"),
        ("/api/v1/networks/N_1/clients", {ORGANIZATION: "9"}, "organizations:9"),
        ("/api/v1/networks/N_1/clients", {}, "unmapped"),
        ("/api/v1/organizations", {}, "unmapped"),
    ],
    ids=["organization-path", "tagged", "untagged", "no-id"],
)
def test_org_key_reads_the_path_then_the_tag(
    path: str, extensions: dict[str, str], key: str
) -> None:
    """The key is the path's organization, else the tag, else the default."""
    request = httpx.Request("GET", f"http://meraki.test{path}", extensions=extensions)

    assert meraki_org_key()(request) == key


def test_org_key_default_none_skips_unknown_calls() -> None:
    """With default=None, calls of unknown organization pass the policy."""
    request = httpx.Request("GET", "http://meraki.test/api/v1/networks/N_1")

    assert meraki_org_key(default=None)(request) is None


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: MerakiOrganizations(ttl=0),
            ValueError,
            "ttl must be positive and finite seconds, got 0",
        ),
        (
            lambda: MerakiOrganizations(charge=[tk.HeaderPacing()]),  # type: ignore[list-item]
            TypeError,
            "charge must hold RateLimit policies, got HeaderPacing(name='pace')",
        ),
        (
            lambda: MerakiOrganizations(name=""),
            ValueError,
            "name must be a non-empty string, got ''",
        ),
        (
            lambda: meraki_org_key(default=""),
            ValueError,
            "default must be a non-empty string or None, got ''",
        ),
    ],
    ids=["ttl", "charge", "name", "key-default"],
)
def test_bad_arguments_are_refused(
    build: Callable[[], object], error: type[Exception], message: str
) -> None:
    """Bad arguments raise at construction, naming the parameter."""
    with pytest.raises(error) as raised:
        build()

    assert str(raised.value) == message


def test_a_lookup_answer_that_is_not_json_teaches_nothing() -> None:
    """A lookup answer that is not JSON teaches nothing and breaks nothing."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/networks/N_1":
            return httpx.Response(200, content=b"<html>")
        return httpx.Response(200, content=json.dumps({}).encode())

    per_org = tk.RateLimit(LIMITS, key=meraki_org_key(), name="org")
    transport = tk.ThrottledTransport(
        MerakiOrganizations(charge=[per_org]),
        per_org,
        transport=httpx.MockTransport(handler),
        backend=tk.MemoryBackend(),
    )
    with httpx.Client(transport=transport, base_url=BASE) as http:
        response = http.get("/networks/N_1/clients")

    assert response.status_code == 200
    assert response.extensions["throttlekit.keys"] == ("org|unmapped",)
