"""The test API as an ASGI app, driven through httpx with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from throttlekit.testing import FakeClock, MerakiProfile, RateLimitedApp, ServerStats


@pytest.fixture
def anyio_backend() -> str:
    """Run async tests on asyncio."""
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    """Return a fake clock at time 100."""
    return FakeClock(100.0)


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """Return a client of a Meraki-like app (10/s, burst 10) on ``clock``."""
    app = RateLimitedApp(MerakiProfile(), clock=clock.now, sleep=clock.asleep)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


PATH = "/api/v1/organizations/55/networks"


@pytest.mark.anyio
async def test_burst_then_429_over_http(client: httpx.AsyncClient) -> None:
    """Ten calls pass, the eleventh gets 429 with Retry-After and a JSON body."""
    statuses = [(await client.get(PATH)).status_code for _ in range(10)]
    refused = await client.get(PATH)

    assert statuses == [200] * 10
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.headers["content-type"] == "application/json"
    assert list(refused.json()) == ["errors"]
    assert len(refused.json()["errors"]) == 1


@pytest.mark.anyio
async def test_stats_count_by_status_and_organization(
    client: httpx.AsyncClient,
) -> None:
    """/_stats counts responses by status and by organization."""
    for _ in range(12):
        await client.get(PATH)
    await client.get("/api/v1/organizations/9/devices")
    await client.get("/api/v1/networks/N_1")

    response = await client.get("/_stats")

    assert response.json() == {
        "responses": {"200": 12, "429": 2},
        "organizations": {"55": {"200": 10, "429": 2}, "9": {"200": 1}},
    }


@pytest.mark.anyio
async def test_reset_forgets_buckets_and_counts(client: httpx.AsyncClient) -> None:
    """POST /_reset refills every bucket and zeroes every count."""
    for _ in range(11):
        await client.get(PATH)

    reset = await client.post("/_reset")
    after = await client.get(PATH)
    stats = (await client.get("/_stats")).json()

    assert reset.status_code == 200
    assert after.status_code == 200
    assert stats == {"responses": {"200": 1}, "organizations": {"55": {"200": 1}}}


@pytest.mark.anyio
async def test_tokens_come_back_as_the_clock_moves(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    """After 0.25 s at 10/s an empty organization admits two calls, not three."""
    for _ in range(10):
        await client.get(PATH)

    clock.advance(0.25)
    statuses = [(await client.get(PATH)).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


@pytest.mark.anyio
async def test_latency_delays_api_calls_only(clock: FakeClock) -> None:
    """Latency sleeps before each API answer, and not for control routes."""
    app = RateLimitedApp(latency=0.05, clock=clock.now, sleep=clock.asleep)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        await c.get(PATH)
        await c.get("/_stats")
        await c.post("/_reset")

    assert clock.slept == [0.05]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("POST", "/_stats", "GET"), ("GET", "/_reset", "POST")],
    ids=["post-stats", "get-reset"],
)
async def test_control_routes_refuse_other_methods(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    """A control route answers 405 with Allow to the wrong method."""
    response = await client.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allow


def test_stats_round_trip_through_json() -> None:
    """ServerStats rebuilt from its JSON form is equal and counts the same."""
    stats = ServerStats(
        responses={200: 5, 429: 3},
        organizations={"1": {200: 5, 429: 2}},
    )

    again = ServerStats.from_json(stats.to_json())

    assert again == stats
    assert (again.total, again.count(429), again.count(429, "1")) == (8, 3, 2)
    assert (again.count(500), again.count(200, "2")) == (0, 0)


def test_negative_latency_is_refused() -> None:
    """A negative latency raises ValueError naming the parameter."""
    with pytest.raises(ValueError, match="latency"):
        RateLimitedApp(latency=-1)
