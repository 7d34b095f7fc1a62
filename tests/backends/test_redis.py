"""`RedisBackend` against a real Redis: the memory backend's semantics, timed
by the Redis server's clock."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import httpx
import pytest
import redis
import redis.asyncio

import throttlekit as tk
from throttlekit._core import pacing
from throttlekit.backends.redis import RedisBackend

HOUR_US = 3_600_000_000
# One per hour, burst 2: waits are hours long, so the microseconds the test
# itself takes never change a result.
HOURLY = (tk.Limit(1, 3600, 2),)


def admit(reservation: tk.Reservation) -> int:
    """Return when a reservation may go, on the server's clock, in µs."""
    admit_us: int = reservation.handle.admit_us  # type: ignore[attr-defined]
    return admit_us


def test_burst_then_one_place_per_interval(backend: RedisBackend) -> None:
    """A burst of 2 goes at once; the third caller goes one interval after
    the first, on the server's clock."""
    first = backend.reserve("k", HOURLY, 1, None)
    second = backend.reserve("k", HOURLY, 1, None)
    third = backend.reserve("k", HOURLY, 1, None)

    assert (first.wait, second.wait) == (0.0, 0.0)
    assert admit(third) == admit(first) + HOUR_US
    assert 3590 < third.wait <= 3600


def test_refusal_charges_nothing(backend: RedisBackend) -> None:
    """A wait beyond max_wait raises RateLimited with the delay and leaves
    the bucket as it was."""
    first = backend.reserve("k", HOURLY, 1, None)
    backend.reserve("k", HOURLY, 1, None)

    with pytest.raises(tk.RateLimited) as info:
        backend.reserve("k", HOURLY, 1, max_wait=60)

    assert info.value.key == "k"
    assert 3590 < info.value.delay <= 3600
    assert admit(backend.reserve("k", HOURLY, 1, None)) == admit(first) + HOUR_US


def test_cancel_of_the_last_reservation_restores_the_bucket(
    backend: RedisBackend,
) -> None:
    """Giving back the last place in line lets the next caller take exactly
    that place."""
    for _ in range(2):
        backend.reserve("k", HOURLY, 1, None)
    third = backend.reserve("k", HOURLY, 1, None)

    backend.cancel(third)

    assert admit(backend.reserve("k", HOURLY, 1, None)) == admit(third)


def test_cancel_from_the_middle_waits_for_the_ones_behind(
    backend: RedisBackend,
) -> None:
    """A place given back from the middle keeps the line's pace until the
    places behind it are given back too; then all of them are undone."""
    for _ in range(2):
        backend.reserve("k", HOURLY, 1, None)
    middle = backend.reserve("k", HOURLY, 1, None)
    last = backend.reserve("k", HOURLY, 1, None)

    backend.cancel(middle)
    after = backend.reserve("k", HOURLY, 1, None)
    assert admit(after) == admit(last) + HOUR_US

    backend.cancel(after)
    backend.cancel(last)
    assert admit(backend.reserve("k", HOURLY, 1, None)) == admit(middle)


def test_cancel_twice_is_harmless(backend: RedisBackend) -> None:
    """A second cancel of the same reservation gives nothing more back, even
    when another caller has taken its place meanwhile."""
    for _ in range(2):
        backend.reserve("k", HOURLY, 1, None)
    third = backend.reserve("k", HOURLY, 1, None)
    backend.cancel(third)
    fourth = backend.reserve("k", HOURLY, 1, None)

    backend.cancel(third)

    assert admit(fourth) == admit(third)
    assert admit(backend.reserve("k", HOURLY, 1, None)) == admit(fourth) + HOUR_US


def test_limits_are_decided_together(backend: RedisBackend) -> None:
    """With several limits, the slowest one sets the wait."""
    limits = (tk.Limit(10, 1, 10), tk.Limit(3, 3600, 3))
    first = backend.reserve("k", limits, 1, None)
    for _ in range(2):
        assert backend.reserve("k", limits, 1, None).wait == 0

    assert admit(backend.reserve("k", limits, 1, None)) == admit(first) + HOUR_US // 3


def test_fractional_cost_charges_its_share(backend: RedisBackend) -> None:
    """A request of cost 0.5 after a full burst waits half an interval."""
    first = backend.reserve("k", HOURLY, 2, None)

    half = backend.reserve("k", HOURLY, 0.5, None)

    assert first.wait == 0
    assert admit(half) == admit(first) + HOUR_US // 2


def test_changed_limits_keep_the_schedule(backend: RedisBackend) -> None:
    """Policies sharing a bucket with other limits, as many of them, keep
    one schedule instead of resetting each other's."""
    first = backend.reserve("k", HOURLY, 1, None)
    backend.reserve("k", HOURLY, 1, None)

    other = backend.reserve("k", (tk.Limit(1, 3600, 1),), 1, None)

    assert admit(other) == admit(first) + 2 * HOUR_US


def test_another_number_of_limits_starts_over(backend: RedisBackend) -> None:
    """A bucket used with another number of limits starts from idle."""
    for _ in range(3):
        backend.reserve("k", HOURLY, 1, None)

    two = (tk.Limit(1, 3600, 1), tk.Limit(2, 7200, 2))
    assert backend.reserve("k", two, 1, None).wait == 0


def test_capacity_is_checked_without_redis() -> None:
    """A cost above the burst raises CapacityExceeded even when Redis is not
    there to ask."""
    backend = RedisBackend.from_url("redis://127.0.0.1:9/0")

    with pytest.raises(tk.CapacityExceeded):
        backend.reserve("k", HOURLY, 3, None)
    backend.close()


def test_keys_carry_the_namespace_and_one_hash_tag(
    backend: RedisBackend, raw: redis.Redis, namespace: str
) -> None:
    """A bucket lives in one key named namespace, hash tag and kind."""
    backend.reserve("rate:1/3600s~2|organizations:7", HOURLY, 1, None)
    backend.acquire("conc:2|host:api", 2, None)

    assert sorted(raw.keys(f"{namespace}:*")) == [
        f"{namespace}:{{conc:2|host:api}}:c".encode(),
        f"{namespace}:{{rate:1/3600s~2|organizations:7}}:r".encode(),
    ]


def test_names_with_braces_or_great_length_become_digests(
    backend: RedisBackend, raw: redis.Redis, namespace: str
) -> None:
    """A name that would break the hash tag, or is very long, appears in key
    names only as a digest."""
    odd = "a{b}c"
    long = "x" * 300
    backend.reserve(odd, HOURLY, 1, None)
    backend.reserve(long, HOURLY, 1, None)

    expected = {
        f"{namespace}:{{~{tk.keys.digest(name)}}}:r".encode() for name in (odd, long)
    }
    assert set(raw.keys(f"{namespace}:*")) == expected


def test_bucket_expires_once_idle(
    backend: RedisBackend, raw: redis.Redis, namespace: str
) -> None:
    """A bucket's key lives until the bucket is idle again, plus a second."""
    backend.reserve("k", HOURLY, 1, None)
    backend.reserve("fast", (tk.Limit(1000, 1, 1),), 1, None)

    assert 3_599_000 < raw.pttl(f"{namespace}:{{k}}:r") <= 3_601_000
    assert 0 < raw.pttl(f"{namespace}:{{fast}}:r") <= 1001


def test_lost_script_cache_is_reloaded(backend: RedisBackend, raw: redis.Redis) -> None:
    """After the server forgets its scripts, the next decision still works."""
    first = backend.reserve("k", HOURLY, 2, None)
    raw.script_flush()

    assert admit(backend.reserve("k", HOURLY, 1, None)) == admit(first) + HOUR_US


def test_concurrency_slots_are_shared(backend: RedisBackend) -> None:
    """Two slots admit two holders; a third waits, and gets a slot once one
    is released."""
    first = backend.acquire("pool", 2, None)
    backend.acquire("pool", 2, None)

    with pytest.raises(tk.RateLimited) as info:
        backend.acquire("pool", 2, timeout=0)
    assert info.value.reason == "no concurrency slot"

    backend.release(first)
    backend.release(first)
    backend.acquire("pool", 2, timeout=0)
    with pytest.raises(tk.RateLimited):
        backend.acquire("pool", 2, timeout=0)


def test_expired_lease_frees_its_slot(redis_url: str, namespace: str) -> None:
    """A holder that never releases loses its slot when its lease runs out,
    and releasing it late frees nobody else's slot."""
    backend = RedisBackend.from_url(redis_url, namespace=namespace, lease_ttl=0.2)
    dead = backend.acquire("pool", 1, None)

    taker = backend.acquire("pool", 1, timeout=30)
    backend.release(dead)

    assert taker.waited > 0
    with pytest.raises(tk.RateLimited):
        backend.acquire("pool", 1, timeout=0)
    backend.close()


def test_renew_extends_a_held_lease(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    """Renewing moves a lease's expiry to lease_ttl from now."""
    short = RedisBackend.from_url(redis_url, namespace=namespace, lease_ttl=1)
    long = RedisBackend.from_url(redis_url, namespace=namespace, lease_ttl=3600)
    lease = short.acquire("pool", 1, None)
    pool = f"{namespace}:{{pool}}:c"
    ((_, before),) = raw.zrange(pool, 0, 0, withscores=True)

    assert long.renew(lease) is True

    ((_, after),) = raw.zrange(pool, 0, 0, withscores=True)
    assert after - before >= HOUR_US - 1_000_000
    short.close()
    long.close()


def test_renew_of_an_expired_lease_fails(redis_url: str, namespace: str) -> None:
    """A lease that ran out is not revived by renew."""
    backend = RedisBackend.from_url(redis_url, namespace=namespace, lease_ttl=0.05)
    lease = backend.acquire("pool", 1, None)
    time.sleep(0.1)

    assert backend.renew(lease) is False
    backend.close()


def test_policies_work_unchanged_through_transports(backend: RedisBackend) -> None:
    """RateLimit and Concurrency run on Redis through ThrottledTransport; a
    spent budget refuses a request that may not wait."""
    transport = tk.ThrottledTransport(
        tk.RateLimit("1/hour", burst=2, key="org"),
        tk.Concurrency(1, key="api"),
        transport=httpx.MockTransport(lambda request: httpx.Response(200)),
        backend=backend,
        max_wait=0,
    )
    with httpx.Client(transport=transport) as client:
        responses = [client.get("https://api.example/x") for _ in range(2)]
        with pytest.raises(tk.RateLimited):
            client.get("https://api.example/x")

    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].extensions["throttlekit.keys"] == (
        "rate:1/3600s~2|org",
        "conc:1|api",
    )


@pytest.mark.anyio
async def test_async_burst_pace_and_cancel(backend: RedisBackend) -> None:
    """The async twins reserve, pace and give back like the sync ones."""
    first = await backend.areserve("k", HOURLY, 1, None)
    await backend.areserve("k", HOURLY, 1, None)
    third = await backend.areserve("k", HOURLY, 1, None)
    assert admit(third) == admit(first) + HOUR_US

    await backend.acancel(third)

    assert admit(await backend.areserve("k", HOURLY, 1, None)) == admit(third)
    with pytest.raises(tk.RateLimited):
        await backend.areserve("k", HOURLY, 1, max_wait=60)


@pytest.mark.anyio
async def test_concurrent_async_callers_share_one_script_call(
    backend: RedisBackend, raw: redis.Redis
) -> None:
    """A hundred concurrent callers on one bucket are decided in one script
    call, in the order they came: the burst, then one place per interval."""
    limits = (tk.Limit(1, 3600, 10),)
    await backend.areserve("warm", limits, 1, None)
    raw.config_resetstat()

    reservations = await asyncio.gather(
        *(backend.areserve("k", limits, 1, None) for _ in range(100))
    )

    calls = raw.info("commandstats")["cmdstat_evalsha"]["calls"]
    start = admit(reservations[0])
    expected = [start] * 10 + [start + n * HOUR_US for n in range(1, 91)]
    assert [admit(r) for r in reservations] == expected
    assert calls == 1


@pytest.mark.anyio
async def test_cancelled_async_caller_gives_its_place_back(
    backend: RedisBackend,
) -> None:
    """A caller cancelled while its reservation is being decided leaves no
    place charged."""
    first = await backend.areserve("k", HOURLY, 1, None)
    await backend.areserve("k", HOURLY, 1, None)

    waiter = asyncio.ensure_future(backend.areserve("k", HOURLY, 1, None))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    later = await backend.areserve("k", HOURLY, 1, None)
    assert admit(later) == admit(first) + HOUR_US


@pytest.mark.anyio
async def test_async_concurrency_and_renew(backend: RedisBackend) -> None:
    """The async slot methods take, refuse, renew and release like the sync
    ones."""
    lease = await backend.aacquire("pool", 1, None)
    with pytest.raises(tk.RateLimited):
        await backend.aacquire("pool", 1, timeout=0.01)

    assert await backend.arenew(lease) is True
    await backend.arelease(lease)
    await backend.arelease(lease)
    await backend.arelease(await backend.aacquire("pool", 1, timeout=0))


@pytest.mark.anyio
async def test_cancelled_slot_waiter_holds_no_slot(backend: RedisBackend) -> None:
    """A waiter cancelled while it waits for a slot leaves none held."""
    holder = await backend.aacquire("pool", 1, None)
    waiter = asyncio.ensure_future(backend.aacquire("pool", 1, None))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    await backend.arelease(holder)
    await backend.arelease(await backend.aacquire("pool", 1, timeout=0))


def test_backend_serves_event_loops_one_after_another(backend: RedisBackend) -> None:
    """One backend serves several asyncio.run calls in turn, as a Celery
    task running asyncio.run per task does, and leaves no connection open."""

    async def reserve() -> int:
        return admit(await backend.areserve("k", HOURLY, 1, None))

    first = asyncio.run(reserve())
    asyncio.run(reserve())
    third = asyncio.run(reserve())
    gc.collect()

    assert third == first + HOUR_US


@pytest.mark.anyio
async def test_async_policies_work_unchanged(backend: RedisBackend) -> None:
    """RateLimit and Concurrency run on Redis through the async transport."""
    transport = tk.AsyncThrottledTransport(
        tk.RateLimit("1/hour", burst=2, key="org"),
        tk.Concurrency(1, key="api"),
        transport=httpx.MockTransport(lambda request: httpx.Response(200)),
        backend=backend,
        max_wait=0,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        statuses = [(await client.get("https://api.example/x")).status_code]
        statuses.append((await client.get("https://api.example/x")).status_code)
        with pytest.raises(tk.RateLimited):
            await client.get("https://api.example/x")

    assert statuses == [200, 200]


def test_backend_needs_a_client() -> None:
    """A backend without any client is refused at construction."""
    with pytest.raises(TypeError, match="client"):
        RedisBackend()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        pytest.param("on_error", "ignore", id="on_error"),
        pytest.param("local_share", 0, id="local_share"),
        pytest.param("namespace", "a{b}", id="namespace"),
        pytest.param("lease_ttl", 0, id="lease_ttl"),
    ],
)
def test_bad_options_are_refused(option: str, value: object) -> None:
    """An invalid option raises ValueError naming it."""
    with pytest.raises(ValueError, match=option):
        RedisBackend(redis.Redis(), **{option: value})  # type: ignore[arg-type]


def test_own_clients_decoding_responses_work(redis_url: str, namespace: str) -> None:
    """Clients configured by the caller, even ones decoding replies to text,
    serve every operation, sync and async."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    backend = RedisBackend(
        client,
        async_client=lambda: redis.asyncio.Redis.from_url(
            redis_url, decode_responses=True
        ),
        namespace=namespace,
    )
    config = pacing.PacingConfig(spread=0.0)
    first = backend.reserve("k", HOURLY, 1, None)
    backend.reserve("k", HOURLY, 1, None)
    third = backend.reserve("k", HOURLY, 1, None)
    backend.cancel(third)
    backend.release(backend.acquire("pool", 1, None))
    backend.learn("line", pacing.Lesson(interval=1800, interval_for=7200), config)
    backend.cancel(backend.pace("line", 0.0, config, None))

    async def fourth() -> tk.Reservation:
        return await backend.areserve("k", HOURLY, 1, None)

    assert admit(asyncio.run(fourth())) == admit(first) + HOUR_US
    client.close()


def test_every_backend_method_is_offered() -> None:
    """RedisBackend offers every method of the Backend protocol, so any
    policy that runs on MemoryBackend runs on it."""
    wanted = [name for name in dir(tk.Backend) if not name.startswith("_")]

    missing = [
        name for name in wanted if not callable(getattr(RedisBackend, name, None))
    ]

    assert missing == []


def test_threads_never_hold_more_slots_than_the_limit(backend: RedisBackend) -> None:
    """Eight threads sharing two slots all get through, never more than two
    holding a slot at once."""
    lock = threading.Lock()
    holding = [0]
    peak = [0]
    done = [0]

    def work() -> None:
        for _ in range(5):
            lease = backend.acquire("pool", 2, timeout=60)
            with lock:
                holding[0] += 1
                peak[0] = max(peak[0], holding[0])
            time.sleep(0.002)
            with lock:
                holding[0] -= 1
                done[0] += 1
            backend.release(lease)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert done[0] == 40
    assert peak[0] <= 2
