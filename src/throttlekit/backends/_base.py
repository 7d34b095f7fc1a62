"""The backend protocol shared by every place limiter state can live."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .._core.budget import BudgetConfig
from .._core.pacing import Gate, Lesson, PacingConfig
from .._core.rates import Limit

__all__ = ["Backend", "Lease", "Reservation"]


@dataclass(frozen=True)
class Reservation:
    """A place in a bucket's line.

    Attributes:
        key: The bucket's name.
        cost: The cost charged.
        wait: Seconds from the reservation until the caller may go.
        handle: Backend-private data used to give the place back.
    """

    key: str
    cost: float
    wait: float
    handle: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Lease:
    """One held slot of a concurrency limit.

    Attributes:
        key: The limit's name.
        waited: Seconds spent waiting for the slot.
        handle: Backend-private data used to release the slot.
    """

    key: str
    waited: float = 0.0
    handle: object = field(default=None, repr=False, compare=False)


@runtime_checkable
class Backend(Protocol):
    """Shared state for rate and concurrency limits, sync and async.

    A backend decides; it does not sleep for rate limits. `reserve` charges
    the bucket for the caller's place in line and says how long to wait; the
    caller sleeps, and calls `cancel` if it gives up before its turn.
    Concurrency slots are different: `acquire` blocks until a slot is free,
    because only a release can say when that is. `remember` and `recall`
    keep small facts learned from an API (which organization owns a
    network, say) for a while, so every process learns them once.
    """

    def reserve(
        self,
        key: str,
        limits: Sequence[Limit],
        cost: float,
        max_wait: float | None,
    ) -> Reservation:
        """Reserve ``cost`` in bucket ``key``; raise `RateLimited` when the
        wait would exceed ``max_wait`` (nothing is charged then)."""
        ...

    def cancel(self, reservation: Reservation) -> None:
        """Give back a reservation whose caller did not go."""
        ...

    def acquire(self, key: str, limit: int, timeout: float | None) -> Lease:
        """Take one of ``limit`` slots of ``key``, waiting up to ``timeout``."""
        ...

    def release(self, lease: Lease) -> None:
        """Give a slot back; releasing twice is harmless."""
        ...

    def pace(
        self,
        key: str,
        jitter: float,
        config: PacingConfig,
        max_wait: float | None,
    ) -> Reservation:
        """Take the next place on ``key``'s pacing line (`HeaderPacing`);
        raise `RateLimited` when the wait would exceed ``max_wait``."""
        ...

    def paused(self, key: str) -> float:
        """Return the seconds left of ``key``'s pause; 0 when not paused."""
        ...

    def gate(self, key: str) -> tuple[float, Gate]:
        """Return the time on ``key``'s pacing clock and what its line has
        learned (a fresh `Gate` when nothing), for statistics."""
        ...

    def learn(self, key: str, lesson: Lesson, config: PacingConfig) -> None:
        """Apply what a response taught to ``key``'s pacing line."""
        ...

    def earn(self, key: str, config: BudgetConfig) -> None:
        """Credit ``key``'s retry budget for one first attempt."""
        ...

    def spend(self, key: str, config: BudgetConfig) -> bool:
        """Take one retry from ``key``'s budget; False when it is empty."""
        ...

    def remember(self, key: str, value: str, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds, replacing any."""
        ...

    def recall(self, key: str) -> str | None:
        """Return the value kept under ``key``; None if none or expired."""
        ...

    async def areserve(
        self,
        key: str,
        limits: Sequence[Limit],
        cost: float,
        max_wait: float | None,
    ) -> Reservation:
        """Async twin of `reserve`."""
        ...

    async def acancel(self, reservation: Reservation) -> None:
        """Async twin of `cancel`."""
        ...

    async def aacquire(self, key: str, limit: int, timeout: float | None) -> Lease:
        """Async twin of `acquire`."""
        ...

    async def arelease(self, lease: Lease) -> None:
        """Async twin of `release`."""
        ...

    async def aearn(self, key: str, config: BudgetConfig) -> None:
        """Async twin of `earn`."""
        ...

    async def aspend(self, key: str, config: BudgetConfig) -> bool:
        """Async twin of `spend`."""
        ...

    async def apace(
        self,
        key: str,
        jitter: float,
        config: PacingConfig,
        max_wait: float | None,
    ) -> Reservation:
        """Async twin of `pace`."""
        ...

    async def apaused(self, key: str) -> float:
        """Async twin of `paused`."""
        ...

    async def agate(self, key: str) -> tuple[float, Gate]:
        """Async twin of `gate`."""
        ...

    async def alearn(self, key: str, lesson: Lesson, config: PacingConfig) -> None:
        """Async twin of `learn`."""
        ...

    async def aremember(self, key: str, value: str, ttl: float) -> None:
        """Async twin of `remember`."""
        ...

    async def arecall(self, key: str) -> str | None:
        """Async twin of `recall`."""
        ...
