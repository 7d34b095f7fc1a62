"""Fixtures shared by the Redis backend tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from throttlekit.backends.redis import RedisBackend


@pytest.fixture
def namespace() -> str:
    """A key prefix of the test's own, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def backend(redis_url: str, namespace: str) -> Iterator[RedisBackend]:
    """A RedisBackend on the session's throwaway server."""
    backend = RedisBackend.from_url(redis_url, namespace=namespace)
    yield backend
    backend.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client, to look at what the backend wrote."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
