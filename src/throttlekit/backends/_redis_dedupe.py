"""The Redis side of `Dedupe` across processes: claims and results.

Three scripts, one per atomic step (lua/dedupe_*.lua): a caller *claims* a
request (it leads, follows the leader, or takes the leader's result), a
leader *publishes* its outcome, and a leader that keeps its response or
gives up *drops* its claim. This module knows keys, scripts and replies as
bytes; what the bytes mean (responses, errors) is the policy's business
(`throttlekit.policies._redis_registry`).

Keys, for a request whose dedup key is ``k``::

    <namespace>:{dedupe:k}:dc    the claim: leader's token, callers joined
    <namespace>:{dedupe:k}:dr    the result: token, time, kind, data, body

``k`` is a digest of the request (`throttlekit._core.dedupe.request_key`):
neither the URL nor any credential can be read from a key name. The braces
keep both keys in one Redis Cluster slot. Both expire on their own: the
claim after its ttl, the result after its window and a little more.

A Redis failure is raised as `BackendError`, chained from the Redis error,
so that callers can fall back without importing redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import redis

from .._exceptions import BackendError
from ._redis_scripts import Arg, AsyncClient, load
from .redis import RedisBackend

__all__ = ["Claimed", "DedupeStore", "Done", "Lead", "Wait"]

CLAIM = load("dedupe_claim")
PUBLISH = load("dedupe_publish")
DROP = load("dedupe_drop")

# A client built with decode_responses=True fails to decode a binary body.
_FAILURES = (redis.RedisError, UnicodeError)


@dataclass(frozen=True)
class Lead:
    """The caller holds the request's claim now: it sends the request."""


@dataclass(frozen=True)
class Wait:
    """Another caller leads the request.

    Attributes:
        holder: The leader's token.
        ttl: Seconds left of the leader's claim.
    """

    holder: str
    ttl: float


@dataclass(frozen=True)
class Done:
    """A leader published the request's outcome.

    Attributes:
        kind: ``"s"`` a shared response, ``"f"`` a failure, ``"d"`` a
            refusal to share.
        meta: The outcome's description, JSON.
        body: The response body; empty but for a shared response.
    """

    kind: str
    meta: bytes
    body: bytes


Claimed = Lead | Wait | Done


class DedupeStore:
    """Claims and results of requests in flight, kept in a backend's Redis.

    Sync methods use the backend's sync client, async ones its client for
    the running event loop.

    Args:
        backend: The backend whose clients and namespace to use.
    """

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend

    @property
    def blocking(self) -> bool:
        """Whether the backend has a sync client."""
        return self.backend._client is not None

    @property
    def awaiting(self) -> bool:
        """Whether the backend has async clients."""
        return self.backend._async_client is not None

    @property
    def retry_interval(self) -> float:
        """Seconds between attempts to reach Redis again after a failure."""
        return self.backend._health.retry_interval

    def keys(self, key: str) -> list[str]:
        """Return the Redis keys of the request whose dedup key is ``key``."""
        name = f"dedupe:{key}"
        return [self.backend._key(name, "dc"), self.backend._key(name, "dr")]

    def claim(
        self, key: str, token: str, ttl_ms: int, window_ms: int, followed: str
    ) -> Claimed:
        """Lead the request, follow its leader, or take its result.

        Args:
            key: The request's dedup key.
            token: The caller's token, used if it leads.
            ttl_ms: The claim's time to live if the caller leads,
                milliseconds.
            window_ms: How recent a shared response any caller may take,
                milliseconds.
            followed: The token of the leader the caller follows; ``""``
                for a caller that has not joined yet.

        Raises:
            BackendError: Redis failed.
        """
        args: list[Arg] = [token, ttl_ms, window_ms, followed]
        try:
            reply = CLAIM.run(self.backend._sync(), self.keys(key), args)
        except _FAILURES as exc:
            raise _failed(exc) from exc
        return _claimed(reply)

    async def aclaim(
        self, key: str, token: str, ttl_ms: int, window_ms: int, followed: str
    ) -> Claimed:
        """Async twin of `claim`.

        A caller cancelled while the script runs holds no claim: one it
        took meanwhile is dropped in the background.
        """
        state = await self.backend._state()
        keys = self.keys(key)
        args: list[Arg] = [token, ttl_ms, window_ms, followed]
        attempt = asyncio.ensure_future(CLAIM.arun(state.client, keys, args))
        try:
            reply = await asyncio.shield(attempt)
        except asyncio.CancelledError:
            state.spawn(_drop_if_led(attempt, state.client, keys, token))
            raise
        except _FAILURES as exc:
            raise _failed(exc) from exc
        return _claimed(reply)

    def publish(
        self,
        key: str,
        token: str,
        keep_ms: int,
        outcome: tuple[str, bytes, bytes],
    ) -> bool:
        """End the leader's claim and store its outcome for ``keep_ms``.

        Args:
            key: The request's dedup key.
            token: The leader's token.
            keep_ms: How long the result stays, milliseconds.
            outcome: Kind, description and body, as in `Done`.

        Returns:
            Whether the outcome was stored (see lua/dedupe_publish.lua).

        Raises:
            BackendError: Redis failed.
        """
        args: list[Arg] = [token, keep_ms, *outcome]
        try:
            return bool(PUBLISH.run(self.backend._sync(), self.keys(key), args))
        except _FAILURES as exc:
            raise _failed(exc) from exc

    async def apublish(
        self,
        key: str,
        token: str,
        keep_ms: int,
        outcome: tuple[str, bytes, bytes],
    ) -> bool:
        """Async twin of `publish`."""
        state = await self.backend._state()
        args: list[Arg] = [token, keep_ms, *outcome]
        try:
            return bool(await PUBLISH.arun(state.client, self.keys(key), args))
        except _FAILURES as exc:
            raise _failed(exc) from exc

    def drop(self, key: str, token: str, *, alone: bool) -> bool:
        """End the leader's claim without a result.

        Args:
            key: The request's dedup key.
            token: The leader's token.
            alone: End it only if no caller joined it.

        Returns:
            Whether the claim was ended.

        Raises:
            BackendError: Redis failed.
        """
        args: list[Arg] = [token, int(alone)]
        try:
            return bool(DROP.run(self.backend._sync(), self.keys(key)[:1], args))
        except _FAILURES as exc:
            raise _failed(exc) from exc

    async def adrop(self, key: str, token: str, *, alone: bool) -> bool:
        """Async twin of `drop`."""
        state = await self.backend._state()
        args: list[Arg] = [token, int(alone)]
        try:
            return bool(await DROP.arun(state.client, self.keys(key)[:1], args))
        except _FAILURES as exc:
            raise _failed(exc) from exc

    def spawn(self, coro: Coroutine[Any, Any, None]) -> bool:
        """Run ``coro`` in the background on the running event loop.

        Returns:
            False, with ``coro`` closed unrun, when no event loop runs or
            the backend has no client on it yet.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        state = None if loop is None else self.backend._loops.get(loop)
        if state is None or state.closed:
            coro.close()
            return False
        state.spawn(coro)
        return True


def _claimed(reply: list[Any]) -> Claimed:
    verdict = _bytes(reply[0])
    if verdict == b"lead":
        return Lead()
    if verdict == b"wait":
        return Wait(_bytes(reply[1]).decode(), max(0, int(reply[2])) / 1000)
    return Done(_bytes(reply[1]).decode(), _bytes(reply[2]), _bytes(reply[3]))


def _bytes(value: bytes | str) -> bytes:
    # A client that decodes replies hands back text; only valid UTF-8 was
    # decoded, so encoding it again restores the bytes.
    return value.encode() if isinstance(value, str) else value


def _failed(exc: BaseException) -> BackendError:
    return BackendError(f"Redis failed: {exc!r}")


async def _drop_if_led(
    attempt: asyncio.Future[Any], client: AsyncClient, keys: list[str], token: str
) -> None:
    try:
        reply = await attempt
        if isinstance(_claimed(reply), Lead):
            await DROP.arun(client, keys[:1], [token, 0])
    except (*_FAILURES, asyncio.CancelledError):
        # The claim then runs out by itself after its ttl.
        pass
