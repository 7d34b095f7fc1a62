"""`RedisBackend` when Redis stops or hangs: each ``on_error`` mode does what
it promises, nothing hangs, and Redis is used again once it is back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
import redis

import throttlekit as tk
from throttlekit._core import budget, pacing
from throttlekit.backends.redis import OnError, RedisBackend

# The conftest's RedisServer: start(), stop(), pause(), resume(), url.
RedisServer = Any

HOURLY = (tk.Limit(1, 3600, 2),)
MODES: list[OnError] = ["raise", "allow", "local"]


def in_redis(reservation: tk.Reservation | tk.Lease) -> bool:
    """Return whether a reservation or lease was decided by Redis."""
    return type(reservation.handle).__name__ in ("_Ticket", "_LeaseTicket")


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "throttlekit.redis" and record.levelno == logging.WARNING
    ]


def degraded_reserve(backend: RedisBackend, mode: OnError) -> None:
    """Check what reserve does in ``mode`` while Redis is unreachable."""
    if mode == "raise":
        with pytest.raises(tk.BackendError) as info:
            backend.reserve("k", HOURLY, 1, None)
        assert isinstance(info.value.__cause__, redis.RedisError)
    elif mode == "allow":
        waits = [backend.reserve("k", HOURLY, 1, None).wait for _ in range(3)]
        assert waits == [0.0, 0.0, 0.0]
    else:
        # Half of a burst of 2 is one place; the next waits an hour.
        local = backend.reserve("k", HOURLY, 1, None)
        assert (local.wait, in_redis(local)) == (0.0, False)
        with pytest.raises(tk.RateLimited):
            backend.reserve("k", HOURLY, 1, max_wait=60)
        backend.cancel(local)


@pytest.mark.parametrize("mode", MODES)
def test_redis_stopped_then_restarted(
    mode: OnError,
    spawn_redis: Callable[[], RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis stopped, each mode raises, allows or limits locally, warning
    once; after a restart the first call uses Redis again, warning once."""
    caplog.set_level(logging.WARNING, logger="throttlekit.redis")
    server = spawn_redis()
    backend = RedisBackend.from_url(server.url, on_error=mode, retry_interval=0)
    assert in_redis(backend.reserve("k", HOURLY, 1, None))

    server.stop()
    degraded_reserve(backend, mode)
    degraded_reserve(backend, mode)
    assert len(warnings_logged(caplog)) == 1

    server.start()
    assert in_redis(backend.reserve("k", HOURLY, 1, None))
    logged = warnings_logged(caplog)
    assert len(logged) == 2
    assert "back" in logged[1]
    backend.close()


@pytest.mark.parametrize("mode", MODES)
def test_slots_while_redis_is_stopped(
    mode: OnError, spawn_redis: Callable[[], RedisServer]
) -> None:
    """Concurrency slots follow the mode too: an error, a free pass, or this
    process's share of the slots."""
    server = spawn_redis()
    backend = RedisBackend.from_url(server.url, on_error=mode, retry_interval=0)
    server.stop()

    if mode == "raise":
        with pytest.raises(tk.BackendError):
            backend.acquire("pool", 2, None)
    elif mode == "allow":
        leases = [backend.acquire("pool", 2, timeout=0) for _ in range(3)]
        for lease in leases:
            backend.release(lease)
    else:
        lease = backend.acquire("pool", 2, timeout=0)
        with pytest.raises(tk.RateLimited):
            backend.acquire("pool", 2, timeout=0)
        backend.release(lease)
        assert backend.renew(lease) is True
        backend.release(backend.acquire("pool", 2, timeout=0))
    backend.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", MODES)
def test_hung_redis_never_hangs_a_call(
    mode: OnError, spawn_redis: Callable[[], RedisServer]
) -> None:
    """A Redis that accepts connections but never answers fails each call
    after the timeout, and the mode decides what happens then."""
    server = spawn_redis()
    backend = RedisBackend.from_url(
        server.url,
        on_error=mode,
        timeout=0.2,
        retry_interval=0,
    )
    first = backend.reserve("k", HOURLY, 1, None)
    server.pause()

    try:
        degraded_reserve(backend, mode)
        if mode == "raise":
            with pytest.raises(tk.BackendError) as info:
                backend.cancel(first)
            assert isinstance(info.value.__cause__, redis.TimeoutError)
            with pytest.raises(tk.BackendError):
                asyncio.run(backend.areserve("k", HOURLY, 1, None))
        else:
            backend.cancel(first)
            asyncio.run(backend.areserve("k", HOURLY, 1, None))
    finally:
        server.resume()
    backend.close()


def test_calls_between_retries_skip_redis(
    spawn_redis: Callable[[], RedisServer],
) -> None:
    """After a failure, calls within retry_interval go straight to the
    fallback without asking Redis."""
    server = spawn_redis()
    backend = RedisBackend.from_url(server.url, on_error="allow", retry_interval=3600)
    server.stop()
    backend.reserve("k", HOURLY, 1, None)

    server.start()

    assert not in_redis(backend.reserve("k", HOURLY, 1, None))
    backend.close()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_async_redis_stopped_then_restarted(
    mode: OnError,
    spawn_redis: Callable[[], RedisServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The async twins follow the same modes, and use Redis again on the first
    call after it is back."""
    caplog.set_level(logging.WARNING, logger="throttlekit.redis")
    server = spawn_redis()
    backend = RedisBackend.from_url(server.url, on_error=mode, retry_interval=0)
    assert in_redis(await backend.areserve("k", HOURLY, 1, None))

    server.stop()
    if mode == "raise":
        with pytest.raises(tk.BackendError):
            await backend.areserve("k", HOURLY, 1, None)
        with pytest.raises(tk.BackendError):
            await backend.aacquire("pool", 1, None)
    else:
        reservation = await backend.areserve("k", HOURLY, 1, None)
        await backend.acancel(reservation)
        lease = await backend.aacquire("pool", 1, None)
        await backend.arelease(lease)
        assert not in_redis(reservation)
        assert not in_redis(lease)

    server.start()
    assert in_redis(await backend.areserve("k", HOURLY, 1, None))
    assert len(warnings_logged(caplog)) == 2
    await backend.aclose()
    backend.close()


@pytest.mark.parametrize("mode", MODES)
def test_pacing_and_budget_while_redis_is_stopped(
    mode: OnError, spawn_redis: Callable[[], RedisServer]
) -> None:
    """Pacing lines and retry budgets follow the mode too: an error, a free
    pass, or this process's own line and budget."""
    server = spawn_redis()
    backend = RedisBackend.from_url(server.url, on_error=mode, retry_interval=0)
    config = pacing.PacingConfig(spread=0.0)
    tokens = budget.BudgetConfig(ratio=1, cap=1)
    server.stop()

    if mode == "raise":
        with pytest.raises(tk.BackendError):
            backend.pace("k", 0.0, config, None)
        with pytest.raises(tk.BackendError):
            backend.learn("k", pacing.Lesson(pause=3600), config)
        with pytest.raises(tk.BackendError):
            backend.spend("k", tokens)
        with pytest.raises(tk.BackendError):
            backend.paused("k")
    elif mode == "allow":
        backend.learn("k", pacing.Lesson(pause=3600), config)
        backend.earn("k", tokens)
        assert backend.paused("k") == 0
        assert backend.pace("k", 0.0, config, max_wait=0).wait == 0
        assert [backend.spend("k", tokens) for _ in range(2)] == [True, True]
    else:
        backend.learn("k", pacing.Lesson(pause=3600), config)
        assert 3590 < backend.paused("k") <= 3600
        with pytest.raises(tk.RateLimited):
            backend.pace("k", 0.0, config, max_wait=60)
        assert [backend.spend("k", tokens) for _ in range(2)] == [True, False]
        backend.earn("k", tokens)
        assert backend.spend("k", tokens) is True
    backend.close()
