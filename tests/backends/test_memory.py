"""`MemoryBackend`: threads, asyncio tasks, cancellation and fairness."""

from __future__ import annotations

import asyncio
import threading

import pytest

import throttlekit as tk
from throttlekit.backends import memory
from throttlekit.testing import FakeClock

LIMITS = tk.parse_rate("10/second")


def test_concurrent_threads_get_distinct_places() -> None:
    """Fifty threads reserving at one instant get the burst, then one place
    per interval each, with no place given twice."""
    backend = tk.MemoryBackend(clock=FakeClock().now)
    waits: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def reserve() -> None:
        barrier.wait()
        reservation = backend.reserve("k", LIMITS, 1, None)
        with lock:
            waits.append(reservation.wait)

    threads = [threading.Thread(target=reserve) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    expected = [0.0] * 10 + [round(0.1 * n, 6) for n in range(1, 41)]
    assert sorted(round(w, 6) for w in waits) == expected


def test_refusal_charges_no_limit() -> None:
    """A reservation refused for max_wait leaves every limit untouched."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    limits = tk.parse_rate("2/second;3/minute")
    for _ in range(3):
        backend.reserve("k", limits, 1, None)

    with pytest.raises(tk.RateLimited) as info:
        backend.reserve("k", limits, 1, max_wait=5)

    assert info.value.key == "k"
    assert info.value.delay == pytest.approx(20.0)
    clock.advance(20.0)
    assert backend.reserve("k", limits, 1, None).wait == 0.0
    assert backend.reserve("k", limits, 1, None).wait == pytest.approx(20.0)


def test_cost_above_capacity_raises_before_touching_state() -> None:
    """A cost above the burst raises CapacityExceeded and holds no place."""
    backend = tk.MemoryBackend(clock=FakeClock().now)

    with pytest.raises(tk.CapacityExceeded):
        backend.reserve("k", LIMITS, 11, None)

    assert backend.statistics().buckets == 0


def test_cancelled_reservations_return_capacity_in_any_order() -> None:
    """Waiters giving up in arrival order still return all their places."""
    backend = tk.MemoryBackend(clock=FakeClock().now)
    for _ in range(10):
        backend.reserve("k", LIMITS, 1, None)
    waiting = [backend.reserve("k", LIMITS, 1, None) for _ in range(20)]

    for reservation in waiting:
        backend.cancel(reservation)

    assert backend.reserve("k", LIMITS, 1, None).wait == pytest.approx(0.1)
    assert backend.statistics().reservations == 1


def test_idle_buckets_are_swept() -> None:
    """Buckets whose state has fully drained are dropped from memory."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)
    for n in range(memory._SWEEP_EVERY - 1):
        backend.reserve(f"k{n}", LIMITS, 1, None)
    clock.advance(1.0)

    backend.reserve("last", LIMITS, 1, None)

    assert backend.statistics().buckets == 1


def test_slots_are_served_first_come_first_served() -> None:
    """Threads waiting for a slot get it in the order they asked."""
    backend = tk.MemoryBackend()
    first = backend.acquire("k", 1, None)
    order: list[int] = []

    def take(n: int) -> None:
        lease = backend.acquire("k", 1, None)
        order.append(n)
        backend.release(lease)

    threads = []
    for n in range(8):
        thread = threading.Thread(target=take, args=(n,))
        thread.start()
        threads.append(thread)
        _until(lambda n=n: backend.statistics().lease_waiters == n + 1)
    backend.release(first)
    for thread in threads:
        thread.join()

    assert order == list(range(8))
    assert backend.statistics() == memory.BackendStatistics(0, 0, 0, 0, 0)


def test_acquire_times_out_with_rate_limited() -> None:
    """A thread that waits past its timeout gets RateLimited and leaves no trace."""
    backend = tk.MemoryBackend()
    lease = backend.acquire("k", 1, None)

    with pytest.raises(tk.RateLimited, match="no concurrency slot"):
        backend.acquire("k", 1, timeout=0.01)

    assert backend.statistics().lease_waiters == 0
    backend.release(lease)
    backend.release(lease)
    assert backend.statistics().leases == 0


def test_cancelled_async_waiter_leaks_no_slot() -> None:
    """A task cancelled while waiting for a slot does not keep one."""
    backend = tk.MemoryBackend()

    async def main() -> int:
        lease = await backend.aacquire("k", 1, None)
        waiter = asyncio.create_task(backend.aacquire("k", 1, None))
        await _until_async(lambda: backend.statistics().lease_waiters == 1)
        # Release and cancel in the same step: the slot is handed to the
        # waiter just as it is cancelled, and must move on.
        await backend.arelease(lease)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        again = await backend.aacquire("k", 1, timeout=1.0)
        await backend.arelease(again)
        return backend.statistics().leases

    assert asyncio.run(main()) == 0


def test_ten_thousand_waiters_wake_one_per_release(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ten thousand tasks waiting on one slot are woken once each, in order."""
    backend = tk.MemoryBackend()
    wakes = 0
    resolve = memory._resolve

    def counting(future: asyncio.Future[None]) -> None:
        nonlocal wakes
        wakes += 1
        resolve(future)

    monkeypatch.setattr(memory, "_resolve", counting)
    order: list[int] = []

    async def take(n: int) -> None:
        lease = await backend.aacquire("k", 1, None)
        order.append(n)
        await asyncio.sleep(0)
        await backend.arelease(lease)

    async def main() -> None:
        tasks = [asyncio.create_task(take(n)) for n in range(10_000)]
        await asyncio.gather(*tasks)

    asyncio.run(main())

    assert order == list(range(10_000))
    assert wakes == 9_999


def test_backend_serves_event_loops_one_after_another() -> None:
    """The same backend works across successive asyncio.run calls."""
    backend = tk.MemoryBackend()

    async def contend() -> int:
        async def one() -> None:
            lease = await backend.aacquire("k", 2, None)
            await asyncio.sleep(0)
            await backend.arelease(lease)

        await asyncio.gather(*(one() for _ in range(20)))
        return backend.statistics().leases

    assert [asyncio.run(contend()) for _ in range(3)] == [0, 0, 0]


def test_invalid_slot_limit_is_refused() -> None:
    """A concurrency limit below one raises ValueError naming it."""
    with pytest.raises(ValueError, match="limit must be an int >= 1, got 0"):
        tk.MemoryBackend().acquire("k", 0, None)


def _until(condition: object, attempts: int = 2000) -> None:
    """Wait (briefly, by yielding the thread) until ``condition()`` holds."""
    event = threading.Event()
    for _ in range(attempts):
        if condition():  # type: ignore[operator]
            return
        event.wait(0.005)
    raise AssertionError("condition never held")


async def _until_async(condition: object, attempts: int = 2000) -> None:
    for _ in range(attempts):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition never held")
