"""`RedisBackend`: one budget per key, shared by every process through Redis.

Every decision is one Lua script call (lua/*.lua, one per operation; a
release is a single ``ZREM``), so it is atomic and costs one round trip; all
the limits of a bucket are decided together in it. The scripts read the
Redis server's clock (``TIME``), so differences between the clients' clocks
never change a result.

Keys, for a bucket, pool or line called ``name``::

    <namespace>:{<name>}:r    rate bucket: limits, last reservation, TATs
    <namespace>:{<name>}:m    its reservations given back mid-line (hash)
    <namespace>:{<name>}:o    the same, ordered by admission time (zset)
    <namespace>:{<name>}:c    concurrency pool: leases by expiry (zset)
    <namespace>:{<name>}:p    pacing line: its TAT (`HeaderPacing`)
    <namespace>:{<name>}:g    pacing gate: what responses taught (hash)
    <namespace>:{<name>}:b    retry budget: tokens left (`Retry`)
    <namespace>:{<name>}:v    a value kept for a while (`remember`)

The braces make ``name`` the hash tag, so each budget's keys live in one
Redis Cluster slot. A name that contains braces or is very long is replaced
by its digest. Policies never put secrets in names (header values arrive as
digests, see `throttlekit.keys.header`). Every key expires on its own once
it holds nothing worth keeping.

Giving back a reservation follows `throttlekit._core.gcra.ReservationLedger`,
as `MemoryBackend` does: the last one in line is undone at once, and one
from the middle is marked and undone once the ones behind it are given back
too. Each reservation carries the state from before it was charged, so the
reserve script never writes more than the bucket's one short string.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import math
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, NamedTuple, TypeVar

try:
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.cluster
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "RedisBackend needs the redis package: pip install 'throttlekit[redis]'"
    ) from exc
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from .._core import budget, gcra, pacing
from .._core.rates import Limit
from .._exceptions import BackendError, RateLimited
from .._validate import seconds
from ..keys import digest
from ._base import Lease, Reservation
from ._reach import Reach
from ._redis_pacing import PlaceTicket, gate_args, pace_args, placed, read_gate
from ._redis_scripts import (
    ACQUIRE,
    CANCEL,
    EARN,
    GATE,
    LEARN,
    PACE,
    PAUSED,
    RENEW,
    RESERVE,
    SPEND,
    UNPACE,
    Arg,
    AsyncClient,
    Script,
    SyncClient,
)
from .memory import MemoryBackend, _check_note

__all__ = ["OnError", "RedisBackend"]

logger = logging.getLogger("throttlekit.redis")

OnError = Literal["raise", "allow", "local"]
AsyncClientArg = AsyncClient | Callable[[], AsyncClient]

_MODES = ("raise", "allow", "local")
_ASYNC_CLIENTS = (redis.asyncio.Redis, redis.asyncio.cluster.RedisCluster)
_DEGRADED = {
    "raise": "raising BackendError",
    "allow": "admitting every call without limits",
    "local": "limiting each process on its own, at {share:g} of each budget",
}

# Concurrent reservations on one bucket from one event loop are decided in
# one script call, up to this many at once.
_BATCH = 128

# Waiting for a concurrency slot polls with backoff: only a release can say
# when a slot frees, and releases are not announced.
_FIRST_PAUSE = 0.002
_LAST_PAUSE = 0.05

# A lesson whose gate keeps changing under it is retried this many times,
# the last one written regardless (see lua/learn.lua).
_LEARN_ATTEMPTS = 16

# A retry budget unused this long is forgotten, that is full again.
_BUDGET_TTL_MS = 3_600_000

# Key names kept ready for this many buckets; more start the cache over.
_CACHED = 4096

# Bucket names longer than this become digests in key names.
_LONGEST_NAME = 200

# Sub-picosecond float noise in cost * interval is not a real microsecond.
_SLACK = 1e-6


class _Ticket(NamedTuple):
    """A reservation held in Redis; what lua/cancel.lua needs to undo it.

    Attributes:
        keys: The bucket's keys: its state, its marks, the marks' order.
        token: The reservation's random id.
        prev: The token of the reservation charged just before it, or
            ``"-"``.
        before: The bucket's theoretical arrival times before it was
            charged, microseconds on the Redis server's clock.
        admit_us: When the caller may go, integer microseconds since the
            epoch on the Redis server's clock.
    """

    keys: tuple[str, str, str]
    token: int
    prev: str
    before: tuple[int, ...]
    admit_us: int

    def cancel_args(self) -> list[Arg]:
        """Return the arguments of lua/cancel.lua for this reservation."""
        return [self.token, self.prev, self.admit_us, *self.before]


@dataclass(frozen=True)
class _LeaseTicket:
    """A concurrency slot held in Redis: its pool's key and lease id."""

    pool: str
    lease_id: int


@dataclass(frozen=True)
class _Local:
    """A reservation or lease held by the in-process fallback."""

    inner: Reservation | Lease


class _Allowed:
    """Admitted without limits while Redis was unreachable."""

    def __repr__(self) -> str:
        return "<allowed while Redis was unreachable>"


_ALLOWED = _Allowed()


@dataclass(frozen=True)
class _Plan:
    """What the reserve script needs to know about a bucket's limits.

    Charges round up and tolerances down to whole microseconds, so the
    rounding never admits more than the limits.

    Attributes:
        sig: The limits, as text; async callers with equal ones share a
            script call.
        head: The script's first argument: the tolerances, microseconds.
        intervals: Each limit's emission interval, microseconds.
    """

    sig: str
    head: bytes
    intervals: tuple[float, ...]

    @classmethod
    def of(cls, limits: tuple[Limit, ...]) -> _Plan:
        sig = ";".join(f"{x.amount!r}/{x.period!r}/{x.burst!r}" for x in limits)
        tolerances = [math.floor(x.tolerance * 1e6 + _SLACK) for x in limits]
        head = " ".join(map(str, tolerances)).encode()
        return cls(sig, head, tuple(x.interval * 1e6 for x in limits))

    def request(self, cost: float, max_wait: float | None, token: int) -> bytes:
        """Return one request's argument for the reserve script."""
        bound = -1 if max_wait is None or math.isinf(max_wait) else int(max_wait * 1e6)
        charges = " ".join([str(math.ceil(cost * x - _SLACK)) for x in self.intervals])
        return f"{bound} {token} {charges}".encode()


@dataclass
class _Pending:
    """An async caller waiting for its batch's decision."""

    cost: float
    token: int
    arg: bytes
    future: asyncio.Future[Reservation]


@dataclass(frozen=True)
class _Target:
    """A bucket as the reserve script's replies concern it.

    Attributes:
        key: The bucket's name.
        keys: The bucket's Redis keys: its state, its marks, their order.
        limits: How many limits the bucket has.
    """

    key: str
    keys: tuple[str, str, str]
    limits: int

    def outcomes(
        self, reply: bytes | str, requests: Sequence[tuple[float, int]]
    ) -> list[Reservation | RateLimited]:
        """Turn the reserve script's reply into one outcome per request.

        Args:
            reply: The script's reply (see lua/reserve.lua).
            requests: Each request's cost and token, in the order sent.
        """
        fields = reply.split()
        now = int(fields[0])
        prev = _text(fields[1])
        stride = 2 + self.limits
        outcomes: list[Reservation | RateLimited] = []
        for index, (cost, token) in enumerate(requests):
            at = 2 + index * stride
            wait_us = int(fields[at + 1])
            if fields[at] in (b"0", "0"):
                outcomes.append(RateLimited(self.key, wait_us / 1e6))
                continue

            before = tuple(map(int, fields[at + 2 : at + stride]))
            ticket = _Ticket(self.keys, token, prev, before, now + wait_us)
            outcomes.append(Reservation(self.key, cost, wait_us / 1e6, ticket))
            prev = str(token)
        return outcomes


@dataclass
class _Lane:
    """The async callers of one bucket on one event loop, in arrival order."""

    target: _Target
    plan: _Plan
    pending: list[_Pending] = field(default_factory=list)


@dataclass
class _LoopState:
    """What the backend keeps per event loop."""

    client: AsyncClient
    owned: bool
    lanes: dict[tuple[str, str], _Lane] = field(default_factory=dict)
    flushing: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    keeper: AsyncIterator[None] | None = None
    closed: bool = False

    def take_round(self) -> list[tuple[_Lane, list[_Pending]]]:
        """Take the queued callers of every bucket, up to a batch each."""
        round_: list[tuple[_Lane, list[_Pending]]] = []
        for name, lane in list(self.lanes.items()):
            batch = [p for p in lane.pending[:_BATCH] if not p.future.done()]
            del lane.pending[:_BATCH]
            if not lane.pending:
                del self.lanes[name]
            if batch:
                round_.append((lane, batch))
        return round_

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background, keeping it referenced until done."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class _Down(enum.Enum):
    """Redis gave no answer: skipped while down, or failed."""

    DOWN = 0


_DOWN = _Down.DOWN
_T = TypeVar("_T")


class _Health(Reach):
    """Whether Redis answers; in ``"raise"`` mode every call tries it."""

    def __init__(self, mode: OnError, share: float, retry_interval: float) -> None:
        super().__init__(
            retry_interval,
            logger,
            gone=_DEGRADED[mode].format(share=share),
            back="shared limits apply again",
        )
        self.mode = mode

    def try_redis(self) -> bool:
        """Return whether this call should go to Redis."""
        return self.mode == "raise" or self.usable()


class RedisBackend:
    """Limiter state in Redis, shared by every process and host using it.

    Celery workers on several machines calling the same API organization
    add up to the organization's limit, not a multiple of it: each budget
    lives once, in Redis, and every decision is one atomic script call timed
    by the Redis server's clock. Callers wait on their own timers for the
    time the backend gives them; nothing polls Redis for rate limits. It
    holds everything `MemoryBackend` does (rate buckets, concurrency slots,
    `HeaderPacing` lines, `Retry` budgets), so every policy works unchanged
    across processes.

    On one event loop, concurrent reservations of a bucket go together in
    one script call, and those of different buckets in one round trip.

    Build it from a URL with `from_url`, or from clients you configured.

    Args:
        client: A sync client (`redis.Redis` or `redis.cluster.RedisCluster`)
            for the sync methods. ``None`` (default): async use only.
        async_client: An async client (`redis.asyncio.Redis` or its cluster
            twin), or a function returning a new one. A function is called
            once per event loop, since an async client belongs to the loop
            it first ran on, and its clients are closed as their loops end;
            a client given as it is serves one loop and is yours to close.
            ``None`` (default): sync use only.
        namespace: Prefix of every key name; default ``"throttlekit"``.
        on_error: What a decision does when Redis fails or times out:
            ``"raise"`` (default) raises `BackendError`; ``"allow"`` admits
            the call at once, without limits; ``"local"`` decides in this
            process with a `MemoryBackend`, at ``local_share`` of each
            budget.
        local_share: The share of each rate (and concurrency limit) a
            process takes for itself under ``on_error="local"``; a fraction
            in (0, 1], default 0.5. Set it to about 1 / the number of
            processes sharing the budget.
        lease_ttl: Seconds a concurrency slot stays held unless released or
            renewed; default 60. A process that dies holding a slot loses it
            after this long.
        retry_interval: Seconds between attempts to reach Redis again after
            a failure under ``"allow"`` and ``"local"``; default 0.25. The
            calls in between go straight to the fallback, so an unreachable
            Redis slows down one call per interval, not every call. ``0``
            tries Redis on every call.

    Raises:
        TypeError: Neither ``client`` nor ``async_client`` is given.
        ValueError: An argument is invalid; the message names it.

    Example:
        >>> import throttlekit as tk
        >>> backend = tk.RedisBackend.from_url("redis://localhost:6379/0")
        >>> transport = tk.ThrottledTransport(
        ...     tk.RateLimit("10/second", burst=10), backend=backend
        ... )

    Note:
        A concurrency waiter polls with jittered backoff (2 ms doubling to
        50 ms) because releases are not announced; slots are not handed out
        first come, first served. A slot is held for at most ``lease_ttl``
        unless renewed with `renew`, even by a call still running. An async
        client made per event loop is closed when the loop shuts down its
        async generators, as `asyncio.run` does; a loop closed without that
        leaks its connections.
    """

    def __init__(
        self,
        client: SyncClient | None = None,
        *,
        async_client: AsyncClientArg | None = None,
        namespace: str = "throttlekit",
        on_error: OnError = "raise",
        local_share: float = 0.5,
        lease_ttl: float | timedelta = 60.0,
        retry_interval: float | timedelta = 0.25,
    ) -> None:
        if client is None and async_client is None:
            raise TypeError(
                "RedisBackend needs client=, async_client= or both; "
                "or build it with RedisBackend.from_url"
            )
        self._client = client
        self._async_client = async_client
        self._owned = False
        self.namespace = _check_namespace(namespace)
        self.on_error: OnError = _check_mode(on_error)
        self.local_share = _check_share(local_share)
        self.lease_ttl = _positive_seconds("lease_ttl", lease_ttl)

        interval = seconds("retry_interval", retry_interval)
        assert interval is not None
        self._health = _Health(self.on_error, self.local_share, interval)
        self._local = MemoryBackend()
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _LoopState
        ] = weakref.WeakKeyDictionary()
        self._loops_lock = threading.Lock()
        self._plans: dict[tuple[Limit, ...], _Plan] = {}
        self._targets: dict[tuple[str, int], _Target] = {}
        self._shares: dict[tuple[Limit, ...], tuple[Limit, ...]] = {}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        timeout: float | timedelta = 0.5,
        namespace: str = "throttlekit",
        on_error: OnError = "raise",
        local_share: float = 0.5,
        lease_ttl: float | timedelta = 60.0,
        retry_interval: float | timedelta = 0.25,
    ) -> RedisBackend:
        """Build a backend with its own sync and async clients for ``url``.

        Args:
            url: A Redis URL, such as ``"redis://localhost:6379/0"`` or
                ``"rediss://:password@host:6380/0"``.
            cluster: Whether ``url`` names a node of a Redis Cluster;
                default False.
            timeout: Seconds a Redis call may take to connect, and again
                to answer, before it fails; default 0.5. Calls are not
                retried, so a decision never waits on a single Redis longer
                than twice this (a Redis Cluster may also spend up to that
                per node refreshing its layout after a failure).
            namespace: See `RedisBackend`.
            on_error: See `RedisBackend`.
            local_share: See `RedisBackend`.
            lease_ttl: See `RedisBackend`.
            retry_interval: See `RedisBackend`.

        Returns:
            A backend whose clients are closed by `close` and `aclose`.
        """
        bound = _positive_seconds("timeout", timeout)
        options: dict[str, Any] = {
            "socket_timeout": bound,
            "socket_connect_timeout": bound,
        }
        client: SyncClient
        if cluster:
            client = redis.cluster.RedisCluster.from_url(
                url, retry=Retry(NoBackoff(), 0), **options
            )
        else:
            client = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), **options)

        def async_client() -> AsyncClient:
            retry = AsyncRetry(NoBackoff(), 0)
            if cluster:
                return redis.asyncio.cluster.RedisCluster.from_url(
                    url, retry=retry, **options
                )
            return redis.asyncio.Redis.from_url(url, retry=retry, **options)

        backend = cls(
            client,
            async_client=async_client,
            namespace=namespace,
            on_error=on_error,
            local_share=local_share,
            lease_ttl=lease_ttl,
            retry_interval=retry_interval,
        )
        backend._owned = True
        return backend

    def __repr__(self) -> str:
        return f"RedisBackend(namespace={self.namespace!r}, on_error={self.on_error!r})"

    def reserve(
        self,
        key: str,
        limits: Sequence[Limit],
        cost: float,
        max_wait: float | None,
    ) -> Reservation:
        """Reserve ``cost`` in bucket ``key`` and return the wait.

        Args:
            key: The bucket's name.
            limits: The bucket's limits, decided together.
            cost: Cost units to charge.
            max_wait: Seconds the caller accepts to wait; ``None`` for no
                bound.

        Raises:
            RateLimited: The wait would exceed ``max_wait``; nothing is
                charged.
            CapacityExceeded: ``cost`` exceeds the burst capacity; Redis is
                not asked.
            BackendError: Redis failed and ``on_error="raise"``.
        """
        limits = tuple(limits)
        gcra.check_cost(key, limits, cost)

        if self._health.try_redis():
            plan = self._plan(limits)
            target = self._target(key, len(limits))
            token = _token()
            args = [plan.head, plan.request(cost, max_wait, token)]
            try:
                reply = RESERVE.run(self._sync(), target.keys[:1], args)
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                self._health.answered()
                return _settle(target.outcomes(reply, [(cost, token)])[0])
        return self._fallback_reserve(key, limits, cost, max_wait)

    def cancel(self, reservation: Reservation) -> None:
        """Give back a reservation; harmless twice or after its time.

        Raises:
            BackendError: Redis failed and ``on_error="raise"``. Otherwise a
                reservation that could not be given back stays charged,
                which never admits more than the limits.
        """
        undo = _undo(reservation.handle)
        if undo is None:
            self._fallback_cancel(reservation)
            return
        if not self._health.try_redis():
            return

        script, keys, args = undo
        try:
            script.run(self._sync(), keys, args)
        except redis.RedisError as exc:
            self._failed(exc)
        else:
            self._health.answered()

    def acquire(self, key: str, limit: int, timeout: float | None) -> Lease:
        """Take one of ``limit`` slots of ``key``, waiting up to ``timeout``.

        Args:
            key: The pool's name.
            limit: Slots in the pool; an int of at least 1.
            timeout: Seconds to wait for a slot; ``None`` for no bound.

        Raises:
            RateLimited: No slot came free within ``timeout``.
            BackendError: Redis failed and ``on_error="raise"``.
        """
        _check_limit(limit)
        start = time.monotonic()
        if self._health.try_redis():
            try:
                return self._acquire(key, limit, timeout, start)
            except redis.RedisError as exc:
                self._failed(exc)
        return self._fallback_acquire(key, limit, _left(timeout, start))

    def release(self, lease: Lease) -> None:
        """Give a slot back; harmless twice or after the lease ran out.

        Raises:
            BackendError: Redis failed and ``on_error="raise"``. Otherwise
                the slot frees itself when the lease runs out.
        """
        handle = lease.handle
        if not isinstance(handle, _LeaseTicket):
            self._fallback_release(lease)
            return
        if not self._health.try_redis():
            return

        try:
            self._sync().zrem(handle.pool, handle.lease_id)
        except redis.RedisError as exc:
            self._failed(exc)
        else:
            self._health.answered()

    def renew(self, lease: Lease) -> bool:
        """Extend a held slot's lease to ``lease_ttl`` from now.

        Call it during a call that may outlast ``lease_ttl``.

        Returns:
            Whether the lease is still held. False means it ran out and the
            slot may be someone else's. Leases held by the fallback while
            Redis was unreachable never run out.

        Raises:
            BackendError: Redis failed and ``on_error="raise"``.
        """
        handle = lease.handle
        if not isinstance(handle, _LeaseTicket):
            return self._fallback_renew(lease)

        args = [handle.lease_id, self._ttl_us()]
        try:
            held = RENEW.run(self._sync(), [handle.pool], args)
        except redis.RedisError as exc:
            self._failed(exc)
            return True
        self._health.answered()
        return bool(held)

    def pace(
        self,
        key: str,
        jitter: float,
        config: pacing.PacingConfig,
        max_wait: float | None,
    ) -> Reservation:
        """Take the next place on ``key``'s pacing line (`HeaderPacing`).

        Args:
            key: The line's name.
            jitter: A random fraction in [0, 1) spreading resumption after
                a pause.
            config: The pacing settings.
            max_wait: Seconds the caller accepts to wait; ``None`` for no
                bound.

        Raises:
            RateLimited: The wait would exceed ``max_wait``; nothing is
                taken.
            BackendError: Redis failed and ``on_error="raise"``.
        """
        keys = [self._key(key, "g"), self._key(key, "p")]
        args = pace_args(jitter, config, max_wait)
        reply = self._ask(lambda client: PACE.run(client, keys, args))
        if reply is not _DOWN:
            return placed(key, keys[1], reply)
        return self._fallback_pace(key, jitter, config, max_wait)

    def paused(self, key: str) -> float:
        """Return the seconds left of ``key``'s pause; 0 when not paused.

        Raises:
            BackendError: Redis failed and ``on_error="raise"``.
        """
        gate = [self._key(key, "g")]
        left = self._ask(lambda client: PAUSED.run(client, gate, []))
        if left is not _DOWN:
            return float(left)
        return 0.0 if self.on_error == "allow" else self._local.paused(key)

    def gate(self, key: str) -> tuple[float, pacing.Gate]:
        """Return the Redis server's time and what ``key``'s pacing line
        has learned, a fresh `Gate` when nothing; its ``tat``, kept apart,
        is not read. When Redis fails under ``"allow"`` or ``"local"``,
        this process's own gate and clock answer instead.

        Raises:
            BackendError: Redis failed and ``on_error="raise"``.
        """
        gate = [self._key(key, "g")]
        reply = self._ask(lambda client: GATE.run(client, gate, []))
        if reply is not _DOWN:
            now, _, found = read_gate(reply)
            return now, found
        return self._local.gate(key)

    def learn(
        self, key: str, lesson: pacing.Lesson, config: pacing.PacingConfig
    ) -> None:
        """Apply what a response taught about ``key`` to its pacing line.

        Raises:
            BackendError: Redis failed and ``on_error="raise"``.
        """
        gate = self._key(key, "g")
        done = self._ask(lambda client: self._learn(gate, lesson, config))
        if done is _DOWN and self.on_error == "local":
            self._local.learn(key, lesson, config)

    def earn(self, key: str, config: budget.BudgetConfig) -> None:
        """Credit ``key``'s retry budget for one first attempt.

        Raises:
            BackendError: Redis failed and ``on_error="raise"``.
        """
        args: list[Arg] = [repr(config.ratio), repr(config.cap), _BUDGET_TTL_MS]
        tokens = [self._key(key, "b")]
        done = self._ask(lambda client: EARN.run(client, tokens, args))
        if done is _DOWN and self.on_error == "local":
            self._local.earn(key, config)

    def spend(self, key: str, config: budget.BudgetConfig) -> bool:
        """Take one retry from ``key``'s budget; False when it is empty.

        Raises:
            BackendError: Redis failed and ``on_error="raise"``.
        """
        args: list[Arg] = [repr(config.cap), _BUDGET_TTL_MS]
        tokens = [self._key(key, "b")]
        spent = self._ask(lambda client: SPEND.run(client, tokens, args))
        if spent is not _DOWN:
            return bool(spent)
        return self.on_error == "allow" or self._local.spend(key, config)

    def remember(self, key: str, value: str, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds, replacing any.

        A plain ``SET`` with ``PX``: Redis forgets the value on its own.
        While Redis is unreachable (``on_error`` other than ``"raise"``) the
        value is kept in this process instead.

        Raises:
            TypeError: ``value`` is not a string.
            ValueError: ``ttl`` is not positive and finite.
            BackendError: Redis failed and ``on_error="raise"``.
        """
        _check_note(value, ttl)
        name = self._key(key, "v")
        done = self._ask(lambda client: client.set(name, value, px=_ms(ttl)))
        if done is _DOWN:
            self._local.remember(key, value, ttl)

    def recall(self, key: str) -> str | None:
        """Return the value kept under ``key``; None if none or expired.

        Raises:
            BackendError: Redis failed and ``on_error="raise"``.
        """
        name = self._key(key, "v")
        value = self._ask(lambda client: client.get(name))
        if value is not _DOWN:
            return None if value is None else _text(value)
        return self._local.recall(key)

    async def areserve(
        self,
        key: str,
        limits: Sequence[Limit],
        cost: float,
        max_wait: float | None,
    ) -> Reservation:
        """Async twin of `reserve`.

        Concurrent callers of one bucket on one event loop share a script
        call: while one is in flight, the others queue and go together in
        the next, in the order they came.
        """
        limits = tuple(limits)
        gcra.check_cost(key, limits, cost)

        if self._health.try_redis():
            try:
                reservation = await self._areserve(key, limits, cost, max_wait)
            except redis.RedisError as exc:
                self._failed(exc)
            else:
                self._health.answered()
                return reservation
        return self._fallback_reserve(key, limits, cost, max_wait)

    async def acancel(self, reservation: Reservation) -> None:
        """Async twin of `cancel`."""
        undo = _undo(reservation.handle)
        if undo is None:
            self._fallback_cancel(reservation)
            return
        if not self._health.try_redis():
            return

        state = await self._state()
        script, keys, args = undo
        try:
            await script.arun(state.client, keys, args)
        except redis.RedisError as exc:
            self._failed(exc)
        else:
            self._health.answered()

    async def aacquire(self, key: str, limit: int, timeout: float | None) -> Lease:
        """Async twin of `acquire`; a cancelled waiter holds no slot."""
        _check_limit(limit)
        start = time.monotonic()
        if self._health.try_redis():
            try:
                return await self._aacquire(key, limit, timeout, start)
            except redis.RedisError as exc:
                self._failed(exc)
        return await self._fallback_aacquire(key, limit, _left(timeout, start))

    async def arelease(self, lease: Lease) -> None:
        """Async twin of `release`."""
        handle = lease.handle
        if not isinstance(handle, _LeaseTicket):
            self._fallback_release(lease)
            return
        if not self._health.try_redis():
            return

        state = await self._state()
        try:
            await state.client.zrem(handle.pool, handle.lease_id)
        except redis.RedisError as exc:
            self._failed(exc)
        else:
            self._health.answered()

    async def arenew(self, lease: Lease) -> bool:
        """Async twin of `renew`."""
        handle = lease.handle
        if not isinstance(handle, _LeaseTicket):
            return self._fallback_renew(lease)

        state = await self._state()
        args = [handle.lease_id, self._ttl_us()]
        try:
            held = await RENEW.arun(state.client, [handle.pool], args)
        except redis.RedisError as exc:
            self._failed(exc)
            return True
        self._health.answered()
        return bool(held)

    async def apace(
        self,
        key: str,
        jitter: float,
        config: pacing.PacingConfig,
        max_wait: float | None,
    ) -> Reservation:
        """Async twin of `pace`."""
        keys = [self._key(key, "g"), self._key(key, "p")]
        args = pace_args(jitter, config, max_wait)
        reply = await self._aask(lambda client: PACE.arun(client, keys, args))
        if reply is not _DOWN:
            return placed(key, keys[1], reply)
        return self._fallback_pace(key, jitter, config, max_wait)

    async def apaused(self, key: str) -> float:
        """Async twin of `paused`."""
        gate = [self._key(key, "g")]
        left = await self._aask(lambda client: PAUSED.arun(client, gate, []))
        if left is not _DOWN:
            return float(left)
        return 0.0 if self.on_error == "allow" else self._local.paused(key)

    async def agate(self, key: str) -> tuple[float, pacing.Gate]:
        """Async twin of `gate`."""
        gate = [self._key(key, "g")]
        reply = await self._aask(lambda client: GATE.arun(client, gate, []))
        if reply is not _DOWN:
            now, _, found = read_gate(reply)
            return now, found
        return self._local.gate(key)

    async def alearn(
        self, key: str, lesson: pacing.Lesson, config: pacing.PacingConfig
    ) -> None:
        """Async twin of `learn`."""
        gate = self._key(key, "g")
        done = await self._aask(
            lambda client: self._alearn(client, gate, lesson, config)
        )
        if done is _DOWN and self.on_error == "local":
            self._local.learn(key, lesson, config)

    async def aearn(self, key: str, config: budget.BudgetConfig) -> None:
        """Async twin of `earn`."""
        args: list[Arg] = [repr(config.ratio), repr(config.cap), _BUDGET_TTL_MS]
        tokens = [self._key(key, "b")]
        done = await self._aask(lambda client: EARN.arun(client, tokens, args))
        if done is _DOWN and self.on_error == "local":
            self._local.earn(key, config)

    async def aspend(self, key: str, config: budget.BudgetConfig) -> bool:
        """Async twin of `spend`."""
        args: list[Arg] = [repr(config.cap), _BUDGET_TTL_MS]
        tokens = [self._key(key, "b")]
        spent = await self._aask(lambda client: SPEND.arun(client, tokens, args))
        if spent is not _DOWN:
            return bool(spent)
        return self.on_error == "allow" or self._local.spend(key, config)

    async def aremember(self, key: str, value: str, ttl: float) -> None:
        """Async twin of `remember`."""
        _check_note(value, ttl)
        name = self._key(key, "v")
        done = await self._aask(lambda client: client.set(name, value, px=_ms(ttl)))
        if done is _DOWN:
            self._local.remember(key, value, ttl)

    async def arecall(self, key: str) -> str | None:
        """Async twin of `recall`."""
        name = self._key(key, "v")
        value = await self._aask(lambda client: client.get(name))
        if value is not _DOWN:
            return None if value is None else _text(value)
        return self._local.recall(key)

    def close(self) -> None:
        """Close the sync client, when the backend made it."""
        if self._owned and self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the running event loop's async client, when the backend
        made it."""
        loop = asyncio.get_running_loop()
        with self._loops_lock:
            state = self._loops.pop(loop, None)
        if state is not None:
            await _close(state)

    def _sync(self) -> SyncClient:
        if self._client is None:
            raise TypeError(
                "this RedisBackend has no sync client; pass client= "
                "or build it with RedisBackend.from_url"
            )
        return self._client

    def _key(self, name: str, kind: str) -> str:
        return f"{self.namespace}:{{{_tag(name)}}}:{kind}"

    def _target(self, name: str, limits: int) -> _Target:
        target = self._targets.get((name, limits))
        if target is None:
            if len(self._targets) >= _CACHED:
                self._targets.clear()
            keys = (self._key(name, "r"), self._key(name, "m"), self._key(name, "o"))
            target = self._targets[(name, limits)] = _Target(name, keys, limits)
        return target

    def _plan(self, limits: tuple[Limit, ...]) -> _Plan:
        plan = self._plans.get(limits)
        if plan is None:
            if len(self._plans) >= _CACHED:
                self._plans.clear()
            plan = self._plans[limits] = _Plan.of(limits)
        return plan

    def _ttl_us(self) -> int:
        return math.ceil(self.lease_ttl * 1e6)

    def _ask(self, call: Callable[[SyncClient], _T]) -> _T | Literal[_Down.DOWN]:
        """Put one call to Redis, or answer `_DOWN` when Redis is skipped
        (down, within ``retry_interval``) or fails (then recorded, and
        raised as `BackendError` under ``on_error="raise"``)."""
        if not self._health.try_redis():
            return _DOWN
        try:
            reply = call(self._sync())
        except redis.RedisError as exc:
            self._failed(exc)
            return _DOWN
        self._health.answered()
        return reply

    async def _aask(
        self, call: Callable[[AsyncClient], Awaitable[_T]]
    ) -> _T | Literal[_Down.DOWN]:
        """Async twin of `_ask`, on this event loop's client."""
        if not self._health.try_redis():
            return _DOWN
        state = await self._state()
        try:
            reply = await call(state.client)
        except redis.RedisError as exc:
            self._failed(exc)
            return _DOWN
        self._health.answered()
        return reply

    def _failed(self, exc: redis.RedisError) -> None:
        """Record a Redis failure; raise it under ``on_error="raise"``."""
        self._health.failed(exc)
        if self.on_error == "raise":
            raise BackendError(f"Redis failed: {exc!r}") from exc

    def _acquire(
        self, key: str, limit: int, timeout: float | None, start: float
    ) -> Lease:
        pool = self._key(key, "c")
        lease_id = _token()
        args = [limit, lease_id, self._ttl_us()]
        pauses = _Pauses(timeout, start)
        while True:
            taken, next_us = ACQUIRE.run(self._sync(), [pool], args)
            if taken:
                self._health.answered()
                return Lease(
                    key, time.monotonic() - start, _LeaseTicket(pool, lease_id)
                )

            pause = pauses.next(next_us / 1e6)
            if pause is None:
                raise RateLimited(key, _inf(timeout), reason="no concurrency slot")
            time.sleep(pause)

    def _learn(
        self, gate: str, lesson: pacing.Lesson, config: pacing.PacingConfig
    ) -> None:
        """Apply ``lesson`` to the gate: read, learn, compare and set."""
        client = self._sync()
        for attempt in range(_LEARN_ATTEMPTS):
            now, version, before = read_gate(GATE.run(client, [gate], []))
            after = pacing.learn(before, lesson, now, config)
            if attempt == _LEARN_ATTEMPTS - 1:
                version = "*"
            if LEARN.run(client, [gate], gate_args(version, after, now, config)):
                return

    async def _alearn(
        self,
        client: AsyncClient,
        gate: str,
        lesson: pacing.Lesson,
        config: pacing.PacingConfig,
    ) -> None:
        """Async twin of `_learn`."""
        for attempt in range(_LEARN_ATTEMPTS):
            now, version, before = read_gate(await GATE.arun(client, [gate], []))
            after = pacing.learn(before, lesson, now, config)
            if attempt == _LEARN_ATTEMPTS - 1:
                version = "*"
            if await LEARN.arun(client, [gate], gate_args(version, after, now, config)):
                return

    async def _aacquire(
        self, key: str, limit: int, timeout: float | None, start: float
    ) -> Lease:
        state = await self._state()
        pool = self._key(key, "c")
        lease_id = _token()
        args = [limit, lease_id, self._ttl_us()]
        pauses = _Pauses(timeout, start)
        while True:
            attempt = asyncio.ensure_future(ACQUIRE.arun(state.client, [pool], args))
            try:
                taken, next_us = await asyncio.shield(attempt)
            except asyncio.CancelledError:
                # The slot may be taken by the time the script answers.
                state.spawn(_release_after(attempt, state.client, pool, lease_id))
                raise
            if taken:
                self._health.answered()
                return Lease(
                    key, time.monotonic() - start, _LeaseTicket(pool, lease_id)
                )

            pause = pauses.next(next_us / 1e6)
            if pause is None:
                raise RateLimited(key, _inf(timeout), reason="no concurrency slot")
            await asyncio.sleep(pause)

    async def _areserve(
        self,
        key: str,
        limits: tuple[Limit, ...],
        cost: float,
        max_wait: float | None,
    ) -> Reservation:
        state = await self._state()
        plan = self._plan(limits)
        lane = state.lanes.get((key, plan.sig))
        if lane is None:
            target = self._target(key, len(limits))
            lane = state.lanes[(key, plan.sig)] = _Lane(target, plan)

        token = _token()
        arg = plan.request(cost, max_wait, token)
        future: asyncio.Future[Reservation]
        future = asyncio.get_running_loop().create_future()
        lane.pending.append(_Pending(cost, token, arg, future))
        if not state.flushing:
            state.flushing = True
            state.spawn(self._flush(state))
        return await future

    async def _flush(self, state: _LoopState) -> None:
        """Decide the loop's queued reservations until none are left.

        Each round sends one script call per bucket, each with that bucket's
        callers in arrival order, all in one round trip. Callers arriving
        meanwhile wait for the next round.
        """
        try:
            while round_ := state.take_round():
                await self._decide(state.client, round_)
        finally:
            state.flushing = False
            # Only left when this task was cancelled, as its loop ends.
            for lane in state.lanes.values():
                for pending in lane.pending:
                    pending.future.cancel()
            state.lanes.clear()

    async def _decide(
        self, client: AsyncClient, round_: list[tuple[_Lane, list[_Pending]]]
    ) -> None:
        calls = [
            (lane.target.keys[:1], [lane.plan.head, *(p.arg for p in batch)])
            for lane, batch in round_
        ]
        try:
            replies = await RESERVE.arun_many(client, calls)
        except BaseException as exc:
            for _, batch in round_:
                for pending in batch:
                    _fail(pending.future, exc)
            if not isinstance(exc, Exception):
                raise
            return

        abandoned: list[Reservation] = []
        for (lane, batch), reply in zip(round_, replies, strict=True):
            abandoned += _hand_out(lane.target, batch, reply)

        # Callers that gave up while the script ran: last first, so each
        # place is undone at once rather than marked.
        for reservation in reversed(abandoned):
            await _give_back(client, reservation)

    async def _state(self) -> _LoopState:
        """Return the running event loop's state, making it on first use."""
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is not None:
            return state

        if self._async_client is None:
            raise TypeError(
                "this RedisBackend has no async client; pass async_client= "
                "or build it with RedisBackend.from_url"
            )
        given = self._async_client
        if isinstance(given, _ASYNC_CLIENTS):
            state = _LoopState(given, owned=False)
        else:
            state = _LoopState(given(), owned=True)
        with self._loops_lock:
            self._loops[loop] = state

        # asyncio.run and its kin close async generators as the loop ends:
        # the keeper's exit closes this loop's client while it still can.
        state.keeper = self._keeper(loop, state)
        await anext(state.keeper)
        return state

    async def _keeper(
        self, loop: asyncio.AbstractEventLoop, state: _LoopState
    ) -> AsyncIterator[None]:
        try:
            yield
        finally:
            with self._loops_lock:
                if self._loops.get(loop) is state:
                    del self._loops[loop]
            await _close(state)

    def _fallback_reserve(
        self,
        key: str,
        limits: tuple[Limit, ...],
        cost: float,
        max_wait: float | None,
    ) -> Reservation:
        if self.on_error == "allow":
            return Reservation(key, cost, 0.0, _ALLOWED)

        local = self._share(limits)
        charge = min(cost, gcra.capacity(local))
        inner = self._local.reserve(key, local, charge, max_wait)
        return Reservation(key, cost, inner.wait, _Local(inner))

    def _fallback_cancel(self, reservation: Reservation) -> None:
        handle = reservation.handle
        if isinstance(handle, _Local) and isinstance(handle.inner, Reservation):
            self._local.cancel(handle.inner)
        elif handle is not _ALLOWED:
            raise TypeError(f"not a reservation of this backend: {reservation!r}")

    def _fallback_acquire(self, key: str, limit: int, timeout: float | None) -> Lease:
        if self.on_error == "allow":
            return Lease(key, 0.0, _ALLOWED)
        inner = self._local.acquire(key, self._share_slots(limit), timeout)
        return Lease(key, inner.waited, _Local(inner))

    async def _fallback_aacquire(
        self, key: str, limit: int, timeout: float | None
    ) -> Lease:
        if self.on_error == "allow":
            return Lease(key, 0.0, _ALLOWED)
        inner = await self._local.aacquire(key, self._share_slots(limit), timeout)
        return Lease(key, inner.waited, _Local(inner))

    def _fallback_release(self, lease: Lease) -> None:
        handle = lease.handle
        if isinstance(handle, _Local) and isinstance(handle.inner, Lease):
            self._local.release(handle.inner)
        elif handle is not _ALLOWED:
            raise TypeError(f"not a lease of this backend: {lease!r}")

    def _fallback_pace(
        self,
        key: str,
        jitter: float,
        config: pacing.PacingConfig,
        max_wait: float | None,
    ) -> Reservation:
        if self.on_error == "allow":
            return Reservation(key, 0.0, 0.0, _ALLOWED)
        inner = self._local.pace(key, jitter, config, max_wait)
        return Reservation(key, 0.0, inner.wait, _Local(inner))

    def _fallback_renew(self, lease: Lease) -> bool:
        if not isinstance(lease.handle, (_Local, _Allowed)):
            raise TypeError(f"not a lease of this backend: {lease!r}")
        return True

    def _share(self, limits: tuple[Limit, ...]) -> tuple[Limit, ...]:
        """Return this process's share of ``limits`` for the fallback."""
        local = self._shares.get(limits)
        if local is None:
            share = self.local_share
            local = tuple(
                Limit(x.amount * share, x.period, max(x.burst * share, min(x.burst, 1)))
                for x in limits
            )
            self._shares[limits] = local
        return local

    def _share_slots(self, limit: int) -> int:
        return max(1, math.floor(limit * self.local_share))


class _Pauses:
    """Pauses between attempts to take a concurrency slot.

    Doubling from 2 ms to 50 ms with full jitter, so waiters neither hammer
    Redis nor move in step; never past the deadline, and never past the
    moment the first held lease runs out, when a slot frees by itself.
    """

    def __init__(self, timeout: float | None, start: float) -> None:
        self._deadline = math.inf if timeout is None else start + timeout
        self._ceiling = _FIRST_PAUSE

    def next(self, expiry: float) -> float | None:
        """Return the next pause in seconds, or ``None`` when time is up."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            return None

        pause = random.uniform(self._ceiling / 2, self._ceiling)
        self._ceiling = min(2 * self._ceiling, _LAST_PAUSE)
        return min(pause, left, max(expiry, 0.001))


async def _give_back(client: AsyncClient, reservation: Reservation) -> None:
    ticket = reservation.handle
    assert isinstance(ticket, _Ticket)
    try:
        await CANCEL.arun(client, ticket.keys, ticket.cancel_args())
    except redis.RedisError as exc:
        # Left charged: the limits stay safe, only this budget is spent.
        logger.debug("could not give back %s: %r", reservation.key, exc)


async def _release_after(
    attempt: asyncio.Future[Any], client: AsyncClient, pool: str, lease_id: int
) -> None:
    try:
        await attempt
        await client.zrem(pool, lease_id)
    except (redis.RedisError, asyncio.CancelledError) as exc:
        logger.debug("could not release a lease of %s: %r", pool, exc)


async def _close(state: _LoopState) -> None:
    if state.closed:
        return
    state.closed = True
    if state.owned:
        await state.client.aclose()


def _hand_out(target: _Target, batch: list[_Pending], reply: Any) -> list[Reservation]:
    """Settle each caller of a batch; return the reservations of callers
    that gave up meanwhile."""
    if isinstance(reply, Exception):
        for pending in batch:
            _fail(pending.future, reply)
        return []

    requests = [(pending.cost, pending.token) for pending in batch]
    abandoned: list[Reservation] = []
    for pending, outcome in zip(batch, target.outcomes(reply, requests), strict=True):
        if isinstance(outcome, RateLimited):
            _fail(pending.future, outcome)
        elif pending.future.done():
            abandoned.append(outcome)
        else:
            pending.future.set_result(outcome)
    return abandoned


def _undo(handle: object) -> tuple[Script, Sequence[str], list[Arg]] | None:
    """Return the script call giving back a place held in Redis, if it is."""
    if isinstance(handle, _Ticket):
        return CANCEL, handle.keys, handle.cancel_args()
    if isinstance(handle, PlaceTicket):
        return UNPACE, [handle.line], [handle.before, handle.after]
    return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _settle(outcome: Reservation | RateLimited) -> Reservation:
    if isinstance(outcome, RateLimited):
        raise outcome
    logger.debug("reserved %s wait=%.6fs", outcome.key, outcome.wait)
    return outcome


def _fail(future: asyncio.Future[Reservation], exc: BaseException) -> None:
    if future.done():
        return
    if isinstance(exc, Exception):
        future.set_exception(exc)
    else:
        future.cancel()


@functools.lru_cache(maxsize=_CACHED)
def _tag(name: str) -> str:
    """Return the hash tag for a bucket or pool name."""
    if len(name) > _LONGEST_NAME or "{" in name or "}" in name:
        return "~" + digest(name)
    return name


def _token() -> int:
    # Identifies a reservation or lease, never a secret; the random module
    # reseeds itself in forked children, so processes never share tokens.
    return random.getrandbits(63)


def _left(timeout: float | None, start: float) -> float | None:
    if timeout is None:
        return None
    return max(0.0, timeout - (time.monotonic() - start))


def _inf(timeout: float | None) -> float:
    return math.inf if timeout is None else timeout


def _ms(ttl: float) -> int:
    # At least 1 ms: PX 0 is an error, and a positive ttl never means "now".
    return max(1, math.ceil(ttl * 1000))


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, got {limit!r}")


def _check_namespace(namespace: str) -> str:
    if not isinstance(namespace, str) or not namespace:
        raise ValueError(f"namespace must be a non-empty string, got {namespace!r}")
    if "{" in namespace or "}" in namespace:
        raise ValueError(f"namespace must not contain braces, got {namespace!r}")
    return namespace


def _check_mode(on_error: str) -> OnError:
    if on_error not in _MODES:
        raise ValueError(f"on_error must be one of {_MODES}, got {on_error!r}")
    return on_error  # type: ignore[return-value]


def _check_share(share: float) -> float:
    if isinstance(share, bool) or not isinstance(share, (int, float)):
        raise TypeError(f"local_share must be a number, got {share!r}")
    if not 0 < share <= 1:
        raise ValueError(f"local_share must be in (0, 1], got {share!r}")
    return float(share)


def _positive_seconds(name: str, value: float | timedelta) -> float:
    bound = seconds(name, value)
    if not bound or math.isinf(bound):
        raise ValueError(f"{name} must be positive and finite seconds, got {value!r}")
    return bound
