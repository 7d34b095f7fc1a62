"""`ThrottledTransport` and `AsyncThrottledTransport`: httpx transports that
run every request through a chain of policies."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx

from ._flow import Context, Policy, run_async, run_sync
from ._validate import seconds
from .backends._base import Backend
from .backends.memory import MemoryBackend

__all__ = ["AsyncThrottledTransport", "ThrottledTransport", "default_backend"]

logger = logging.getLogger("throttlekit.transport")

#: Request extension: seconds this request may wait, overriding the transport.
MAX_WAIT = "throttlekit.max_wait"
#: Response extension: the budgets the request was charged to.
KEYS = "throttlekit.keys"
#: Response extension: seconds the request waited for its budgets.
WAITED = "throttlekit.waited"
#: Response extension: attempts made, 1 unless `Retry` tried again.
ATTEMPTS = "throttlekit.attempts"

_default: MemoryBackend | None = None
_default_lock = threading.Lock()


def default_backend() -> MemoryBackend:
    """Return the process-wide `MemoryBackend` used when none is given.

    Every transport built without ``backend=`` shares it, so two clients with
    the same policy spend the same budget, as they would through Redis.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = MemoryBackend()
        return _default


class _Base:
    def __init__(
        self,
        policies: Sequence[Policy[httpx.Request, httpx.Response]],
        backend: Backend | None,
        max_wait: float | timedelta | None,
        clock: Callable[[], float],
    ) -> None:
        _check_policies(policies)
        self.policies = tuple(policies)
        self.backend: Backend = backend if backend is not None else default_backend()
        limit = seconds("max_wait", max_wait)
        self.max_wait = math.inf if limit is None else limit
        self._clock = clock

    def _context(self, request: httpx.Request) -> Context:
        limit = seconds(MAX_WAIT, request.extensions.get(MAX_WAIT))
        ctx = Context(self.backend, self.max_wait if limit is None else limit)
        ctx.clock = self._clock
        return ctx


def _check_policies(policies: Sequence[object]) -> None:
    """Refuse anything that is not a policy instance, at construction."""
    for policy in policies:
        if isinstance(policy, type) or not callable(getattr(policy, "flow", None)):
            raise TypeError(
                f"not a throttlekit policy: {policy!r}; pass instances such as "
                "tk.RateLimit('10/second')"
            )


def _record(response: httpx.Response, ctx: Context) -> httpx.Response:
    response.extensions[KEYS] = tuple(ctx.keys)
    response.extensions[WAITED] = ctx.waited
    response.extensions[ATTEMPTS] = ctx.attempts
    return response


class ThrottledTransport(_Base, httpx.BaseTransport):
    """An httpx transport that keeps every request inside its budgets.

    Policies run in the order given, outermost first, like middleware; the
    last one hands the request to the inner transport. What happened is
    recorded on ``response.extensions``: ``"throttlekit.keys"`` (the budgets
    charged), ``"throttlekit.waited"`` (seconds spent waiting) and
    ``"throttlekit.attempts"`` (attempts made).

    Args:
        *policies: `RateLimit`, `Concurrency` and other policies.
        transport: The transport that sends requests. ``None`` (default):
            a new `httpx.HTTPTransport`. Closed when this one is closed.
        backend: Where budgets live. ``None`` (default): the process-wide
            `MemoryBackend`; pass a `RedisBackend` to share budgets between
            processes.
        max_wait: Seconds a request may wait in all before `RateLimited` is
            raised instead of waiting. ``None`` (default): no bound. A request
            can override it with the ``"throttlekit.max_wait"`` extension.
        sleep: Blocking sleep, `time.sleep` by default; inject a fake one in
            tests together with the backend's clock.
        clock: Monotonic seconds for deadlines, `time.monotonic` by default.

    Example:
        >>> import httpx, throttlekit as tk
        >>> transport = tk.ThrottledTransport(
        ...     tk.RateLimit("10/second", key=tk.keys.path_param("organizations"))
        ... )
        >>> client = httpx.Client(transport=transport)
    """

    def __init__(
        self,
        *policies: Policy[httpx.Request, httpx.Response],
        transport: httpx.BaseTransport | None = None,
        backend: Backend | None = None,
        max_wait: float | timedelta | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(policies, backend, max_wait, clock)
        self.transport = transport if transport is not None else httpx.HTTPTransport()
        self._sleep = sleep

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` once its policies allow."""
        ctx = self._context(request)
        ctx.sleep = self._sleep
        response = run_sync(self.policies, request, ctx, self.transport.handle_request)
        return _record(response, ctx)

    def close(self) -> None:
        """Close the inner transport."""
        self.transport.close()


class AsyncThrottledTransport(_Base, httpx.AsyncBaseTransport):
    """The async twin of `ThrottledTransport`, for `httpx.AsyncClient`.

    Takes the same arguments; ``transport`` is an `httpx.AsyncBaseTransport`
    (default: a new `httpx.AsyncHTTPTransport`) and ``sleep`` is awaitable
    (default: `asyncio.sleep`). A request cancelled while it waits gives its
    place in line back.

    Note:
        Runs on asyncio; trio is not supported.
    """

    def __init__(
        self,
        *policies: Policy[httpx.Request, httpx.Response],
        transport: httpx.AsyncBaseTransport | None = None,
        backend: Backend | None = None,
        max_wait: float | timedelta | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(policies, backend, max_wait, clock)
        self.transport = (
            transport if transport is not None else httpx.AsyncHTTPTransport()
        )
        self._sleep = sleep

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` once its policies allow."""
        ctx = self._context(request)
        ctx.asleep = self._sleep
        response = await run_async(
            self.policies, request, ctx, self.transport.handle_async_request
        )
        return _record(response, ctx)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self.transport.aclose()
