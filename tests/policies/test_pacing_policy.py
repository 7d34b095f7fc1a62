"""`HeaderPacing` in a transport: learned spacing and the fleet-wide pause."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import throttlekit as tk
from throttlekit._core.pacing import Lesson
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
