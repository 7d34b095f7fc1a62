"""`ThrottledTransport` and `AsyncThrottledTransport` with scripted upstreams."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import throttlekit as tk
from throttlekit.testing import FakeClock

ORG = "https://api.example.test/api/v1/organizations/42/networks"


class Upstream:
    """A scripted upstream that counts what reaches it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.closed = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return httpx.Response(200, json={"ok": True})

    def transport(self) -> httpx.MockTransport:
        upstream = self

        class Closing(httpx.MockTransport):
            def close(self) -> None:
                upstream.closed = True

            async def aclose(self) -> None:
                upstream.closed = True

        return Closing(self)


def client(
    *policies: object, clock: FakeClock, upstream: Upstream, **kw: object
) -> httpx.Client:
    transport = tk.ThrottledTransport(
        *policies,  # type: ignore[arg-type]
        transport=upstream.transport(),
        backend=tk.MemoryBackend(clock=clock.now),
        sleep=clock.sleep,
        **kw,  # type: ignore[arg-type]
    )
    return httpx.Client(transport=transport)


def per_org(rate: str = "10/second", **kw: object) -> tk.RateLimit:
    return tk.RateLimit(rate, key=tk.keys.path_param("organizations"), **kw)  # type: ignore[arg-type]


def test_requests_past_the_burst_sleep_one_interval_each() -> None:
    """Twelve requests at 10/s: ten go at once, then two sleep 0.1 s each."""
    clock, upstream = FakeClock(), Upstream()

    with client(per_org(), clock=clock, upstream=upstream) as http:
        responses = [http.get(ORG) for _ in range(12)]

    assert clock.slept == pytest.approx([0.1, 0.1])
    assert len(upstream.paths) == 12
    assert responses[-1].extensions["throttlekit.keys"] == (
        "rate:10/1s~10|organizations:42",
    )
    assert responses[-1].extensions["throttlekit.waited"] == pytest.approx(0.1)
    assert responses[0].extensions["throttlekit.waited"] == 0.0


def test_keys_separate_budgets() -> None:
    """Each organization has its own budget."""
    clock, upstream = FakeClock(), Upstream()

    with client(per_org("1/second"), clock=clock, upstream=upstream) as http:
        for org in range(5):
            http.get(f"https://api.example.test/organizations/{org}/x")

    assert clock.slept == []


def test_request_without_the_key_passes_the_policy() -> None:
    """A key function returning None lets the request through uncharged."""
    clock, upstream = FakeClock(), Upstream()

    with client(per_org("1/second"), clock=clock, upstream=upstream) as http:
        responses = [http.get("https://api.example.test/networks/N1") for _ in range(3)]

    assert clock.slept == []
    assert responses[0].extensions["throttlekit.keys"] == ()


def test_max_wait_raises_rate_limited_without_sending_or_spending() -> None:
    """A request that would wait past max_wait raises and spends nothing."""
    clock, upstream = FakeClock(), Upstream()
    http = client(per_org("1/second"), clock=clock, upstream=upstream, max_wait=0.5)
    http.get(ORG)

    with pytest.raises(tk.RateLimited) as info:
        http.get(ORG)

    assert isinstance(info.value, httpx.TransportError)
    assert info.value.key == "rate:1/1s~1|organizations:42"
    assert info.value.delay == pytest.approx(1.0)
    assert len(upstream.paths) == 1
    clock.advance(1.0)
    assert http.get(ORG).extensions["throttlekit.waited"] == 0.0


def test_request_extension_overrides_max_wait() -> None:
    """The throttlekit.max_wait request extension overrides the transport."""
    clock, upstream = FakeClock(), Upstream()
    http = client(per_org("1/second"), clock=clock, upstream=upstream)
    http.get(ORG)

    with pytest.raises(tk.RateLimited):
        http.get(ORG, extensions={"throttlekit.max_wait": 0.2})


def test_refusal_further_in_gives_back_the_outer_place() -> None:
    """When an inner policy refuses, the outer policy's reservation returns."""
    clock, upstream = FakeClock(), Upstream()
    outer = tk.RateLimit("10/second", name="outer")
    inner = tk.RateLimit("1/second", name="inner", max_wait=0.5)
    http = client(outer, inner, clock=clock, upstream=upstream)
    http.get(ORG)

    for _ in range(20):
        with pytest.raises(tk.RateLimited, match="inner"):
            http.get(ORG)

    stats = http._transport.backend.statistics()  # type: ignore[attr-defined]
    assert stats.reservations == 0
    clock.advance(1.0)
    assert http.get(ORG).extensions["throttlekit.waited"] == 0.0


def test_policies_run_outermost_first() -> None:
    """Budgets are recorded in the order the policies were given."""
    clock, upstream = FakeClock(), Upstream()
    policies = (
        tk.Concurrency(4),
        per_org(),
        tk.RateLimit("100/second", key=tk.keys.host()),
    )

    with client(*policies, clock=clock, upstream=upstream) as http:
        response = http.get(ORG)

    assert response.extensions["throttlekit.keys"] == (
        "conc:4|host:api.example.test",
        "rate:10/1s~10|organizations:42",
        "rate:100/1s~100|host:api.example.test",
    )


class Chunks(httpx.SyncByteStream):
    """A body that arrives in chunks, as from a real connection."""

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield b"part one, "
        yield b"part two"


def test_concurrency_slot_is_held_until_the_body_is_closed() -> None:
    """A streamed response holds its slot until its body is closed."""
    backend = tk.MemoryBackend()
    upstream = httpx.MockTransport(lambda request: httpx.Response(200, stream=Chunks()))
    http = httpx.Client(
        transport=tk.ThrottledTransport(
            tk.Concurrency(1), transport=upstream, backend=backend
        )
    )

    with http.stream("GET", ORG) as response:
        assert backend.statistics().leases == 1
        assert next(response.iter_raw()) == b"part one, "
        assert backend.statistics().leases == 1

    assert backend.statistics().leases == 0


def test_closing_the_transport_closes_the_inner_one() -> None:
    """Closing the throttled transport closes the transport it wraps."""
    clock, upstream = FakeClock(), Upstream()

    client(per_org(), clock=clock, upstream=upstream).close()

    assert upstream.closed


def test_default_backend_is_shared_by_transports() -> None:
    """Transports built without a backend share the process-wide one."""
    first = tk.ThrottledTransport(per_org())
    second = tk.ThrottledTransport(per_org())

    assert first.backend is second.backend is tk.default_backend()
    first.close()
    second.close()


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (lambda: tk.RateLimit("10/second", cost=-1), "cost"),
        (lambda: tk.RateLimit("10/second", cost=11), "exceeds the burst"),
        (lambda: tk.RateLimit("10/second", max_wait=-1), "max_wait"),
        (lambda: tk.Concurrency(0), "limit"),
        (lambda: tk.ThrottledTransport(object()), "not a throttlekit policy"),  # type: ignore[arg-type]
        (lambda: tk.ThrottledTransport(max_wait=-2), "max_wait"),
    ],
    ids=[
        "negative-cost",
        "cost-above-burst",
        "max-wait",
        "concurrency",
        "not-a-policy",
        "transport-max-wait",
    ],
)
def test_bad_settings_fail_fast_naming_the_parameter(
    policy: object, message: str
) -> None:
    """Invalid arguments are refused at construction with a clear message."""
    with pytest.raises((ValueError, TypeError), match=message):
        policy()  # type: ignore[operator]


def test_async_transport_paces_like_the_sync_one() -> None:
    """The async twin gives the same waits and records the same extensions."""
    clock, upstream = FakeClock(), Upstream()
    transport = tk.AsyncThrottledTransport(
        per_org(),
        transport=upstream.transport(),
        backend=tk.MemoryBackend(clock=clock.now),
        sleep=clock.asleep,
    )

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport) as http:
            return [await http.get(ORG) for _ in range(12)]

    responses = asyncio.run(main())

    assert clock.slept == pytest.approx([0.1, 0.1])
    assert responses[-1].extensions["throttlekit.waited"] == pytest.approx(0.1)
    assert upstream.closed


def test_async_request_cancelled_while_waiting_gives_its_place_back() -> None:
    """Cancelling a waiting request returns its place to the next caller."""
    upstream = Upstream()
    backend = tk.MemoryBackend()
    transport = tk.AsyncThrottledTransport(
        tk.RateLimit("1/second"), transport=upstream.transport(), backend=backend
    )

    async def main() -> float:
        async with httpx.AsyncClient(transport=transport) as http:
            await http.get(ORG)
            waiting = asyncio.create_task(http.get(ORG))
            for _ in range(1000):
                if backend.statistics().reservations:
                    break
                await asyncio.sleep(0.001)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            return backend.reserve(
                "rate:1/1s~1|host:api.example.test", tk.parse_rate("1/second"), 1, None
            ).wait

    wait = asyncio.run(main())

    assert 0.5 < wait <= 1.0
    assert upstream.paths == ["/api/v1/organizations/42/networks"]


def test_async_concurrency_limits_requests_in_flight() -> None:
    """With Concurrency(3), at most three requests are in flight at once."""
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return httpx.Response(200)

    transport = tk.AsyncThrottledTransport(
        tk.Concurrency(3),
        transport=httpx.MockTransport(handler),
        backend=tk.MemoryBackend(),
    )

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport) as http:
            await asyncio.gather(*(http.get(ORG) for _ in range(30)))

    asyncio.run(main())

    assert peak == 3
