"""`remember` and `recall`: small values kept for a while, in memory and in
Redis."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

import throttlekit as tk
from throttlekit.backends.redis import RedisBackend
from throttlekit.testing import FakeClock

# The conftest's RedisServer: start(), stop(), url.
RedisServer = Any


@pytest.fixture
def backend(redis_url: str) -> Iterator[RedisBackend]:
    backend = RedisBackend.from_url(redis_url, namespace=f"t{uuid.uuid4().hex[:12]}")
    yield backend
    backend.close()


def test_memory_keeps_a_value_until_its_ttl() -> None:
    """A value is recalled until its time to live has passed, then None."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)

    backend.remember("owner|networks:N_1", "42", 60.0)
    clock.advance(59.999)
    before = backend.recall("owner|networks:N_1")
    clock.advance(0.001)

    assert before == "42"
    assert backend.recall("owner|networks:N_1") is None


def test_memory_replaces_and_keeps_empty_values() -> None:
    """Remembering again replaces the value and its ttl; "" is a value."""
    clock = FakeClock()
    backend = tk.MemoryBackend(clock=clock.now)

    backend.remember("k", "a", 10.0)
    backend.remember("k", "", 100.0)
    clock.advance(50.0)

    assert backend.recall("k") == ""
    assert backend.recall("other") is None


@pytest.mark.parametrize(
    ("value", "ttl", "error", "message"),
    [
        (42, 1.0, TypeError, "value must be a string, got 42"),
        ("v", 0.0, ValueError, "ttl must be positive and finite seconds, got 0.0"),
        ("v", "1", TypeError, "ttl must be seconds (a number), got '1'"),
    ],
    ids=["value-not-str", "ttl-zero", "ttl-not-number"],
)
def test_bad_notes_are_refused(
    value: object, ttl: object, error: type[Exception], message: str
) -> None:
    """A value that is not a string, or a ttl not positive and finite, raises
    an error naming it."""
    with pytest.raises(error) as raised:
        tk.MemoryBackend().remember("k", value, ttl)  # type: ignore[arg-type]

    assert str(raised.value) == message


@pytest.mark.anyio
async def test_memory_async_twins() -> None:
    """aremember and arecall keep and return the same values."""
    backend = tk.MemoryBackend()

    await backend.aremember("k", "v", 1.0)

    assert await backend.arecall("k") == "v"
    assert await backend.arecall("missing") is None


def test_redis_keeps_a_value_with_its_ttl(
    backend: RedisBackend, redis_url: str
) -> None:
    """Redis keeps the value under the backend's namespace, expiring with
    the ttl in milliseconds."""
    backend.remember("owner|networks:N_1", "42", 86400.0)
    raw = redis.Redis.from_url(redis_url)
    key = f"{backend.namespace}:{{owner|networks:N_1}}:v"
    try:
        ttl_ms = raw.pttl(key)
    finally:
        raw.close()

    assert backend.recall("owner|networks:N_1") == "42"
    assert backend.recall("owner|networks:N_2") is None
    assert 0 < ttl_ms <= 86_400_000


def test_redis_shares_values_between_backends(redis_url: str) -> None:
    """A value one backend remembers, another on the same namespace recalls."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    first = RedisBackend.from_url(redis_url, namespace=namespace)
    second = RedisBackend.from_url(redis_url, namespace=namespace)
    try:
        first.remember("k", "", 60.0)
        seen = second.recall("k")
    finally:
        first.close()
        second.close()

    assert seen == ""


@pytest.mark.anyio
async def test_redis_async_twins(backend: RedisBackend) -> None:
    """aremember and arecall go through the async client to the same keys."""
    await backend.aremember("k", "7", 60.0)

    assert await backend.arecall("k") == "7"
    assert backend.recall("k") == "7"
    await backend.aclose()


def test_redis_down_keeps_values_locally(
    spawn_redis: Callable[[], RedisServer],
) -> None:
    """With on_error="local", values are kept in the process while Redis is
    unreachable; with "raise", BackendError."""
    server = spawn_redis()
    local = RedisBackend.from_url(server.url, on_error="local", retry_interval=0)
    strict = RedisBackend.from_url(server.url, retry_interval=0)
    server.stop()

    local.remember("k", "v", 60.0)

    assert local.recall("k") == "v"
    with pytest.raises(tk.BackendError):
        strict.recall("k")
