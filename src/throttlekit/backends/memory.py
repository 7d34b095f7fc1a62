"""`MemoryBackend`: limiter state inside one process.

All state sits behind one `threading.Lock`, held only for a few arithmetic
steps and never across a wait, so the same backend serves threads, asyncio
tasks and several event loops one after another (a Celery task calling
`asyncio.run` per task). Nothing in it is bound to an event loop: an async
waiter's future lives only while that waiter waits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from .._core import budget, gcra, pacing
from .._core.rates import Limit
from .._exceptions import RateLimited
from ._base import Lease, Reservation

__all__ = ["BackendStatistics", "MemoryBackend"]

logger = logging.getLogger("throttlekit.bucket")

# Idle buckets are swept after this many reservations, so the table holds
# the keys in use rather than every key ever seen.
_SWEEP_EVERY = 1024


@dataclass(frozen=True)
class BackendStatistics:
    """A snapshot of a backend's state.

    Attributes:
        buckets: Rate buckets currently held.
        reservations: Reservations whose time has not yet come.
        gates: Keys with a pacing line (`HeaderPacing`).
        leases: Concurrency slots currently held.
        lease_waiters: Callers waiting for a concurrency slot.
    """

    buckets: int
    reservations: int
    gates: int
    leases: int
    lease_waiters: int


@dataclass
class _Bucket:
    limits: tuple[Limit, ...]
    ledger: gcra.ReservationLedger


class _Waiter:
    """One caller waiting for a concurrency slot, thread or asyncio task."""

    __slots__ = ("event", "future", "granted", "loop")

    def __init__(
        self,
        event: threading.Event | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.event = event
        self.loop = loop
        self.future = future
        self.granted = False

    def wake(self) -> bool:
        """Wake the waiter; return False when it can no longer be woken."""
        if self.event is not None:
            self.event.set()
            return True
        assert self.loop is not None
        assert self.future is not None
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:  # its event loop is closed: nobody is there
            return False
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class _Slots:
    limit: int
    held: int = 0
    waiters: deque[_Waiter] = field(default_factory=deque)

    def free(self) -> bool:
        # First come, first served: nobody jumps a non-empty line.
        return self.held < self.limit and not self.waiters


@dataclass
class _Token:
    slots: _Slots
    released: bool = False


class MemoryBackend:
    """Limiter state shared by the threads and tasks of one process.

    The default backend. Waiters are served first come, first served; a
    rate-limited caller sleeps on its own timer until its reserved time, and
    a concurrency slot is handed straight to the next waiter, so releases
    never wake more than one caller.

    Args:
        clock: Returns the current time in seconds; `time.monotonic` by
            default. Inject a fake clock in tests.

    Example:
        >>> import throttlekit as tk
        >>> backend = tk.MemoryBackend()
        >>> transport = tk.ThrottledTransport(
        ...     tk.RateLimit("10/second"), backend=backend
        ... )

    Note:
        Processes do not share a `MemoryBackend`; use `RedisBackend` for a
        budget shared by several processes or hosts.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not callable(clock):
            raise TypeError(
                f"clock must be a function returning seconds, got {clock!r}"
            )
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._slots: dict[str, _Slots] = {}
        self._gates: dict[str, pacing.Gate] = {}
        self._budgets: dict[str, float] = {}
        self._notes: dict[str, tuple[str, float]] = {}
        self._reserved = 0

    def reserve(
        self,
        key: str,
        limits: Sequence[Limit],
        cost: float,
        max_wait: float | None,
    ) -> Reservation:
        """Reserve ``cost`` in bucket ``key`` and return the wait.

        Raises:
            RateLimited: The wait would exceed ``max_wait``; nothing is
                charged.
            CapacityExceeded: ``cost`` exceeds the burst capacity.
        """
        limits = tuple(limits)
        gcra.check_cost(key, limits, cost)

        with self._lock:
            now = self._clock()
            bucket = self._bucket(key, limits, now)
            slot = gcra.reserve(limits, bucket.ledger.tats, now, cost)
            if max_wait is not None and slot.wait > max_wait:
                raise RateLimited(key, slot.wait)
            handle = bucket.ledger.commit(slot, now)

        logger.debug("reserved %s cost=%g wait=%.3fs", key, cost, slot.wait)
        return Reservation(key, cost, slot.wait, (bucket, handle))

    def cancel(self, reservation: Reservation) -> None:
        """Give back a reservation; harmless twice or after its time."""
        if isinstance(reservation.handle, _GatePlace):
            self._cancel_place(reservation.handle)
            return
        bucket, handle = _unpack(reservation)
        with self._lock:
            bucket.ledger.cancel(handle, self._clock())
        logger.debug("cancelled %s cost=%g", reservation.key, reservation.cost)

    def pace(
        self,
        key: str,
        jitter: float,
        config: pacing.PacingConfig,
        max_wait: float | None,
    ) -> Reservation:
        """Take the next place on key's pacing line; see `throttlekit._core.pacing`.

        Raises:
            RateLimited: The wait would exceed ``max_wait``; nothing is taken.
        """
        with self._lock:
            now = self._clock()
            self._tick(now)
            gate = self._gates.get(key, pacing.Gate())
            wait, after = pacing.admit(gate, now, jitter, config)
            if max_wait is not None and wait > max_wait:
                raise RateLimited(key, wait, reason=_why(gate, now))
            self._gates[key] = after

        return Reservation(key, 0.0, wait, _GatePlace(key, gate.tat, after.tat))

    def paused(self, key: str) -> float:
        """Return the seconds left of ``key``'s pause; 0 when not paused."""
        with self._lock:
            gate = self._gates.get(key)
            return 0.0 if gate is None else max(0.0, gate.paused_until - self._clock())

    def gate(self, key: str) -> tuple[float, pacing.Gate]:
        """Return the backend's time and ``key``'s pacing gate; a fresh
        `Gate` when none is kept."""
        with self._lock:
            return self._clock(), self._gates.get(key, pacing.Gate())

    def learn(
        self, key: str, lesson: pacing.Lesson, config: pacing.PacingConfig
    ) -> None:
        """Apply what a response taught about ``key`` to its pacing line."""
        with self._lock:
            gate = self._gates.get(key, pacing.Gate())
            self._gates[key] = pacing.learn(gate, lesson, self._clock(), config)

    def acquire(self, key: str, limit: int, timeout: float | None) -> Lease:
        """Take a slot, blocking the thread up to ``timeout`` seconds.

        Raises:
            RateLimited: No slot came free within ``timeout``.
        """
        start = self._clock()
        waiter = _Waiter(event=threading.Event())
        slots, lease = self._take_or_queue(key, limit, waiter)
        if lease is not None:
            return lease

        try:
            assert waiter.event is not None
            waiter.event.wait(timeout)
        except BaseException:
            self._abandon(key, slots, waiter)
            raise
        if self._settle(key, slots, waiter):
            return Lease(key, self._clock() - start, _Token(slots))
        raise RateLimited(key, _inf(timeout), reason="no concurrency slot")

    def release(self, lease: Lease) -> None:
        """Give a slot back to the next waiter; harmless twice."""
        token = lease.handle
        if not isinstance(token, _Token):
            raise TypeError(f"not a lease of this backend: {lease!r}")
        with self._lock:
            if token.released:
                return
            token.released = True
            self._hand_over(lease.key, token.slots)

    async def areserve(
        self,
        key: str,
        limits: Sequence[Limit],
        cost: float,
        max_wait: float | None,
    ) -> Reservation:
        """Async twin of `reserve`; it never blocks the event loop."""
        return self.reserve(key, limits, cost, max_wait)

    async def acancel(self, reservation: Reservation) -> None:
        """Async twin of `cancel`."""
        self.cancel(reservation)

    def earn(self, key: str, config: budget.BudgetConfig) -> None:
        """Credit ``key``'s retry budget for one first attempt."""
        with self._lock:
            tokens = budget.deposit(self._budgets.get(key), config)
            if tokens >= config.cap:
                self._budgets.pop(key, None)  # full is the default state
            else:
                self._budgets[key] = tokens

    def spend(self, key: str, config: budget.BudgetConfig) -> bool:
        """Take one retry from ``key``'s budget; False when it is empty."""
        with self._lock:
            allowed, tokens = budget.withdraw(self._budgets.get(key), config)
            self._budgets[key] = tokens
            return allowed

    def remember(self, key: str, value: str, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds, replacing any.

        Raises:
            TypeError: ``value`` is not a string.
            ValueError: ``ttl`` is not positive and finite.
        """
        _check_note(value, ttl)
        with self._lock:
            self._notes[key] = (value, self._clock() + ttl)

    def recall(self, key: str) -> str | None:
        """Return the value kept under ``key``; None if none or expired."""
        with self._lock:
            value, until = self._notes.get(key, ("", -math.inf))
            if until > self._clock():
                return value
            self._notes.pop(key, None)
            return None

    async def aearn(self, key: str, config: budget.BudgetConfig) -> None:
        """Async twin of `earn`."""
        self.earn(key, config)

    async def aspend(self, key: str, config: budget.BudgetConfig) -> bool:
        """Async twin of `spend`."""
        return self.spend(key, config)

    async def aremember(self, key: str, value: str, ttl: float) -> None:
        """Async twin of `remember`."""
        self.remember(key, value, ttl)

    async def arecall(self, key: str) -> str | None:
        """Async twin of `recall`."""
        return self.recall(key)

    async def apace(
        self,
        key: str,
        jitter: float,
        config: pacing.PacingConfig,
        max_wait: float | None,
    ) -> Reservation:
        """Async twin of `pace`."""
        return self.pace(key, jitter, config, max_wait)

    async def apaused(self, key: str) -> float:
        """Async twin of `paused`."""
        return self.paused(key)

    async def agate(self, key: str) -> tuple[float, pacing.Gate]:
        """Async twin of `gate`."""
        return self.gate(key)

    async def alearn(
        self, key: str, lesson: pacing.Lesson, config: pacing.PacingConfig
    ) -> None:
        """Async twin of `learn`."""
        self.learn(key, lesson, config)

    async def aacquire(self, key: str, limit: int, timeout: float | None) -> Lease:
        """Async twin of `acquire`; a cancelled waiter holds no slot."""
        start = self._clock()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = _Waiter(loop=loop, future=future)
        slots, lease = self._take_or_queue(key, limit, waiter)
        if lease is not None:
            return lease

        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            pass
        except BaseException:
            # Cancelled: a slot handed over meanwhile goes on to the next
            # waiter instead of leaking.
            self._abandon(key, slots, waiter)
            raise
        if self._settle(key, slots, waiter):
            return Lease(key, self._clock() - start, _Token(slots))
        raise RateLimited(key, _inf(timeout), reason="no concurrency slot")

    async def arelease(self, lease: Lease) -> None:
        """Async twin of `release`."""
        self.release(lease)

    def statistics(self) -> BackendStatistics:
        """Return a snapshot of what the backend holds."""
        with self._lock:
            now = self._clock()
            return BackendStatistics(
                buckets=len(self._buckets),
                reservations=sum(
                    bucket.ledger.pending(now) for bucket in self._buckets.values()
                ),
                gates=len(self._gates),
                leases=sum(s.held for s in self._slots.values()),
                lease_waiters=sum(len(s.waiters) for s in self._slots.values()),
            )

    def close(self) -> None:
        """Nothing to close; present for symmetry with other backends."""

    async def aclose(self) -> None:
        """Nothing to close; present for symmetry with other backends."""

    def _tick(self, now: float) -> None:
        self._reserved += 1
        if self._reserved % _SWEEP_EVERY == 0:
            self._sweep(now)

    def _bucket(self, key: str, limits: tuple[Limit, ...], now: float) -> _Bucket:
        self._tick(now)

        bucket = self._buckets.get(key)
        if bucket is not None and bucket.limits != limits:
            # Policies sharing a name but not limits: keep the schedule when
            # it fits, so neither resets the other's budget.
            if len(bucket.limits) == len(limits):
                bucket.limits = limits
            else:
                bucket = None
        if bucket is None:
            idle = tuple(now for _ in limits)
            bucket = _Bucket(limits, gcra.ReservationLedger(idle))
            self._buckets[key] = bucket
        return bucket

    def _sweep(self, now: float) -> None:
        idle = [
            key
            for key, bucket in self._buckets.items()
            if bucket.ledger.pending(now) == 0 and bucket.ledger.idle_at() <= now
        ]
        for key in idle:
            del self._buckets[key]
        calm = [
            key
            for key, gate in self._gates.items()
            if pacing.idle_at(gate) <= now and gate.strikes == 0
        ]
        for key in calm:
            del self._gates[key]
        expired = [key for key, (_, until) in self._notes.items() if until <= now]
        for key in expired:
            del self._notes[key]

    def _cancel_place(self, place: _GatePlace) -> None:
        # Only the newest place can be returned exactly: a later caller's
        # start was computed from this one's.
        with self._lock:
            gate = self._gates.get(place.key)
            if gate is not None and gate.tat == place.after:
                self._gates[place.key] = replace(gate, tat=place.before)

    def _slots_for(self, key: str, limit: int) -> _Slots:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = _Slots(limit)
        slots.limit = limit
        return slots

    def _take_or_queue(
        self, key: str, limit: int, waiter: _Waiter
    ) -> tuple[_Slots, Lease | None]:
        """Take a free slot at once, or put ``waiter`` at the end of the line."""
        with self._lock:
            slots = self._slots_for(key, limit)
            if slots.free():
                slots.held += 1
                return slots, Lease(key, 0.0, _Token(slots))
            slots.waiters.append(waiter)
            return slots, None

    def _settle(self, key: str, slots: _Slots, waiter: _Waiter) -> bool:
        """Return whether a waiter that stopped waiting holds a slot; one
        that does not leaves the line."""
        with self._lock:
            if waiter.granted:
                return True
            slots.waiters.remove(waiter)
            self._drop_if_idle(key, slots)
            return False

    def _abandon(self, key: str, slots: _Slots, waiter: _Waiter) -> None:
        with self._lock:
            if waiter.granted:
                self._hand_over(key, slots)
            else:
                slots.waiters.remove(waiter)
                self._drop_if_idle(key, slots)

    def _hand_over(self, key: str, slots: _Slots) -> None:
        while slots.waiters and slots.held <= slots.limit:
            waiter = slots.waiters.popleft()
            waiter.granted = True
            if waiter.wake():
                return
        slots.held -= 1
        self._drop_if_idle(key, slots)

    def _drop_if_idle(self, key: str, slots: _Slots) -> None:
        if slots.held <= 0 and not slots.waiters:
            self._slots.pop(key, None)


@dataclass(frozen=True)
class _GatePlace:
    key: str
    before: float
    after: float


def _why(gate: pacing.Gate, now: float) -> str:
    if gate.paused_until > now:
        return "paused at the server's request"
    return "paced from the server's headers"


def _unpack(reservation: Reservation) -> tuple[_Bucket, object]:
    handle = reservation.handle
    if not (isinstance(handle, tuple) and isinstance(handle[0], _Bucket)):
        raise TypeError(f"not a reservation of this backend: {reservation!r}")
    return handle[0], handle[1]


def _inf(timeout: float | None) -> float:
    return float("inf") if timeout is None else timeout


def _check_note(value: str, ttl: float) -> None:
    if not isinstance(value, str):
        raise TypeError(f"value must be a string, got {value!r}")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be seconds (a number), got {ttl!r}")
    if not (ttl > 0 and math.isfinite(ttl)):
        raise ValueError(f"ttl must be positive and finite seconds, got {ttl!r}")
