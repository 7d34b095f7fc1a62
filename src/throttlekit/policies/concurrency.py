"""`Concurrency`: cap how many calls on a key are in flight at once."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx

from .. import keys as _keys
from .._flow import Acquire, Context, Flow, Release, Send
from .._validate import seconds
from ..backends._base import Lease

__all__ = ["Concurrency"]


class Concurrency:
    """Cap the calls in flight on each key.

    A call is in flight from the moment it takes a slot until its response is
    closed, so a streamed body counts until it is read or closed. Waiters are
    served first come, first served.

    Args:
        limit: Calls in flight at once per key; at least 1.
        key: Which slots a call takes: a key function from `throttlekit.keys`,
            a fixed string, or ``None`` (default) for one pool shared by every
            call.
        name: Prefix of the pool names. ``None`` (default): ``"conc:N"``.
        max_wait: Seconds a call may wait for a slot. ``None`` (default)
            leaves the bound to the transport.

    Example:
        >>> import throttlekit as tk
        >>> policy = tk.Concurrency(4, key=tk.keys.host())
    """

    def __init__(
        self,
        limit: int,
        *,
        key: _keys.KeyFunc | str | None = None,
        name: str | None = None,
        max_wait: float | timedelta | None = None,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        self.limit = limit
        self.key = _keys.resolve(key)
        self.name = name if name is not None else f"conc:{limit}"
        self.max_wait = seconds("max_wait", max_wait)

    def __repr__(self) -> str:
        return f"Concurrency({self.limit}, name={self.name!r})"

    def flow(self, call: Any, ctx: Context) -> Flow[Any]:
        """Hold a slot while the call and its response body are in flight."""
        key = self.key(call)
        if key is None:
            return (yield Send(call))

        pool = f"{self.name}|{key}"
        timeout = ctx.remaining
        if self.max_wait is not None:
            timeout = min(timeout, self.max_wait)
        lease = yield Acquire(
            pool, self.limit, None if math.isinf(timeout) else timeout
        )
        ctx.note(pool)
        ctx.waited += lease.waited

        try:
            result = yield Send(call)
        except BaseException:
            yield Release(lease)
            raise
        if isinstance(result, httpx.Response) and not result.is_closed:
            return (yield ReleaseOnClose(result, lease))
        yield Release(lease)
        return result


class ReleaseOnClose:
    """Release a lease when the response is closed; the result is the
    response."""

    def __init__(self, response: httpx.Response, lease: Lease) -> None:
        self.response = response
        self.lease = lease

    def run(self, ctx: Context) -> httpx.Response:
        stream = self.response.stream
        assert isinstance(stream, httpx.SyncByteStream)
        release = Release(self.lease)
        self.response.stream = _SyncStream(stream, lambda: release.run(ctx))
        return self.response

    async def arun(self, ctx: Context) -> httpx.Response:
        stream = self.response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        release = Release(self.lease)
        self.response.stream = _AsyncStream(stream, lambda: release.arun(ctx))
        return self.response


class _SyncStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, on_close: Callable[[], None]):
        self._inner = inner
        self._on_close: Callable[[], None] | None = on_close

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        on_close, self._on_close = self._on_close, None
        try:
            self._inner.close()
        finally:
            if on_close is not None:
                on_close()


class _AsyncStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, on_close: Callable[[], Any]):
        self._inner = inner
        self._on_close: Callable[[], Any] | None = on_close

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        on_close, self._on_close = self._on_close, None
        try:
            await self._inner.aclose()
        finally:
            if on_close is not None:
                await on_close()
