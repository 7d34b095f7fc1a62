"""`RedisRegistry`: `Dedupe` across processes, through Redis.

How a request travels:

1. Callers in one process merge first, in a `MemoryRegistry`, exactly as
   without Redis: one leads locally, the others wait for it. So a process
   has at most one claim per request in Redis at a time.
2. The local leader asks Redis (lua/dedupe_claim.lua). A shared response to
   the same request published less than ``window`` ago is taken at once. If
   nobody holds the request's claim, the caller takes it, for ``wait``
   seconds, and sends the request. Otherwise it follows the holder: it asks
   again after 2 ms, doubling to 50 ms with jitter, never later than the
   claim runs out, until the holder's result is there.
3. The leader publishes its outcome (lua/dedupe_publish.lua): the claim
   ends and the result stays ``window`` plus one second, so followers on
   their way still find it. With a ``window`` of 0, a leader nobody joined
   drops its claim instead and keeps its response streaming.
4. A leader that gives up (cancelled, refused by its own ``max_wait``)
   drops its claim at once; one that dies or hangs loses it when it runs
   out. Either way the next follower to ask finds neither claim nor result,
   takes the claim over and sends; the other followers follow it.
5. A follower hands what it got to the callers of its own process.

A response crosses processes as status, raw headers, raw body, the
describing extensions and the leader's values of the headers it varies on.
An error crosses as its message and the names of its type and of the
httpx, builtin and throttlekit types it derives from; it is rebuilt as the
first of those this process can make (see `_rebuild`).

When Redis fails or times out, every caller goes on merging within its
process, one WARNING says so, and Redis is tried again after the backend's
``retry_interval``. No request fails because of it.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from .._exceptions import BackendError, ThrottlekitError
from .._validate import seconds
from ..backends._reach import Reach
from ..backends._redis_dedupe import Claimed, DedupeStore, Done, Lead, Wait
from ..backends.redis import RedisBackend
from .dedupe import (
    Abandoned,
    Declined,
    Failed,
    MemoryRegistry,
    Outcome,
    Promoted,
    Shared,
    Ticket,
)

__all__ = ["DEFAULT_WAIT", "DEFAULT_WINDOW", "RedisRegistry"]

logger = logging.getLogger("throttlekit.dedupe")

#: Default ``window``, seconds.
DEFAULT_WINDOW = 1.0

#: Default ``wait``, seconds.
DEFAULT_WAIT = 10.0

# A result outlives its window by this much, seconds, so that followers
# that asked just before it was published still find it.
_LINGER = 1.0

# Followers ask again with backoff: only a poll tells them the leader is
# done, and one follower per process asks.
_FIRST_PAUSE = 0.002
_LAST_PAUSE = 0.05

_SHARED, _FAILED, _DECLINED = "s", "f", "d"


@dataclass(eq=False)
class _Lead:
    """A leader: of its process always, in Redis when ``token`` is set."""

    local: Ticket
    token: str | None
    on_loop: bool
    done: bool = False


@dataclass(frozen=True)
class _Near:
    """A caller waiting for the leader of its own process."""

    local: Ticket


@dataclass(frozen=True)
class _Far:
    """A process's leader following the leader of another process."""

    local: Ticket
    holder: str
    ttl: float


@dataclass(frozen=True)
class _Ready:
    """A caller that found the outcome published already."""

    outcome: Outcome


class RedisRegistry:
    """Where requests in flight are found, in this process and in others.

    Callers of one process merge among themselves first; the one leading
    them then merges with the other processes through Redis. Build it
    through ``Dedupe(shared=backend)``.

    Args:
        backend: The `RedisBackend` whose clients and namespace to use.
        window: Seconds a published response is handed to identical
            requests that arrive after it; default 1. ``0``: only requests
            in flight are merged.
        wait: Seconds a leader's claim lasts, so the longest callers in
            other processes wait for that leader; default 10. If its
            outcome is not published by then (the leader died, hung or is
            that slow), the next caller to ask takes over and sends the
            request itself.

    Raises:
        TypeError: ``backend`` is not a `RedisBackend`, or a duration is
            not a number.
        ValueError: A duration is negative, infinite, or ``wait`` is 0.
    """

    def __init__(
        self,
        backend: RedisBackend,
        *,
        window: float | timedelta = DEFAULT_WINDOW,
        wait: float | timedelta = DEFAULT_WAIT,
    ) -> None:
        if not isinstance(backend, RedisBackend):
            raise TypeError(f"backend must be a RedisBackend, got {backend!r}")
        self.window = _finite("window", window)
        self.wait = _finite("wait", wait)
        if not self.wait:
            raise ValueError(f"wait must be positive seconds, got {wait!r}")

        self._store = DedupeStore(backend)
        self._local = MemoryRegistry()
        self._reach = _Reach(self._store.retry_interval)
        self._lock = threading.Lock()
        self._following = 0
        self._ttl_ms = max(1, math.ceil(self.wait * 1000))
        self._window_ms = round(self.window * 1000)
        self._keep_ms = math.ceil((self.window + _LINGER) * 1000)

    def __repr__(self) -> str:
        return f"RedisRegistry(window={self.window!r}, wait={self.wait!r})"

    def claim(self, key: str) -> Ticket:
        """Join this process's leader, else claim ``key`` in Redis."""
        local = self._local.claim(key)
        if not local.leader:
            return Ticket(key, False, _Near(local))
        return self._ask(local)

    async def aclaim(self, key: str) -> Ticket:
        """Async twin of `claim`."""
        local = await self._local.aclaim(key)
        if not local.leader:
            return Ticket(key, False, _Near(local))
        return await self._aask(local)

    def withdraw(self, ticket: Ticket) -> bool:
        """End a leader's claim if nobody joined it, here or elsewhere.

        With a ``window``, a leader holding the claim in Redis never
        withdraws: its response is kept for callers arriving after it.
        """
        lead = _lead(ticket)
        if lead.token is not None and self._window_ms:
            return False
        if not self._local.withdraw(lead.local):
            return False
        if lead.token is not None:
            try:
                if not self._store.drop(ticket.key, lead.token, alone=True):
                    return False
            except BackendError as exc:
                self._reach.failed(exc)
        lead.done = True
        return True

    async def awithdraw(self, ticket: Ticket) -> bool:
        """Async twin of `withdraw`."""
        lead = _lead(ticket)
        if lead.token is not None and self._window_ms:
            return False
        if not await self._local.awithdraw(lead.local):
            return False
        if lead.token is not None:
            try:
                if not await self._store.adrop(ticket.key, lead.token, alone=True):
                    return False
            except BackendError as exc:
                self._reach.failed(exc)
        lead.done = True
        return True

    def publish(self, ticket: Ticket, outcome: Outcome) -> None:
        """End a leader's claim and give ``outcome`` to every joined caller.

        Blocking callers store the outcome in Redis before they return.
        Callers on an event loop store it from the loop's executor, or,
        for a backend without a sync client, from a task, so the loop is
        not blocked. A second call is harmless.
        """
        lead = _lead(ticket)
        if lead.done:
            return
        lead.done = True

        # Redis first: a claim given up should be gone before this process's
        # next caller, promoted below, asks for it.
        if lead.token is not None:
            self._release(ticket.key, lead.token, lead.on_loop, outcome)
        self._local.publish(lead.local, outcome)

    def join(self, ticket: Ticket) -> Outcome | Promoted:
        """Wait, blocking, for the outcome of the request a caller joined."""
        handle = ticket.handle
        if isinstance(handle, _Ready):
            return handle.outcome
        if isinstance(handle, _Far):
            return self._follow(handle)
        if not isinstance(handle, _Near):
            raise TypeError(f"not a ticket of this registry: {ticket!r}")

        result = self._local.join(handle.local)
        if not isinstance(result, Promoted):
            return result
        # This process's leader gave up: the caller now asks Redis in turn.
        return self._settle(self._ask(result.ticket))

    async def ajoin(self, ticket: Ticket) -> Outcome | Promoted:
        """Async twin of `join`; a cancelled caller stops waiting, alone."""
        handle = ticket.handle
        if isinstance(handle, _Ready):
            return handle.outcome
        if isinstance(handle, _Far):
            return await self._afollow(handle)
        if not isinstance(handle, _Near):
            raise TypeError(f"not a ticket of this registry: {ticket!r}")

        result = await self._local.ajoin(handle.local)
        if not isinstance(result, Promoted):
            return result
        return await self._asettle(await self._aask(result.ticket))

    def pending(self) -> tuple[int, int]:
        """Return this process's requests led now and callers waiting now.

        A caller following a leader in another process counts as waiting.
        """
        leading, waiting = self._local.pending()
        with self._lock:
            far = self._following
        return leading - far, waiting + far

    def _ask(self, local: Ticket) -> Ticket:
        """Claim in Redis for this process's leader ``local``."""
        if not self._usable(self._store.blocking, "sync"):
            return self._alone(local, on_loop=False)

        token = _token()
        try:
            claimed = self._store.claim(
                local.key, token, self._ttl_ms, self._window_ms, ""
            )
        except BackendError as exc:
            self._reach.failed(exc)
            return self._alone(local, on_loop=False)
        except BaseException:
            self._local.publish(local, Abandoned("the leader stopped"))
            raise
        self._reach.answered()
        return self._ticket(local, token, claimed, on_loop=False)

    async def _aask(self, local: Ticket) -> Ticket:
        """Async twin of `_ask`."""
        if not self._usable(self._store.awaiting, "async"):
            return self._alone(local, on_loop=True)

        token = _token()
        try:
            claimed = await self._store.aclaim(
                local.key, token, self._ttl_ms, self._window_ms, ""
            )
        except BackendError as exc:
            self._reach.failed(exc)
            return self._alone(local, on_loop=True)
        except BaseException:
            self._local.publish(local, Abandoned("the leader stopped"))
            raise
        self._reach.answered()
        return self._ticket(local, token, claimed, on_loop=True)

    def _ticket(
        self, local: Ticket, token: str, claimed: Claimed, *, on_loop: bool
    ) -> Ticket:
        if isinstance(claimed, Wait):
            logger.debug("following another process's leader of %s", local.key)
            with self._lock:
                self._following += 1
            return Ticket(local.key, False, _Far(local, claimed.holder, claimed.ttl))

        resolved = self._resolve(local, token, claimed, on_loop=on_loop)
        if isinstance(resolved, Promoted):
            return resolved.ticket
        return Ticket(local.key, False, _Ready(resolved))

    def _resolve(
        self, local: Ticket, token: str, claimed: Lead | Done, *, on_loop: bool
    ) -> Outcome | Promoted:
        """Lead with the claim just taken, or take the outcome found."""
        if isinstance(claimed, Lead):
            logger.debug("leading %s across processes", local.key)
            lead = _Lead(local, token, on_loop)
            return Promoted(Ticket(local.key, True, lead))

        outcome = _decode(claimed)
        self._local.publish(local, outcome)
        return outcome

    def _settle(self, ticket: Ticket) -> Outcome | Promoted:
        if ticket.leader:
            return Promoted(ticket)
        handle = ticket.handle
        if isinstance(handle, _Ready):
            return handle.outcome
        assert isinstance(handle, _Far)
        return self._follow(handle)

    async def _asettle(self, ticket: Ticket) -> Outcome | Promoted:
        if ticket.leader:
            return Promoted(ticket)
        handle = ticket.handle
        if isinstance(handle, _Ready):
            return handle.outcome
        assert isinstance(handle, _Far)
        return await self._afollow(handle)

    def _follow(self, far: _Far) -> Outcome | Promoted:
        """Ask Redis again until the followed leader's outcome is there."""
        token = _token()
        poll = _Poll(far.holder, far.ttl, self.wait)
        try:
            while (pause := poll.next()) is not None:
                time.sleep(pause)
                claimed = self._store.claim(
                    far.local.key, token, self._ttl_ms, self._window_ms, poll.holder
                )
                self._reach.answered()
                if not isinstance(claimed, Wait):
                    return self._resolve(far.local, token, claimed, on_loop=False)
                poll.saw(claimed)
        except BackendError as exc:
            self._reach.failed(exc)
        except BaseException:
            self._local.publish(far.local, Abandoned("the leader stopped waiting"))
            raise
        finally:
            with self._lock:
                self._following -= 1
        return Promoted(self._alone(far.local, on_loop=False))

    async def _afollow(self, far: _Far) -> Outcome | Promoted:
        """Async twin of `_follow`."""
        token = _token()
        poll = _Poll(far.holder, far.ttl, self.wait)
        try:
            while (pause := poll.next()) is not None:
                await asyncio.sleep(pause)
                claimed = await self._store.aclaim(
                    far.local.key, token, self._ttl_ms, self._window_ms, poll.holder
                )
                self._reach.answered()
                if not isinstance(claimed, Wait):
                    return self._resolve(far.local, token, claimed, on_loop=True)
                poll.saw(claimed)
        except BackendError as exc:
            self._reach.failed(exc)
        except BaseException:
            self._local.publish(far.local, Abandoned("the leader stopped waiting"))
            raise
        finally:
            with self._lock:
                self._following -= 1
        return Promoted(self._alone(far.local, on_loop=True))

    def _release(self, key: str, token: str, on_loop: bool, outcome: Outcome) -> None:
        """Store ``outcome`` in Redis, or drop the claim for `Abandoned`."""
        encoded = _encode(outcome)
        if on_loop and self._store.blocking:
            # On the loop's executor, so the loop is not blocked. asyncio.run
            # waits for its executor before returning, whereas a task may be
            # cancelled unstarted as its loop ends, and followers elsewhere
            # would then wait for the claim to run out.
            try:
                loop = asyncio.get_running_loop()
                loop.run_in_executor(None, self._put, key, token, encoded)
            except RuntimeError:  # no loop runs, or its executor is shut
                pass
            else:
                return
        elif on_loop:
            self._store.spawn(self._aput(key, token, encoded))
            return
        self._put(key, token, encoded)

    def _put(
        self, key: str, token: str, encoded: tuple[str, bytes, bytes] | None
    ) -> None:
        try:
            if encoded is None:
                self._store.drop(key, token, alone=False)
            else:
                self._store.publish(key, token, self._keep_ms, encoded)
        except BackendError as exc:
            self._reach.failed(exc)

    async def _aput(
        self, key: str, token: str, encoded: tuple[str, bytes, bytes] | None
    ) -> None:
        try:
            if encoded is None:
                await self._store.adrop(key, token, alone=False)
            else:
                await self._store.apublish(key, token, self._keep_ms, encoded)
        except BackendError as exc:
            self._reach.failed(exc)

    def _alone(self, local: Ticket, *, on_loop: bool) -> Ticket:
        """Lead for this process only, without a claim in Redis."""
        return Ticket(local.key, True, _Lead(local, None, on_loop))

    def _usable(self, available: bool, kind: str) -> bool:
        if not available:
            self._reach.lacks(kind)
            return False
        return self._reach.usable()


class _Poll:
    """When a follower asks Redis again, and whom it follows.

    The pause doubles from 2 ms to 50 ms, with jitter so followers do not
    ask in step, and ends no later than the claim runs out. A leader is
    followed for ``wait`` seconds at most: its claim runs out by then, and
    the bound holds even for a claim that lasts longer.
    """

    def __init__(self, holder: str, ttl: float, wait: float) -> None:
        self.holder = holder
        self.ttl = ttl
        self._wait = wait
        self._ceiling = _FIRST_PAUSE
        self._deadline = time.monotonic() + wait

    def next(self) -> float | None:
        """Return the pause before asking again; ``None`` to stop following."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            logger.debug("waited %gs for another process's leader", self._wait)
            return None
        pause = random.uniform(self._ceiling / 2, self._ceiling)
        self._ceiling = min(2 * self._ceiling, _LAST_PAUSE)
        return min(pause, left, max(self.ttl, 0.001))

    def saw(self, claimed: Wait) -> None:
        """Note Redis's answer: the claim's time left, and its holder."""
        self.ttl = claimed.ttl
        if claimed.holder != self.holder:
            # Another caller took the claim over: follow it afresh.
            self.holder = claimed.holder
            self._ceiling = _FIRST_PAUSE
            self._deadline = time.monotonic() + self._wait


class _Reach(Reach):
    """Whether Redis answers for Dedupe, and which clients it lacks."""

    def __init__(self, retry_interval: float) -> None:
        super().__init__(
            retry_interval,
            logger,
            gone="Dedupe merges requests within each process only",
            back="Dedupe merges requests across processes again",
            back_level=logging.INFO,
        )
        self._lacking: set[str] = set()
        self._missing = threading.Lock()

    def failed(self, exc: BaseException) -> None:
        """Record a failed call, naming the Redis error behind it."""
        super().failed(exc.__cause__ or exc)

    def lacks(self, kind: str) -> None:
        """Warn, once per kind, that the backend has no such client."""
        with self._missing:
            if kind in self._lacking:
                return
            self._lacking.add(kind)
        logger.warning(
            "the RedisBackend has no %s client; Dedupe merges %s requests "
            "within this process only",
            kind,
            kind,
        )


def _lead(ticket: Ticket) -> _Lead:
    handle = ticket.handle
    if not (ticket.leader and isinstance(handle, _Lead)):
        raise TypeError(f"not a leader's ticket of this registry: {ticket!r}")
    return handle


def _token() -> str:
    # Tells claims apart, never a secret; the random module reseeds itself
    # in forked children, so processes do not draw the same tokens.
    return str(random.getrandbits(63))


def _finite(name: str, value: float | timedelta) -> float:
    bound = seconds(name, value)
    assert bound is not None
    if math.isinf(bound):
        raise ValueError(f"{name} must be finite seconds, got {value!r}")
    return bound


# Outcomes as Redis holds them: a kind, a JSON description, a body.


def _encode(outcome: Outcome) -> tuple[str, bytes, bytes] | None:
    """Return ``outcome`` as kind, description and body; ``None`` for
    `Abandoned`, which is not stored."""
    if isinstance(outcome, Shared):
        meta: dict[str, Any] = {
            "status": outcome.status,
            "headers": [[_text(k), _text(v)] for k, v in outcome.headers],
            "extensions": _extensions(outcome.extensions),
            "vary": [[name, list(values)] for name, values in outcome.vary],
        }
        return _SHARED, _json(meta), outcome.body
    if isinstance(outcome, Failed):
        return _FAILED, _json(_error(outcome)), b""
    if isinstance(outcome, Declined):
        return _DECLINED, _json({"reason": outcome.reason}), b""
    return None


def _decode(done: Done) -> Outcome:
    """Rebuild an outcome; one this process cannot read is `Declined`."""
    try:
        meta = json.loads(done.meta)
        if done.kind == _SHARED:
            return Shared(
                status=int(meta["status"]),
                headers=tuple((_raw(k), _raw(v)) for k, v in meta["headers"]),
                body=done.body,
                extensions=tuple(_unpack_extension(e) for e in meta["extensions"]),
                vary=tuple((str(n), tuple(map(str, v))) for n, v in meta["vary"]),
            )
        if done.kind == _FAILED:
            return Failed(_rebuild(meta), meta.get("timeout"))
        if done.kind == _DECLINED:
            return Declined(str(meta["reason"]))
    except (ValueError, KeyError, TypeError, IndexError):
        pass
    return Declined("the result from another process is unreadable")


def _json(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _text(value: bytes) -> str:
    # Raw header bytes map one to one onto latin-1 text, and back.
    return value.decode("latin-1")


def _raw(value: str) -> bytes:
    return value.encode("latin-1")


def _extensions(extensions: tuple[tuple[str, Any], ...]) -> list[list[str]]:
    packed = []
    for name, value in extensions:
        if isinstance(value, bytes):
            packed.append([name, "b", _text(value)])
        elif isinstance(value, str):
            packed.append([name, "s", value])
    return packed


def _unpack_extension(item: list[str]) -> tuple[str, Any]:
    name, kind, value = item
    return str(name), _raw(value) if kind == "b" else str(value)


def _error(outcome: Failed) -> dict[str, Any]:
    error = outcome.error
    timeout = outcome.timeout
    try:
        json.dumps(timeout)
    except (TypeError, ValueError):
        timeout = None  # then every joined caller's timeouts differ: it resends
    return {
        "type": _name(type(error)),
        "bases": [_name(cls) for cls in type(error).__mro__ if _name(cls) in _ERRORS],
        "message": str(error),
        "timeout": timeout,
    }


def _rebuild(meta: dict[str, Any]) -> Exception:
    """Rebuild an error from another process as the nearest known type.

    The exact type when this process knows it (the httpx errors, the
    builtin ones, throttlekit's); else its nearest known base, the message
    then prefixed with the original type's name.
    """
    original = str(meta["type"])
    message = str(meta["message"])
    for name in meta["bases"]:
        cls = _ERRORS.get(str(name))
        if cls is None:
            continue
        text = message if name == original else f"{original}: {message}"
        try:
            return cls(text)
        except Exception:
            continue  # a constructor that wants other arguments
    return httpx.TransportError(f"{original}: {message}")


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _known_errors() -> dict[str, type[Exception]]:
    candidates = [
        *vars(builtins).values(),
        *vars(httpx).values(),
        BackendError,
        ThrottlekitError,
    ]
    return {
        _name(value): value
        for value in candidates
        if isinstance(value, type) and issubclass(value, Exception)
    }


_ERRORS = _known_errors()
