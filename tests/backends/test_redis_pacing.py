"""`RedisBackend` holds `HeaderPacing`'s lines and the retry budget, shared
by every process, with the memory backend's arithmetic."""

from __future__ import annotations

import threading

import httpx
import pytest
import redis

import throttlekit as tk
from throttlekit._core import budget, pacing
from throttlekit.backends.redis import RedisBackend

CONFIG = pacing.PacingConfig(spread=0.0)
URL = "https://api.example.test/v1/items"


def after(place: tk.Reservation) -> float:
    """Return a place's end on the line, server clock, seconds."""
    return float(place.handle.after)  # type: ignore[attr-defined]


def test_learned_interval_spaces_places(backend: RedisBackend) -> None:
    """An interval taught by a response spaces the following places by
    exactly that interval, on the server's clock."""
    backend.learn("k", pacing.Lesson(interval=1800, interval_for=7200), CONFIG)

    first = backend.pace("k", 0.0, CONFIG, None)
    second = backend.pace("k", 0.0, CONFIG, None)

    assert first.wait == 0
    assert after(second) == pytest.approx(after(first) + 1800, abs=1e-6)
    assert 1790 < second.wait <= 1800


def test_pause_refuses_a_caller_that_may_not_wait(backend: RedisBackend) -> None:
    """A paused line refuses a short max_wait with the pause as the reason,
    taking no place."""
    backend.learn("k", pacing.Lesson(pause=3600), CONFIG)

    with pytest.raises(tk.RateLimited) as info:
        backend.pace("k", 0.0, CONFIG, max_wait=60)

    assert info.value.reason == "paused at the server's request"
    assert 3590 < info.value.delay <= 3600
    assert 3590 < backend.paused("k") <= 3600
    assert backend.paused("other") == 0
    assert 3590 < backend.pace("k", 0.0, CONFIG, None).wait <= 3600


def test_last_place_is_given_back(backend: RedisBackend) -> None:
    """Cancelling the newest place lets the next caller take exactly it;
    an older place stays taken."""
    backend.learn("k", pacing.Lesson(interval=1800, interval_for=7200), CONFIG)
    first = backend.pace("k", 0.0, CONFIG, None)
    second = backend.pace("k", 0.0, CONFIG, None)

    backend.cancel(first)
    backend.cancel(second)

    assert after(backend.pace("k", 0.0, CONFIG, None)) == after(second)


def test_concurrent_lessons_are_never_lost(
    backend: RedisBackend, raw: redis.Redis, namespace: str
) -> None:
    """Twenty threads each teaching an unannounced 429 leave twenty strikes:
    every lesson is applied once, none overwritten."""
    barrier = threading.Barrier(20)

    def strike() -> None:
        barrier.wait()
        backend.learn("k", pacing.Lesson(unannounced=True), CONFIG)

    threads = [threading.Thread(target=strike) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert raw.hget(f"{namespace}:{{k}}:g", "strikes") == b"20"


def test_retry_budget_is_shared(redis_url: str, namespace: str) -> None:
    """Two backends spend one budget: it starts full, empties, and refills
    by first attempts."""
    config = budget.BudgetConfig(ratio=0.5, cap=2)
    one = RedisBackend.from_url(redis_url, namespace=namespace)
    two = RedisBackend.from_url(redis_url, namespace=namespace)

    spent = [one.spend("k", config), two.spend("k", config), one.spend("k", config)]
    two.earn("k", config)
    two.earn("k", config)

    assert spent == [True, True, False]
    assert one.spend("k", config) is True
    assert two.spend("k", config) is False
    one.close()
    two.close()


def test_full_budget_keeps_no_key(
    backend: RedisBackend, raw: redis.Redis, namespace: str
) -> None:
    """A budget back at its cap is the default state and leaves no key."""
    config = budget.BudgetConfig(ratio=1, cap=2)
    backend.spend("k", config)
    assert raw.exists(f"{namespace}:{{k}}:b") == 1

    backend.earn("k", config)

    assert raw.exists(f"{namespace}:{{k}}:b") == 0


def test_header_pacing_through_a_transport(
    backend: RedisBackend, redis_url: str, namespace: str
) -> None:
    """A 429 seen by one client pauses another client using another backend
    on the same Redis."""
    answers = [httpx.Response(429, headers={"Retry-After": "3600"})]

    def upstream(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200)

    other = RedisBackend.from_url(redis_url, namespace=namespace)
    clients = [
        httpx.Client(
            transport=tk.ThrottledTransport(
                tk.HeaderPacing(spread=0.0),
                transport=httpx.MockTransport(upstream),
                backend=each,
                max_wait=60,
            )
        )
        for each in (backend, other)
    ]

    assert clients[0].get(URL).status_code == 429
    with pytest.raises(tk.RateLimited) as info:
        clients[1].get(URL)
    assert info.value.delay > 3590
    for client in clients:
        client.close()
    other.close()


@pytest.mark.anyio
async def test_async_pacing_and_budget(backend: RedisBackend) -> None:
    """The async twins pace, learn, earn and spend like the sync ones."""
    config = budget.BudgetConfig(ratio=1, cap=1)
    await backend.alearn("k", pacing.Lesson(interval=1800, interval_for=7200), CONFIG)
    first = await backend.apace("k", 0.0, CONFIG, None)
    second = await backend.apace("k", 0.0, CONFIG, None)
    await backend.acancel(second)

    assert after(second) == pytest.approx(after(first) + 1800, abs=1e-6)
    assert after(await backend.apace("k", 0.0, CONFIG, None)) == after(second)
    assert await backend.apaused("k") == 0
    assert await backend.aspend("k", config) is True
    assert await backend.aspend("k", config) is False
    await backend.aearn("k", config)
    assert await backend.aspend("k", config) is True
