"""`HeaderPacing` in a transport: learned spacing and the fleet-wide pause."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

import throttlekit as tk
from throttlekit._core.pacing import Lesson
from throttlekit.policies.pacing import PacingStatistics
from throttlekit.testing import FakeClock

URL = "https://api.example.test/v1/items"


class Script:
    """An upstream answering from a list of (status, headers), then 200s."""

    def __init__(self, *answers: tuple[int, dict[str, str]]) -> None:
        self.answers = list(answers)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return httpx.Response(status, headers=headers)


def transport(
    script: Script, clock: FakeClock, backend: tk.MemoryBackend, **kw: object
) -> httpx.Client:
    pacing = tk.HeaderPacing(spread=0.0, **kw)  # type: ignore[arg-type]
    return httpx.Client(
        transport=tk.ThrottledTransport(
            pacing,
            transport=httpx.MockTransport(script),
            backend=backend,
            sleep=clock.sleep,
        )
    )


def test_a_429_pauses_every_client_sharing_the_backend() -> None:
    """After one client's 429, another client waits instead of finding it too."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    script = Script((429, {"Retry-After": "2"}))
    first = transport(script, clock, backend)
    second = transport(script, clock, backend)

    assert first.get(URL).status_code == 429
    response = second.get(URL)

    assert response.status_code == 200
    assert clock.slept == [2.0]
    assert script.calls == 2


def test_remaining_quota_spaces_the_next_calls() -> None:
    """Five left and one second to the reset spaces calls 0.2 s apart."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    headers = {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1"}
    script = Script((200, headers))
    http = transport(script, clock, backend)

    for _ in range(3):
        http.get(URL)

    assert clock.slept == pytest.approx([0.2])


def test_retry_after_beyond_the_bound_fails_fast() -> None:
    """A pause longer than max_retry_after raises RateLimited, unsent."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    script = Script((429, {"Retry-After": "7200"}))
    http = transport(script, clock, backend, max_retry_after=60)
    http.get(URL)

    with pytest.raises(tk.RateLimited) as info:
        http.get(URL)

    assert info.value.key == "pace|host:api.example.test"
    assert info.value.delay == pytest.approx(7200.0)
    assert "paused" in str(info.value)
    assert script.calls == 1
    assert clock.slept == []


def test_unreadable_retry_after_is_never_retry_now() -> None:
    """A 429 whose Retry-After cannot be read pauses for the default."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    script = Script((429, {"Retry-After": "soon-ish"}))
    http = transport(script, clock, backend, default_pause=1.5)

    http.get(URL)
    http.get(URL)

    assert clock.slept == [1.5]


def test_calls_without_a_key_are_not_paced() -> None:
    """A key function returning None leaves the request alone."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    script = Script((429, {"Retry-After": "5"}))
    http = transport(script, clock, backend, key=lambda request: None)

    http.get(URL)
    http.get(URL)

    assert clock.slept == []
    assert backend.statistics().gates == 0


def test_cancelled_waiter_gives_its_place_back() -> None:
    """An async request cancelled during a pause frees its place in line."""
    backend = tk.MemoryBackend()
    script = Script((429, {"Retry-After": "0.3"}))
    client = httpx.AsyncClient(
        transport=tk.AsyncThrottledTransport(
            tk.HeaderPacing(spread=0.0),
            transport=httpx.MockTransport(script),
            backend=backend,
        )
    )

    async def main() -> float:
        await client.get(URL)
        waiting = asyncio.create_task(client.get(URL))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate = backend._gates["pace|host:api.example.test"]
        return gate.tat - gate.paused_until

    assert asyncio.run(main()) <= 0.0
    assert script.calls == 1


@pytest.mark.parametrize(
    "setting",
    [{"default_pause": -1}, {"max_pause": float("inf")}, {"spread": "x"}],
    ids=["negative", "infinite", "not-a-number"],
)
def test_bad_settings_fail_fast(setting: dict[str, object]) -> None:
    """Invalid pacing settings are refused at construction, by name."""
    with pytest.raises((ValueError, TypeError), match=next(iter(setting))):
        tk.HeaderPacing(**setting)  # type: ignore[arg-type]


def test_pause_that_begins_while_waiting_is_waited_out() -> None:
    """A call already waiting its turn does not walk into a newer pause."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    headers = {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1"}
    script = Script((200, headers))
    pacing = tk.HeaderPacing(spread=0.0)
    line = "pace|host:api.example.test"

    def sleep(seconds: float) -> None:
        # Another process sees a 429 while this call sleeps.
        if not clock.slept:
            backend.learn(line, Lesson(pause=5.0), pacing.config)
        clock.sleep(seconds)

    http = httpx.Client(
        transport=tk.ThrottledTransport(
            pacing, transport=httpx.MockTransport(script), backend=backend, sleep=sleep
        )
    )
    http.get(URL)
    http.get(URL)
    http.get(URL)

    assert clock.slept == pytest.approx([0.2, 4.8])
    assert script.calls == 3


def test_a_call_waiting_in_a_pause_takes_a_new_place_behind_it() -> None:
    """A call whose place fell inside a newer pause goes after it, and the
    line keeps its spacing: the call after it still waits one interval."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    script = Script()
    pacing = tk.HeaderPacing(spread=0.0, adaptive=tk.AdaptiveRate(10.0))
    line = "pace|host:api.example.test"

    def sleep(seconds: float) -> None:
        # Another process sees a 429 while this call sleeps: the rate is cut
        # blind from 10/s to 5/s, and the key pauses for 5 seconds.
        if not clock.slept:
            backend.learn(line, Lesson(pause=5.0), pacing.config)
        clock.sleep(seconds)

    http = httpx.Client(
        transport=tk.ThrottledTransport(
            pacing, transport=httpx.MockTransport(script), backend=backend, sleep=sleep
        )
    )
    for _ in range(3):
        http.get(URL)

    assert clock.slept == pytest.approx([0.1, 4.9, 1 / 5])
    assert script.calls == 3


def test_statistics_show_the_learned_rate_and_the_pause() -> None:
    """After a 429, statistics show the cut rate and the pause left, for a
    request or its key."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    script = Script((429, {"Retry-After": "2"}))
    pacing = tk.HeaderPacing(adaptive=tk.AdaptiveRate(100.0))
    http = httpx.Client(
        transport=tk.ThrottledTransport(
            pacing,
            transport=httpx.MockTransport(script),
            backend=backend,
            sleep=clock.sleep,
        )
    )
    before = pacing.statistics(httpx.Request("GET", URL), backend)

    assert http.get(URL).status_code == 429
    clock.advance(0.5)
    after = pacing.statistics("host:api.example.test", backend)

    assert (before.rate, before.paused_for) == (100.0, 0.0)
    assert after == PacingStatistics(
        key="pace|host:api.example.test",
        rate=50.0,
        measured=None,
        paused_for=1.5,
        interval=0.0,
        strikes=0,
    )


def test_statistics_show_the_target_a_firm_measurement_set() -> None:
    """A second 429 whose span measured the server firmly shows that rate
    as the target, and the learned rate cut below it."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    pacing = tk.HeaderPacing(adaptive=tk.AdaptiveRate(100.0))
    line = "pace|host:api.example.test"
    ok = Lesson(calm=True, accepted=True)

    def accept(count: int, start: float, end: float) -> None:
        for n in range(count):
            clock.advance(start + (end - start) * n / (count - 1) - clock.now())
            backend.learn(line, ok, pacing.config)

    # A 50/s server with a burst of 11: from idle, 11 calls in 0.2 s, then a
    # 429 that measures nothing and halves the ceiling.
    accept(11, 0.0, 0.2)
    clock.advance(0.02)
    backend.learn(line, Lesson(pause=1.0), pacing.config)
    # After the one-second pause, 11 + 50 * 3 calls in the 3 s to the next
    # 429: the slope against the first span is above its bounds, so the
    # measurement is the upper bound, 161 / 3, and it is firm.
    accept(161, 1.22, 4.2)
    clock.advance(4.22 - clock.now())
    backend.learn(line, Lesson(pause=1.0), pacing.config)

    stats = pacing.statistics(line, backend)

    assert stats.target == pytest.approx(161 / 3)
    assert stats.rate == pytest.approx(0.9 * 161 / 3)
    assert stats.paused_for == pytest.approx(1.0)


def test_statistics_without_an_adaptive_rate_show_no_rate() -> None:
    """Without an adaptive rate, statistics show the spacing from headers and
    no rate."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    headers = {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "1"}
    script = Script((200, headers))
    pacing = tk.HeaderPacing()
    http = httpx.Client(
        transport=tk.ThrottledTransport(
            pacing, transport=httpx.MockTransport(script), backend=backend
        )
    )
    http.get(URL)

    stats = asyncio.run(pacing.astatistics("pace|host:api.example.test", backend))

    assert (stats.rate, stats.measured, stats.interval) == (None, None, 0.2)


def test_statistics_of_a_request_without_a_key_are_refused() -> None:
    """A request the policy does not pace has no line to describe."""
    pacing = tk.HeaderPacing(key=lambda request: None)

    with pytest.raises(ValueError, match="no pacing key"):
        pacing.statistics(httpx.Request("GET", URL), tk.MemoryBackend())


@pytest.fixture(params=["memory", "redis"])
def shared(request: pytest.FixtureRequest) -> Iterator[tk.Backend]:
    """A MemoryBackend, or a RedisBackend on a throwaway redis-server."""
    if request.param == "memory":
        yield tk.MemoryBackend()
        return
    url = request.getfixturevalue("redis_url")
    backend = tk.RedisBackend.from_url(url, namespace=f"t{uuid.uuid4().hex[:12]}")
    yield backend
    backend.close()


def test_backends_agree_on_the_adaptive_line(shared: tk.Backend) -> None:
    """Memory and Redis cut the rate alike and resume a paused adaptive line
    within one spacing, whatever the spread."""
    config = tk.HeaderPacing(spread=0.5, adaptive=tk.AdaptiveRate(100.0)).config
    shared.learn("line", Lesson(pause=5.0), config)

    place = shared.pace("line", 0.999, config, None)
    now, gate = shared.gate("line")

    # The place was taken between the lesson (the cut) and now.
    latest = 5.0 + 0.999 / 50.0
    earliest = latest - (now - gate.last_cut)
    assert (gate.rate, gate.span_count) == (50.0, 0.0)
    assert gate.paused_until == pytest.approx(gate.last_cut + 5.0)
    assert earliest - 1e-6 <= place.wait <= latest + 1e-6
