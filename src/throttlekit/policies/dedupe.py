"""`Dedupe`: send concurrent identical requests upstream once.

How one request travels through the registry:

1. A caller computes its request's key (`throttlekit._core.dedupe`) and
   claims it. The first claimant *leads*: it sends the request on. Callers
   that claim the key while it is led *join*: they wait for the leader.
2. The leader gets its response. If the response must not be shared (it
   sets a cookie, says ``Vary: *`` or announces a body above ``max_body``),
   the leader publishes that, and every joined caller sends its own request.
3. If nobody has joined, the leader withdraws its claim and keeps the
   response exactly as it came, still streaming.
4. Otherwise the leader reads the raw body, at most ``max_body`` bytes, and
   publishes status, headers and body; each joined caller builds its own
   `httpx.Response` from them. A body that outgrows the cap goes to the
   leader whole (what was read, then the rest of the stream), and the joined
   callers send their own requests.
5. An error reaches every joined caller as an error of the same type.
6. A leader that stops without an answer of its own (cancelled, or refused
   by its own ``max_wait``) publishes that it gave up. The claim passes to
   the first joined caller still waiting, which sends the request again;
   the others go on waiting, now for it. A joined caller that stops waiting
   just leaves the line, or, if the claim had just passed to it, passes it
   on in turn.
7. A joined caller whose timeouts differ from the leader's does not inherit
   the leader's timeout error: it claims the key again and sends.

Publishing removes the key from the registry, so nothing stays behind once a
request completes, and a caller that arrives afterwards starts afresh.

``Dedupe(shared=backend)`` uses a registry that takes the same steps across
processes through Redis, after callers of one process merged among
themselves (`throttlekit.policies._redis_registry`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from .._core import dedupe as _core
from .._exceptions import RateLimited
from .._flow import Context, Flow, Send

if TYPE_CHECKING:
    from ..backends.redis import RedisBackend

__all__ = [
    "DEDUPLICATED",
    "Abandoned",
    "Declined",
    "Dedupe",
    "DedupeStatistics",
    "Failed",
    "MemoryRegistry",
    "Outcome",
    "Promoted",
    "Registry",
    "Shared",
    "Ticket",
]

logger = logging.getLogger("throttlekit.dedupe")

#: Response extension: ``True`` when the response is another call's, shared.
DEDUPLICATED = "throttlekit.deduplicated"

#: Default ``max_body``: 8 MiB.
DEFAULT_MAX_BODY = 8 * 1024 * 1024

# Transport extensions that describe the response itself and so may be
# copied; others (such as the network stream) belong to the leader alone.
_COPIED_EXTENSIONS = ("http_version", "reason_phrase")


@dataclass(frozen=True)
class DedupeStatistics:
    """A snapshot of what a `Dedupe` policy has done and holds.

    Attributes:
        upstream: Calls the policy sent on towards the upstream.
        joined: Calls answered with another call's response or error.
        in_flight: Requests being led now.
        waiting: Calls waiting for a leader now.
    """

    upstream: int
    joined: int
    in_flight: int
    waiting: int


@dataclass(frozen=True)
class Shared:
    """A response every joined caller may have.

    Attributes:
        status: The status code.
        headers: The raw headers, as the upstream sent them.
        body: The raw body, still content-encoded.
        extensions: Transport extensions describing the response.
        vary: The leader's values for the headers the response varies on.
    """

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    extensions: tuple[tuple[str, Any], ...]
    vary: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Failed:
    """The request failed; every joined caller fails the same way.

    Attributes:
        error: The leader's exception.
        timeout: The leader's ``"timeout"`` request extension.
    """

    error: Exception
    timeout: object = None


@dataclass(frozen=True)
class Declined:
    """The response is not shared; every joined caller sends its own."""

    reason: str


@dataclass(frozen=True)
class Abandoned:
    """The leader stopped without an answer; a joined caller takes over.

    A registry that can hand the claim on gives one joined caller
    `Promoted` and keeps the others waiting; one that cannot gives every
    joined caller `Abandoned`, and they claim the key again.
    """

    reason: str


Outcome = Shared | Failed | Declined | Abandoned


@dataclass(frozen=True)
class Ticket:
    """A caller's claim on a key.

    Attributes:
        key: The request's dedup key.
        leader: Whether the caller leads, rather than joins.
        handle: Registry-private data.
    """

    key: str
    leader: bool
    handle: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Promoted:
    """The leader stopped without an answer; the receiver leads now.

    Attributes:
        ticket: The receiver's claim, as leader.
    """

    ticket: Ticket


class Registry(Protocol):
    """Where callers find a request in flight that they can join.

    The seam for a registry shared between processes: `claim` is atomic
    (one leader per key at a time), `publish` ends the claim and hands the
    outcome to every caller that joined, and `join` waits for it. The
    async twins serve callers on an event loop; a ticket from `aclaim` is
    waited on with `ajoin`.
    """

    def claim(self, key: str) -> Ticket:
        """Lead the request on ``key`` if nobody does, else join it."""
        ...

    async def aclaim(self, key: str) -> Ticket:
        """Async twin of `claim`."""
        ...

    def withdraw(self, ticket: Ticket) -> bool:
        """End a leader's claim if nobody has joined; return whether it did."""
        ...

    async def awithdraw(self, ticket: Ticket) -> bool:
        """Async twin of `withdraw`."""
        ...

    def publish(self, ticket: Ticket, outcome: Outcome) -> None:
        """End a leader's claim and give ``outcome`` to the joined callers.

        Called from sync and async code alike, and from a ``finally`` block
        while the leader is torn down, so it must be quick and must not
        await; a second call is harmless.
        """
        ...

    def join(self, ticket: Ticket) -> Outcome | Promoted:
        """Wait, blocking, for the outcome of the request a caller joined."""
        ...

    async def ajoin(self, ticket: Ticket) -> Outcome | Promoted:
        """Async twin of `join`; a cancelled caller stops waiting, alone."""
        ...

    def pending(self) -> tuple[int, int]:
        """Return the requests led now and the callers waiting now."""
        ...


class Dedupe:
    """Send concurrent identical requests upstream once.

    When many workers ask for the same thing at the same moment (the same
    inventory page, the same token-scoped listing), the first request goes
    upstream and spends budget; the others wait for it and get a copy of
    its response. Each caller gets its own `httpx.Response` with the same
    status, headers and body, and ``"throttlekit.deduplicated"`` in its
    extensions says whether it was a copy.

    Requests are the same when method, full URL, body digest and the
    headers that carry identity agree: ``Authorization``,
    ``Proxy-Authorization``, ``Cookie``, ``X-API-Key``,
    ``X-Cisco-Meraki-API-Key``, ``Api-Key``, any header whose name contains
    ``auth``, ``token``, ``key``, ``secret``, ``session``, ``cookie``,
    ``credential``, ``signature`` or ``password``, the names given in
    ``identity_headers``, and the representation headers ``Accept``,
    ``Accept-Encoding``, ``Accept-Language``, ``Range`` and ``If-*``.
    Only requests in flight at the same time are merged: this is not a
    cache. With ``shared``, requests from other processes merge too, and a
    received response stays available to them for a short ``window``.

    Args:
        methods: The methods that may be merged, any case. Default: GET and
            HEAD. A request whose body is a stream not yet read is never
            merged.
        identity_headers: More header names that carry identity, any case,
            on top of the ones above. Default: none.
        max_body: Bytes of response body that may be shared; a larger
            response goes to its own caller only, and the others send their
            own requests. Default: 8 MiB. ``None``: no cap.
        registry: Where requests in flight are found. ``None`` (default): a
            new `MemoryRegistry` private to this policy; share the policy
            object between transports to merge their requests.
        shared: A `RedisBackend` through which processes merge identical
            requests too. Callers in one process merge among themselves
            first, so a process asks Redis once per request in flight.
            ``None`` (default): merge within this process only.
        window: With ``shared``: seconds a received response is handed to
            identical requests from any process that arrive after it;
            ``0`` merges only requests in flight. ``None`` (default): 1.
        wait: With ``shared``: seconds a leader's claim lasts, so the
            longest that callers in other processes wait for that leader;
            if it has not answered by then (it died, hung, or is that
            slow), one of them sends the request itself and the others
            wait for it. ``None`` (default): 10.

    Raises:
        TypeError: An argument has the wrong type; the message names it.
        ValueError: An argument is invalid; the message names it.

    Example:
        >>> import throttlekit as tk
        >>> transport = tk.ThrottledTransport(
        ...     tk.Dedupe(),
        ...     tk.RateLimit("10/second", key=tk.keys.path_param("organizations")),
        ... )

        Across processes, through Redis:

        >>> backend = tk.RedisBackend.from_url("redis://localhost:6379/0")
        >>> dedupe = tk.Dedupe(shared=backend, window=1.0, wait=10.0)

    Note:
        Not merged, each sent on its own: methods not in ``methods``;
        requests with an unread streaming body; responses that set a cookie,
        say ``Vary: *``, or carry a body above ``max_body``; responses that
        vary on a header whose value differs from the leader's. A joined
        call's time waiting for the leader is not counted in
        ``"throttlekit.waited"`` nor bounded by ``max_wait``. If the leader
        is cancelled, a joined call sends the request again. Merging is per
        process with the default registry.

        With ``shared``, a response is stored in Redis, body included (up
        to ``max_body``), for ``window`` seconds and one more; with a
        ``window`` above 0, a leader therefore reads its response's body
        before returning it even when nobody joined. Callers in other
        processes poll Redis while they wait (2 ms doubling to 50 ms). An
        error reaches them with its message, as the same httpx, builtin or
        throttlekit type, or for other types as the nearest such base. A leader slower
        than ``wait`` is taken over: the request is then sent twice. If
        Redis fails, each process merges on its own until it is back, with
        one WARNING; no request fails because of it.
    """

    def __init__(
        self,
        *,
        methods: Iterable[str] = ("GET", "HEAD"),
        identity_headers: Iterable[str] = (),
        max_body: int | None = DEFAULT_MAX_BODY,
        registry: Registry | None = None,
        shared: RedisBackend | None = None,
        window: float | timedelta | None = None,
        wait: float | timedelta | None = None,
    ) -> None:
        self.methods = frozenset(m.upper() for m in _names("methods", methods))
        if not self.methods:
            raise ValueError("methods must name at least one method, got none")
        self.identity_headers = frozenset(
            h.lower() for h in _names("identity_headers", identity_headers)
        )
        self.max_body = _max_body(max_body)
        self.registry: Registry = _registry(registry, shared, window, wait)

        self._lock = threading.Lock()
        self._upstream = 0
        self._joined = 0

    def __repr__(self) -> str:
        return f"Dedupe(methods={sorted(self.methods)!r})"

    def statistics(self) -> DedupeStatistics:
        """Return a snapshot of the calls sent, joined, in flight and waiting."""
        in_flight, waiting = self.registry.pending()
        with self._lock:
            return DedupeStatistics(self._upstream, self._joined, in_flight, waiting)

    def flow(self, call: Any, ctx: Context) -> Flow[Any]:
        """Lead the call's request, or join the identical one in flight."""
        key = self._key(call)
        if key is None:
            return (yield from self._send(call))

        ticket = yield _Claim(self.registry, key)
        while not ticket.leader:
            outcome = yield _Join(self.registry, ticket)
            if isinstance(outcome, Promoted):
                logger.debug("taking over %s: the leader stopped", _where(call))
                ticket = outcome.ticket
            elif _takes_over(call, outcome):
                logger.debug("sending %s again: %s", _where(call), _reason(outcome))
                ticket = yield _Claim(self.registry, key)
            else:
                return (yield from self._follow(call, outcome))
        return (yield from self._lead(call, ticket))

    def _key(self, call: Any) -> str | None:
        if not isinstance(call, httpx.Request) or call.method not in self.methods:
            return None
        try:
            body = call.content
        except httpx.RequestNotRead:
            return None
        return _core.request_key(
            call.method,
            str(call.url),
            body,
            call.headers.multi_items(),
            self.identity_headers,
        )

    def _lead(self, call: httpx.Request, ticket: Ticket) -> Flow[httpx.Response]:
        logger.debug("leading %s", _where(call))
        self._count(upstream=1)

        # Publish exactly once, whatever happens: joined callers wait for it.
        outcome: Outcome | None = Abandoned("the leader stopped")
        try:
            response: httpx.Response = yield Send(call)
            outcome = yield from self._settle(call, response, ticket)
        except BaseException as exc:
            outcome = _failure(call, exc)
            raise
        finally:
            if outcome is not None:
                self.registry.publish(ticket, outcome)

        response.extensions[DEDUPLICATED] = False
        return response

    def _settle(
        self, call: httpx.Request, response: httpx.Response, ticket: Ticket
    ) -> Flow[Outcome | None]:
        """Decide what joined callers get; ``None`` when nobody joined."""
        # A HEAD response announces the length of a body it does not carry.
        cap = None if call.method == "HEAD" else self.max_body
        reason = _core.refusal(response.headers.multi_items(), cap)
        if reason is not None:
            logger.debug("not sharing %s: %s", _where(call), reason)
            return Declined(reason)

        if (yield _Withdraw(self.registry, ticket)):
            return None

        body = yield _Buffer(response, self.max_body)
        if body is None:
            logger.debug("not sharing %s: body above max_body", _where(call))
            return Declined("body above max_body")
        return _shared(call, response, body)

    def _follow(self, call: httpx.Request, outcome: Outcome) -> Flow[httpx.Response]:
        if isinstance(outcome, Failed):
            self._count(joined=1)
            logger.debug("joined %s: failed", _where(call))
            error = _clone(outcome.error, call)
            if error is outcome.error:
                raise error
            raise error from outcome.error

        response = _copy(call, outcome) if isinstance(outcome, Shared) else None
        if response is not None:
            self._count(joined=1)
            logger.debug("joined %s", _where(call))
            return response

        logger.debug("sending %s alone: %s", _where(call), _reason(outcome))
        own: httpx.Response = yield from self._send(call)
        return own

    def _send(self, call: Any) -> Flow[Any]:
        self._count(upstream=1)
        result = yield Send(call)
        if isinstance(result, httpx.Response):
            result.extensions[DEDUPLICATED] = False
        return result

    def _count(self, *, upstream: int = 0, joined: int = 0) -> None:
        with self._lock:
            self._upstream += upstream
            self._joined += joined


class _Waiter:
    """One joined caller, blocking on an event or awaiting a future."""

    __slots__ = ("event", "future", "promoted")

    def __init__(
        self,
        event: threading.Event | None = None,
        future: asyncio.Future[None] | None = None,
    ) -> None:
        self.event = event
        self.future = future
        self.promoted = False

    def wake(self) -> bool:
        """Wake the caller; return False when it can no longer be woken."""
        if self.event is not None:
            self.event.set()
            return True
        assert self.future is not None
        try:
            self.future.get_loop().call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:  # its event loop is closed: nobody is there
            return False
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Entry:
    """One led request: who waits for it and, once published, its outcome."""

    __slots__ = ("key", "outcome", "thread", "waiters")

    def __init__(self, key: str) -> None:
        self.key = key
        self.thread = threading.get_ident()
        self.outcome: Outcome | None = None
        self.waiters: deque[_Waiter] = deque()


class MemoryRegistry:
    """The in-process registry, for threads and tasks on any event loop.

    One `threading.Lock` guards the table and is never held across a wait.
    Each joined caller registers its own waiter when it claims: a
    `threading.Event` for a blocking caller, a future of its own event loop
    for an async one, woken thread-safely. So a leader on one thread or loop
    can answer callers on others, and a leader that gives up hands its claim
    to exactly one of them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def claim(self, key: str) -> Ticket:
        """Lead the request on ``key`` if nobody does, else join it."""
        return self._claim(key, lambda: _Waiter(event=threading.Event()))

    async def aclaim(self, key: str) -> Ticket:
        """Async twin of `claim`; it never blocks the event loop."""
        loop = asyncio.get_running_loop()
        return self._claim(key, lambda: _Waiter(future=loop.create_future()))

    def withdraw(self, ticket: Ticket) -> bool:
        """End a leader's claim if nobody has joined; return whether it did."""
        entry, _ = _unpack(ticket)
        with self._lock:
            if entry.waiters:
                return False
            entry.outcome = Declined("withdrawn")
            self._remove(entry)
            return True

    async def awithdraw(self, ticket: Ticket) -> bool:
        """Async twin of `withdraw`."""
        return self.withdraw(ticket)

    def publish(self, ticket: Ticket, outcome: Outcome) -> None:
        """End a leader's claim and wake the joined callers; harmless twice.

        `Abandoned` is not handed out: the claim passes to the first joined
        caller that can still be woken, and the others keep waiting.
        """
        entry, _ = _unpack(ticket)
        with self._lock:
            if entry.outcome is not None:
                return
            if isinstance(outcome, Abandoned) and self._promote(entry):
                return
            self._finish(entry, outcome)

    def join(self, ticket: Ticket) -> Outcome | Promoted:
        """Block until the joined request's outcome is published."""
        entry, waiter = _unpack(ticket)
        assert waiter is not None
        assert waiter.event is not None
        if entry.thread == threading.get_ident():
            # The leader runs on this very thread (an event loop calling a
            # blocking client): waiting here would wait forever.
            self._leave(entry, waiter)
            return Declined("the leader runs on this thread")

        try:
            waiter.event.wait()
        except BaseException:
            self._leave(entry, waiter)
            raise
        return self._result(entry, waiter)

    async def ajoin(self, ticket: Ticket) -> Outcome | Promoted:
        """Await the joined request's outcome; a cancelled caller just leaves."""
        entry, waiter = _unpack(ticket)
        assert waiter is not None
        assert waiter.future is not None

        try:
            await waiter.future
        except BaseException:
            self._leave(entry, waiter)
            raise
        return self._result(entry, waiter)

    def pending(self) -> tuple[int, int]:
        """Return the requests led now and the callers waiting now."""
        with self._lock:
            entries = self._entries.values()
            return len(entries), sum(len(e.waiters) for e in entries)

    def _claim(self, key: str, waiter: Callable[[], _Waiter]) -> Ticket:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(key)
                return Ticket(key, True, (entry, None))
            joined = waiter()
            entry.waiters.append(joined)
            return Ticket(key, False, (entry, joined))

    def _result(self, entry: _Entry, waiter: _Waiter) -> Outcome | Promoted:
        with self._lock:
            if waiter.promoted:
                entry.thread = threading.get_ident()
                return Promoted(Ticket(entry.key, True, (entry, None)))
            assert entry.outcome is not None
            return entry.outcome

    def _leave(self, entry: _Entry, waiter: _Waiter) -> None:
        with self._lock:
            if waiter.promoted:
                # Made leader but gone: the claim passes on, or ends here.
                if not self._promote(entry):
                    self._finish(entry, Abandoned("every caller left"))
            elif waiter in entry.waiters:
                entry.waiters.remove(waiter)

    def _promote(self, entry: _Entry) -> bool:
        """Hand the claim to the next joined caller; False if none is left."""
        while entry.waiters:
            waiter = entry.waiters.popleft()
            waiter.promoted = True
            if waiter.wake():
                return True
        return False

    def _finish(self, entry: _Entry, outcome: Outcome) -> None:
        entry.outcome = outcome
        self._remove(entry)
        while entry.waiters:
            entry.waiters.popleft().wake()

    def _remove(self, entry: _Entry) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]


def _unpack(ticket: Ticket) -> tuple[_Entry, _Waiter | None]:
    handle = ticket.handle
    if not (isinstance(handle, tuple) and isinstance(handle[0], _Entry)):
        raise TypeError(f"not a ticket of this registry: {ticket!r}")
    return handle[0], handle[1]


@dataclass(frozen=True)
class _Claim:
    """Claim a key; the result is a `Ticket`."""

    registry: Registry
    key: str

    def run(self, ctx: Context) -> Ticket:
        return self.registry.claim(self.key)

    async def arun(self, ctx: Context) -> Ticket:
        return await self.registry.aclaim(self.key)


@dataclass(frozen=True)
class _Withdraw:
    """End an unjoined claim; the result says whether it was ended."""

    registry: Registry
    ticket: Ticket

    def run(self, ctx: Context) -> bool:
        return self.registry.withdraw(self.ticket)

    async def arun(self, ctx: Context) -> bool:
        return await self.registry.awithdraw(self.ticket)


@dataclass(frozen=True)
class _Join:
    """Wait for the leader; the result is an `Outcome` or `Promoted`."""

    registry: Registry
    ticket: Ticket

    def run(self, ctx: Context) -> Outcome | Promoted:
        return self.registry.join(self.ticket)

    async def arun(self, ctx: Context) -> Outcome | Promoted:
        return await self.registry.ajoin(self.ticket)


class _Buffer:
    """Read a response's raw body, up to ``limit`` bytes.

    The result is the body, which the response then replays; or ``None``
    when the body outgrew the limit, and the response then streams what was
    read followed by the rest.
    """

    def __init__(self, response: httpx.Response, limit: int | None) -> None:
        self.response = response
        self.limit = limit

    def run(self, ctx: Context) -> bytes | None:
        stream = self.response.stream
        assert isinstance(stream, httpx.SyncByteStream)
        chunks: list[bytes] = []
        size = 0
        rest = iter(stream)

        try:
            for chunk in rest:
                chunks.append(chunk)
                size += len(chunk)
                if self.limit is not None and size > self.limit:
                    self.response.stream = _SyncRest(chunks, rest, stream)
                    return None
        except BaseException:
            stream.close()
            raise
        stream.close()
        return self._keep(chunks)

    async def arun(self, ctx: Context) -> bytes | None:
        stream = self.response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        chunks: list[bytes] = []
        size = 0
        rest = stream.__aiter__()

        try:
            async for chunk in rest:
                chunks.append(chunk)
                size += len(chunk)
                if self.limit is not None and size > self.limit:
                    self.response.stream = _AsyncRest(chunks, rest, stream)
                    return None
        except BaseException:
            await stream.aclose()
            raise
        await stream.aclose()
        return self._keep(chunks)

    def _keep(self, chunks: list[bytes]) -> bytes:
        body = b"".join(chunks)
        self.response.stream = httpx.ByteStream(body)
        return body


class _SyncRest(httpx.SyncByteStream):
    def __init__(
        self, head: list[bytes], tail: Iterator[bytes], inner: httpx.SyncByteStream
    ) -> None:
        self._head = head
        self._tail = tail
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        yield from self._head
        yield from self._tail

    def close(self) -> None:
        self._inner.close()


class _AsyncRest(httpx.AsyncByteStream):
    def __init__(
        self,
        head: list[bytes],
        tail: AsyncIterator[bytes],
        inner: httpx.AsyncByteStream,
    ) -> None:
        self._head = head
        self._tail = tail
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._head:
            yield chunk
        async for chunk in self._tail:
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _shared(call: httpx.Request, response: httpx.Response, body: bytes) -> Shared:
    names = _core.vary_names(response.headers.multi_items())
    extensions = tuple(
        (name, response.extensions[name])
        for name in _COPIED_EXTENSIONS
        if name in response.extensions
    )
    return Shared(
        status=response.status_code,
        headers=tuple(response.headers.raw),
        body=body,
        extensions=extensions,
        vary=_core.selected(call.headers.multi_items(), names),
    )


def _copy(call: httpx.Request, shared: Shared) -> httpx.Response | None:
    """Return the caller's own copy of a shared response, or ``None`` when
    the response varies on a header whose value differs from the leader's."""
    names = [name for name, _ in shared.vary]
    if _core.selected(call.headers.multi_items(), names) != shared.vary:
        return None

    extensions = dict(shared.extensions)
    extensions[DEDUPLICATED] = True
    return httpx.Response(
        shared.status,
        headers=list(shared.headers),
        stream=httpx.ByteStream(shared.body),
        request=call,
        extensions=extensions,
    )


def _failure(call: httpx.Request, exc: BaseException) -> Outcome:
    # Cancellation and the leader's own max_wait say nothing about the
    # request itself: another caller may still get an answer.
    if not isinstance(exc, Exception):
        return Abandoned("the leader was cancelled")
    if isinstance(exc, RateLimited):
        return Abandoned("the leader would not wait")
    return Failed(exc, call.extensions.get("timeout"))


def _takes_over(call: httpx.Request, outcome: Outcome) -> bool:
    if isinstance(outcome, Abandoned):
        return True
    # A caller that allows other timeouts than the leader's might not have
    # timed out: it sends the request again rather than inherit the error.
    return (
        isinstance(outcome, Failed)
        and isinstance(outcome.error, httpx.TimeoutException)
        and call.extensions.get("timeout") != outcome.timeout
    )


def _clone(error: Exception, call: httpx.Request) -> Exception:
    """Return a copy of ``error`` for one joined caller.

    Each caller raises its own instance, so concurrent raises do not share
    one traceback; an exception that cannot be copied is shared as it is.
    """
    cls = type(error)
    try:
        clone = cls.__new__(cls, *error.args)
        clone.__dict__.update(error.__dict__)
    except Exception:
        return error
    if isinstance(clone, httpx.RequestError):
        clone.request = call
    return clone


def _reason(outcome: Outcome) -> str:
    if isinstance(outcome, (Declined, Abandoned)):
        return outcome.reason
    if isinstance(outcome, Failed):
        return f"the leader timed out ({type(outcome.error).__name__})"
    return "the response varies on a header that differs"


def _where(call: httpx.Request) -> str:
    # Method, host and path only: query strings may carry credentials.
    return f"{call.method} {call.url.host}{call.url.path}"


def _names(param: str, values: Iterable[str]) -> list[str]:
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{param} must be an iterable of strings, got {values!r}")
    names = list(values)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{param} must hold non-empty strings, got {name!r}")
    return names


def _registry(
    registry: Registry | None,
    shared: RedisBackend | None,
    window: float | timedelta | None,
    wait: float | timedelta | None,
) -> Registry:
    if shared is None:
        if window is not None or wait is not None:
            raise TypeError("window= and wait= apply only with shared=")
        return registry if registry is not None else MemoryRegistry()
    if registry is not None:
        raise TypeError("pass registry= or shared=, not both")

    # Imported here: it needs the redis extra, which a RedisBackend has.
    from ..backends.redis import RedisBackend
    from ._redis_registry import DEFAULT_WAIT, DEFAULT_WINDOW, RedisRegistry

    if not isinstance(shared, RedisBackend):
        raise TypeError(f"shared must be a RedisBackend, got {shared!r}")
    return RedisRegistry(
        shared,
        window=DEFAULT_WINDOW if window is None else window,
        wait=DEFAULT_WAIT if wait is None else wait,
    )


def _max_body(value: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_body must be an int or None, got {value!r}")
    if value < 0:
        raise ValueError(f"max_body must be >= 0 bytes, got {value!r}")
    return value
