"""`RedisBackend` on a 3-master Redis Cluster: every budget's keys share one
hash tag, so each decision runs on the node that owns it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.cluster

import throttlekit as tk
from throttlekit.backends.redis import RedisBackend

HOUR_US = 3_600_000_000
HOURLY = (tk.Limit(1, 3600, 2),)
NAMES = [f"rate:1/3600s~2|organizations:{n}" for n in range(30)]


def admit(reservation: tk.Reservation) -> int:
    admit_us: int = reservation.handle.admit_us  # type: ignore[attr-defined]
    return admit_us


@pytest.fixture
def backend(redis_cluster_url: str, namespace: str) -> Iterator[RedisBackend]:
    backend = RedisBackend.from_url(
        redis_cluster_url, cluster=True, namespace=namespace
    )
    yield backend
    backend.close()


@pytest.fixture
def cluster(redis_cluster_url: str) -> Iterator[redis.cluster.RedisCluster]:
    client = redis.cluster.RedisCluster.from_url(redis_cluster_url)
    yield client
    client.close()


def test_buckets_spread_over_every_master(
    backend: RedisBackend, cluster: redis.cluster.RedisCluster, namespace: str
) -> None:
    """Thirty buckets land on all three masters, and each decides, paces and
    gives back as on a single server."""
    for name in NAMES:
        first = backend.reserve(name, HOURLY, 1, None)
        backend.reserve(name, HOURLY, 1, None)
        third = backend.reserve(name, HOURLY, 1, None)
        assert admit(third) == admit(first) + HOUR_US
        backend.cancel(third)
        assert admit(backend.reserve(name, HOURLY, 1, None)) == admit(third)

    holders = {
        cluster.get_node_from_key(f"{namespace}:{{{name}}}:r").name for name in NAMES
    }
    assert len(holders) == 3


def test_slots_on_a_cluster(backend: RedisBackend) -> None:
    """Concurrency leases are taken, refused, renewed and released per pool
    on whichever master owns the pool."""
    for name in NAMES[:6]:
        lease = backend.acquire(name, 1, None)
        with pytest.raises(tk.RateLimited):
            backend.acquire(name, 1, timeout=0)
        assert backend.renew(lease) is True
        backend.release(lease)
        backend.release(backend.acquire(name, 1, timeout=0))


@pytest.mark.anyio
async def test_async_callers_on_a_cluster(backend: RedisBackend) -> None:
    """Concurrent async callers on several buckets are decided on each
    bucket's own master, in the order they came."""
    limits = (tk.Limit(1, 3600, 5),)
    names = NAMES[:4]
    batches = await asyncio.gather(
        *(
            asyncio.gather(*(backend.areserve(n, limits, 1, None) for _ in range(20)))
            for n in names
        )
    )

    for reservations in batches:
        start = admit(reservations[0])
        expected = [start] * 5 + [start + k * HOUR_US for k in range(1, 16)]
        assert [admit(r) for r in reservations] == expected
    lease = await backend.aacquire(names[0], 1, None)
    await backend.arelease(lease)
