"""Effects, the per-call context, and the sync and async drivers.

Policies are written once, as generators that yield *effects* (reserve a
place, sleep, send the request on, release a slot) and receive their results.
A driver carries the effects out: `run_sync` with blocking calls, `run_async`
with awaits. Exceptions raised while carrying out an effect, cancellation
included, are thrown back into the policy at its ``yield``, so a policy's
``try``/``finally`` can still yield clean-up effects.

Policies nest like middleware: yielding `Send` passes the request to the next
policy, and the last one sends it through the inner transport.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ._core.rates import Limit
from .backends._base import Backend, Lease, Reservation

__all__ = [
    "Acquire",
    "Cancel",
    "Context",
    "Flow",
    "Policy",
    "Release",
    "Reserve",
    "Send",
    "Sleep",
    "run_async",
    "run_sync",
]

T = TypeVar("T")
C = TypeVar("C")
C_contra = TypeVar("C_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)


@dataclass
class Context:
    """What the policies of one call share while it runs.

    Attributes:
        backend: Where limiter state lives.
        max_wait: Seconds the call may wait in all; ``inf`` for no bound.
        waited: Seconds waited so far.
        keys: Budgets the call was charged to, in order.
        sends: How many times the call reached the inner transport or
            function; a policy compares it before and after its `Send` to
            know whether its own attempt went out.
        attempts: Attempts made by `Retry` (1 without it).
        sleep: Blocking sleep, for the sync driver.
        asleep: Awaitable sleep, for the async driver.
        clock: Monotonic seconds, for deadlines.
    """

    backend: Backend
    max_wait: float = math.inf
    waited: float = 0.0
    keys: list[str] = field(default_factory=list)
    sends: int = 0
    attempts: int = 1
    sleep: Callable[[float], None] = time.sleep
    asleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic

    def note(self, key: str) -> None:
        """Record a budget the call was charged to, once however often."""
        if key not in self.keys:
            self.keys.append(key)

    @property
    def remaining(self) -> float:
        """Seconds the call may still wait; never negative."""
        return max(0.0, self.max_wait - self.waited)


class Effect(Protocol):
    """Something a policy asks its driver to do."""

    def run(self, ctx: Context) -> Any:
        """Carry the effect out, blocking."""
        ...

    async def arun(self, ctx: Context) -> Any:
        """Carry the effect out, awaiting."""
        ...


@dataclass(frozen=True)
class Send:
    """Pass the call to the next policy; the result is its response."""

    call: Any


@dataclass(frozen=True)
class Reserve:
    """Reserve ``cost`` in a bucket; the result is a `Reservation`."""

    key: str
    limits: Sequence[Limit]
    cost: float
    max_wait: float | None

    def run(self, ctx: Context) -> Reservation:
        return ctx.backend.reserve(self.key, self.limits, self.cost, self.max_wait)

    async def arun(self, ctx: Context) -> Reservation:
        return await ctx.backend.areserve(
            self.key, self.limits, self.cost, self.max_wait
        )


@dataclass(frozen=True)
class Cancel:
    """Give a reservation back."""

    reservation: Reservation

    def run(self, ctx: Context) -> None:
        ctx.backend.cancel(self.reservation)

    async def arun(self, ctx: Context) -> None:
        await ctx.backend.acancel(self.reservation)


@dataclass(frozen=True)
class Acquire:
    """Take a concurrency slot; the result is a `Lease`."""

    key: str
    limit: int
    timeout: float | None

    def run(self, ctx: Context) -> Lease:
        return ctx.backend.acquire(self.key, self.limit, self.timeout)

    async def arun(self, ctx: Context) -> Lease:
        return await ctx.backend.aacquire(self.key, self.limit, self.timeout)


@dataclass(frozen=True)
class Release:
    """Give a concurrency slot back."""

    lease: Lease

    def run(self, ctx: Context) -> None:
        ctx.backend.release(self.lease)

    async def arun(self, ctx: Context) -> None:
        await ctx.backend.arelease(self.lease)


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds``, counting them as time the call waited."""

    seconds: float

    def run(self, ctx: Context) -> None:
        ctx.sleep(self.seconds)
        ctx.waited += self.seconds

    async def arun(self, ctx: Context) -> None:
        await ctx.asleep(self.seconds)
        ctx.waited += self.seconds


Flow = Generator["Effect | Send", Any, T]


class Policy(Protocol[C_contra, T_co]):
    """A step of a throttled call: yields effects, returns the result."""

    def flow(self, call: C_contra, ctx: Context) -> Flow[T_co]:
        """Run the policy's part of ``call``, sending it on with `Send`."""
        ...


def run_sync(
    policies: Sequence[Policy[C, T]],
    call: C,
    ctx: Context,
    send: Callable[[C], T],
) -> T:
    """Carry out ``policies`` around ``send(call)``, blocking."""

    def step(index: int, call: C) -> T:
        if index == len(policies):
            ctx.sends += 1
            return send(call)

        flow = policies[index].flow(call, ctx)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.throw(error) if error else flow.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

            value, error = None, None
            try:
                if isinstance(effect, Send):
                    value = step(index + 1, effect.call)
                else:
                    value = effect.run(ctx)
            except BaseException as exc:
                error = exc

    return step(0, call)


async def run_async(
    policies: Sequence[Policy[C, T]],
    call: C,
    ctx: Context,
    send: Callable[[C], Awaitable[T]],
) -> T:
    """Carry out ``policies`` around ``await send(call)``."""

    async def step(index: int, call: C) -> T:
        if index == len(policies):
            ctx.sends += 1
            return await send(call)

        flow = policies[index].flow(call, ctx)
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = flow.throw(error) if error else flow.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]

            value, error = None, None
            try:
                if isinstance(effect, Send):
                    value = await step(index + 1, effect.call)
                else:
                    value = await effect.arun(ctx)
            except BaseException as exc:
                error = exc

    return await step(0, call)
