"""`Dedupe(shared=...)`: identical requests merged across processes through a
real Redis.

Each `Dedupe` here has its own `RedisBackend` and registry, so two of them in
one test meet only in Redis, as two processes would. The test for real
processes is tests/integration/test_dedupe_fleet.py.

Run as a script, this module is a process that leads a request and never
finishes it, to be killed by `test_dead_leader_is_taken_over`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio

import throttlekit as tk
from throttlekit.backends.redis import RedisBackend
from throttlekit.policies._redis_registry import RedisRegistry
from throttlekit.policies.dedupe import (
    DEDUPLICATED,
    Abandoned,
    Declined,
    Dedupe,
    DedupeStatistics,
    Failed,
    MemoryRegistry,
    Promoted,
    Shared,
)

URL = "https://api.example.test/v1/organizations/1/devices"
MakeBackend = Callable[..., RedisBackend]


class VendorError(ValueError):
    """An error type that only the process raising it knows."""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def namespace() -> str:
    return f"dd{uuid.uuid4().hex[:12]}"


@pytest.fixture
def backends(redis_url: str, namespace: str) -> Iterator[MakeBackend]:
    """Make backends on the session's Redis in this test's namespace."""
    made: list[RedisBackend] = []

    def make(**options: Any) -> RedisBackend:
        backend = RedisBackend.from_url(redis_url, namespace=namespace, **options)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def eventually(check: Callable[[], bool]) -> None:
    """Wait until ``check()`` holds; the bound only keeps a broken test from
    hanging."""
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.002)


async def until(check: Callable[[], bool]) -> None:
    """The asyncio twin of `eventually`."""
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.002)


def now(policy: Dedupe) -> tuple[int, int]:
    """Return the requests ``policy`` leads now and its callers waiting."""
    stats = policy.statistics()
    return stats.in_flight, stats.waiting


def following(policy: Dedupe, callers: int = 1) -> Callable[[], bool]:
    """Return a check that ``callers`` of ``policy`` wait and none leads."""
    return lambda: now(policy) == (0, callers)


def stored(raw: redis.Redis, namespace: str, kind: str) -> dict[bytes, bytes]:
    """Return the one claim (``"dc"``) or result (``"dr"``) hash stored."""
    keys = list(raw.scan_iter(f"{namespace}:*:{kind}"))
    assert len(keys) == 1, keys
    return raw.hgetall(keys[0])  # type: ignore[return-value]


class Upstream:
    """A scripted upstream for blocking callers: each request waits for
    `release`, then is answered by ``answer(request, number)``."""

    def __init__(
        self, answer: Callable[[httpx.Request, int], httpx.Response] | None = None
    ) -> None:
        self.answer = answer or ok
        self.requests: list[httpx.Request] = []
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
        assert self.release.wait(30)
        return self.answer(request, number)


class AsyncUpstream:
    """The asyncio twin of `Upstream`."""

    def __init__(
        self, answer: Callable[[httpx.Request, int], httpx.Response] | None = None
    ) -> None:
        self.answer = answer or ok
        self.requests: list[httpx.Request] = []
        self.release = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        number = len(self.requests)
        await self.release.wait()
        return self.answer(request, number)


def ok(request: httpx.Request, number: int) -> httpx.Response:
    return httpx.Response(200, headers={"X-Upstream": str(number)}, content=b"devices")


def client(policy: Dedupe, upstream: Callable[..., Any]) -> httpx.Client:
    inner = httpx.MockTransport(upstream)
    return httpx.Client(transport=tk.ThrottledTransport(policy, transport=inner))


def aclient(policy: Dedupe, upstream: Callable[..., Any]) -> httpx.AsyncClient:
    inner = httpx.MockTransport(upstream)
    return httpx.AsyncClient(
        transport=tk.AsyncThrottledTransport(policy, transport=inner)
    )


def start(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` on a new thread; the list receives its result or error."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:
            box.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def finish(*started: tuple[threading.Thread, list[Any]]) -> list[Any]:
    for thread, _ in started:
        thread.join(30)
    return [box[0] for _, box in started]


def test_two_processes_send_one_request(backends: MakeBackend) -> None:
    """A request led in one process answers the identical one in another."""
    here, there = Dedupe(shared=backends()), Dedupe(shared=backends())
    upstream = Upstream()

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        leader = start(lambda: mine.get(URL))
        eventually(lambda: len(upstream.requests) == 1)
        follower = start(lambda: theirs.get(URL))
        eventually(following(there))
        upstream.release.set()
        first, copy = finish(leader, follower)

    assert len(upstream.requests) == 1
    assert (first.text, copy.text) == ("devices", "devices")
    assert copy.headers["X-Upstream"] == "1"
    assert (first.extensions[DEDUPLICATED], copy.extensions[DEDUPLICATED]) == (
        False,
        True,
    )
    assert here.statistics() == DedupeStatistics(1, 0, 0, 0)
    assert there.statistics() == DedupeStatistics(0, 1, 0, 0)


@pytest.mark.anyio
async def test_tasks_in_two_processes_send_one_request(
    backends: MakeBackend,
) -> None:
    """Async callers in two processes share one request the same way."""
    here, there = Dedupe(shared=backends()), Dedupe(shared=backends())
    upstream = AsyncUpstream()

    async with aclient(here, upstream) as mine, aclient(there, upstream) as theirs:
        leader = asyncio.create_task(mine.get(URL))
        await until(lambda: upstream.requests)
        follower = asyncio.create_task(theirs.get(URL))
        await until(following(there))
        upstream.release.set()
        first, copy = await asyncio.gather(leader, follower)

    assert len(upstream.requests) == 1
    assert [first.text, copy.text] == ["devices", "devices"]
    assert copy.extensions[DEDUPLICATED] is True
    assert there.statistics() == DedupeStatistics(0, 1, 0, 0)


def test_leader_whose_event_loop_ends_at_once_still_answers(
    backends: MakeBackend,
) -> None:
    """A leading task whose event loop ends right after its response, as
    with asyncio.run per call, still answers callers in other processes."""
    here = Dedupe(shared=backends())
    there = Dedupe(shared=backends(), wait=3600)
    entered, release = threading.Event(), threading.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        entered.set()
        await asyncio.to_thread(release.wait, 30)
        return ok(request, 1)

    async def lead() -> httpx.Response:
        async with aclient(here, answer) as mine:
            return await mine.get(URL)

    unused = Upstream()
    with client(there, unused) as theirs:
        leader = start(lambda: asyncio.run(lead()))
        eventually(entered.is_set)
        follower = start(lambda: theirs.get(URL))
        eventually(following(there))
        release.set()
        first, copy = finish(leader, follower)

    assert (first.text, copy.text) == ("devices", "devices")
    assert copy.extensions[DEDUPLICATED] is True
    assert unused.requests == []


def test_callers_of_one_process_ask_redis_once(
    backends: MakeBackend, raw: redis.Redis, namespace: str
) -> None:
    """Five callers in one process merge there first: Redis sees one joiner."""
    here, there = Dedupe(shared=backends()), Dedupe(shared=backends())
    upstream = Upstream()

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        leader = start(lambda: mine.get(URL))
        eventually(lambda: len(upstream.requests) == 1)
        followers = [start(lambda: theirs.get(URL)) for _ in range(5)]
        eventually(following(there, 5))
        joined = stored(raw, namespace, "dc")[b"j"]
        upstream.release.set()
        responses = finish(leader, *followers)

    assert joined == b"1"
    assert len(upstream.requests) == 1
    assert [r.text for r in responses] == ["devices"] * 6
    assert there.statistics() == DedupeStatistics(0, 5, 0, 0)


def test_window_hands_a_received_response_to_later_callers(
    backends: MakeBackend,
) -> None:
    """Within the window, a request after the response was received is
    answered from Redis without an upstream call."""
    here = Dedupe(shared=backends(), window=60)
    there = Dedupe(shared=backends(), window=60)
    upstream = Upstream()
    upstream.release.set()

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        mine.get(URL)
        later = theirs.get(URL)

    assert len(upstream.requests) == 1
    assert later.text == "devices"
    assert later.headers["X-Upstream"] == "1"
    assert later.extensions[DEDUPLICATED] is True


def test_response_past_its_window_is_not_reused(backends: MakeBackend) -> None:
    """A request arriving after the window sends its own request."""
    here = Dedupe(shared=backends(), window=0.05)
    there = Dedupe(shared=backends(), window=0.05)
    upstream = Upstream()
    upstream.release.set()

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        mine.get(URL)
        time.sleep(0.2)
        later = theirs.get(URL)

    assert len(upstream.requests) == 2
    assert later.headers["X-Upstream"] == "2"
    assert later.extensions[DEDUPLICATED] is False


def test_zero_window_merges_only_requests_in_flight(
    backends: MakeBackend, raw: redis.Redis, namespace: str
) -> None:
    """With window 0 a lone leader's body streams unread, its claim is
    dropped, and the next request is sent again."""
    here = Dedupe(shared=backends(), window=0)
    there = Dedupe(shared=backends(), window=0)
    reads: list[bytes] = []

    def body() -> Iterator[bytes]:
        for chunk in (b"dev", b"ices"):
            reads.append(chunk)
            yield chunk

    upstream = Upstream(lambda request, number: httpx.Response(200, content=body()))
    upstream.release.set()

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        with mine.stream("GET", URL) as first:
            assert reads == []
            assert list(raw.scan_iter(f"{namespace}:*")) == []
            assert first.read() == b"devices"
        later = theirs.get(URL)

    assert len(upstream.requests) == 2
    assert later.extensions[DEDUPLICATED] is False


def test_shared_response_crosses_intact(backends: MakeBackend) -> None:
    """Status, raw headers, binary body, extensions and varied values cross
    processes unchanged."""
    here, there = RedisRegistry(backends()), RedisRegistry(backends())
    key = uuid.uuid4().hex
    shared = Shared(
        status=203,
        headers=((b"Content-Type", b"application/octet-stream"), (b"X-Raw", b"\xe9")),
        body=bytes(range(256)),
        extensions=(("http_version", b"HTTP/1.1"), ("reason_phrase", b"Non-Auth")),
        vary=(("accept-language", ("de", "fr")),),
    )

    leader = here.claim(key)
    follower = there.claim(key)
    here.publish(leader, shared)

    assert (leader.leader, follower.leader) == (True, False)
    assert there.join(follower) == shared


@pytest.mark.parametrize(
    ("error", "kind", "message"),
    [
        (httpx.ConnectError("refused"), httpx.ConnectError, "refused"),
        (httpx.ReadTimeout("timed out"), httpx.ReadTimeout, "timed out"),
        (ValueError("bad"), ValueError, "bad"),
        (tk.BackendError("gone"), tk.BackendError, "gone"),
        (
            VendorError("odd"),
            ValueError,
            f"{VendorError.__module__}.VendorError: odd",
        ),
        (httpx.StreamClosed(), httpx.StreamError, "httpx.StreamClosed: Attempted"),
        (
            UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
            UnicodeError,
            "builtins.UnicodeDecodeError: 'utf-8' codec",
        ),
    ],
    ids=[
        "connect",
        "timeout",
        "builtin",
        "throttlekit",
        "subclass",
        "httpx-subclass",
        "other-arguments",
    ],
)
def test_error_is_rebuilt_in_the_other_process(
    backends: MakeBackend, error: Exception, kind: type[Exception], message: str
) -> None:
    """An error crosses as its type, or its nearest known base, with its
    message."""
    here, there = RedisRegistry(backends()), RedisRegistry(backends())
    key = uuid.uuid4().hex

    leader = here.claim(key)
    follower = there.claim(key)
    here.publish(leader, Failed(error, {"read": 1.5, "connect": None}))
    outcome = there.join(follower)

    assert isinstance(outcome, Failed)
    assert type(outcome.error) is kind
    assert str(outcome.error).startswith(message)
    assert outcome.timeout == {"read": 1.5, "connect": None}


def test_leader_error_reaches_the_other_process(backends: MakeBackend) -> None:
    """An upstream error fails the caller in the other process with the same
    type and message and its own request."""
    here, there = Dedupe(shared=backends()), Dedupe(shared=backends())

    def refuse(request: httpx.Request, number: int) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    upstream = Upstream(refuse)

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        leader = start(lambda: mine.get(URL, headers={"X-Caller": "here"}))
        eventually(lambda: len(upstream.requests) == 1)
        follower = start(lambda: theirs.get(URL, headers={"X-Caller": "there"}))
        eventually(following(there))
        upstream.release.set()
        errors = finish(leader, follower)

    assert [type(e) for e in errors] == [httpx.ConnectError] * 2
    assert [str(e) for e in errors] == ["connection refused"] * 2
    assert errors[1].request.headers["X-Caller"] == "there"
    assert len(upstream.requests) == 1
    assert there.statistics() == DedupeStatistics(0, 1, 0, 0)


def test_leader_timeout_is_resent_by_callers_with_other_timeouts(
    backends: MakeBackend,
) -> None:
    """A timeout fails callers elsewhere with the same timeouts; a caller
    with other timeouts sends again."""
    policies = [Dedupe(shared=backends()) for _ in range(3)]
    # The second request's response, shared within the window, would also
    # do for the caller with the same timeouts if it came first.
    timed_out = threading.Event()

    def time_out_first(request: httpx.Request, number: int) -> httpx.Response:
        if number == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        assert timed_out.wait(30)
        return ok(request, number)

    upstream = Upstream(time_out_first)
    clients = [client(policy, upstream) for policy in policies]

    leader = start(lambda: clients[0].get(URL, timeout=1.0))
    eventually(lambda: len(upstream.requests) == 1)
    same = start(lambda: clients[1].get(URL, timeout=1.0))
    longer = start(lambda: clients[2].get(URL, timeout=9.0))
    eventually(lambda: following(policies[1])() and following(policies[2])())
    upstream.release.set()
    first, alike = finish(leader, same)
    timed_out.set()
    (resent,) = finish(longer)
    for each in clients:
        each.close()

    assert [type(first), type(alike)] == [httpx.ReadTimeout] * 2
    assert resent.headers["X-Upstream"] == "2"
    assert len(upstream.requests) == 2


def test_withdraw_only_when_nobody_joined(backends: MakeBackend) -> None:
    """With window 0 a leader withdraws while alone, not once a caller in
    another process joined."""
    here = RedisRegistry(backends(), window=0)
    there = RedisRegistry(backends(), window=0)
    alone, joined = uuid.uuid4().hex, uuid.uuid4().hex

    first = here.claim(alone)
    withdrew_alone = here.withdraw(first)
    second = here.claim(joined)
    follower = there.claim(joined)
    withdrew_joined = here.withdraw(second)
    here.publish(second, Declined("sets a cookie"))

    assert (withdrew_alone, withdrew_joined) == (True, False)
    assert there.join(follower) == Declined("sets a cookie")
    assert here.pending() == there.pending() == (0, 0)


def test_window_keeps_a_lone_leaders_response(backends: MakeBackend) -> None:
    """With a window a leader never withdraws: its response is kept."""
    registry = RedisRegistry(backends(), window=1)

    ticket = registry.claim(uuid.uuid4().hex)

    assert registry.withdraw(ticket) is False
    registry.publish(ticket, Declined("done"))


def test_claim_that_runs_out_is_taken_over(backends: MakeBackend) -> None:
    """A follower whose leader's claim ran out without a result leads."""
    here = RedisRegistry(backends(), wait=0.05)
    there = RedisRegistry(backends())
    key = uuid.uuid4().hex

    stuck = here.claim(key)
    follower = there.claim(key)
    outcome = there.join(follower)

    assert stuck.leader
    assert isinstance(outcome, Promoted)
    assert outcome.ticket.leader
    there.publish(outcome.ticket, Declined("done"))


def test_abandoned_claim_is_taken_over_at_once(backends: MakeBackend) -> None:
    """A leader that gives up drops its claim; a follower leads next."""
    here = RedisRegistry(backends(), wait=3600)
    there = RedisRegistry(backends(), wait=3600)
    key = uuid.uuid4().hex

    leader = here.claim(key)
    follower = there.claim(key)
    here.publish(leader, Abandoned("the leader was cancelled"))
    outcome = there.join(follower)

    assert isinstance(outcome, Promoted)
    assert outcome.ticket.leader
    there.publish(outcome.ticket, Declined("done"))


@pytest.mark.anyio
async def test_cancelled_leader_is_taken_over_in_another_process(
    backends: MakeBackend,
) -> None:
    """Cancelling the leading task hands the request to the other process
    at once, not when the claim runs out."""
    here = Dedupe(shared=backends(), wait=3600)
    there = Dedupe(shared=backends(), wait=3600)
    upstream = AsyncUpstream()

    async with aclient(here, upstream) as mine, aclient(there, upstream) as theirs:
        leader = asyncio.create_task(mine.get(URL))
        await until(lambda: upstream.requests)
        follower = asyncio.create_task(theirs.get(URL))
        await until(following(there))
        leader.cancel()
        await until(lambda: len(upstream.requests) == 2)
        upstream.release.set()
        response = await asyncio.wait_for(follower, 30)

    assert response.headers["X-Upstream"] == "2"
    assert response.extensions[DEDUPLICATED] is False
    assert there.statistics() == DedupeStatistics(1, 0, 0, 0)


@pytest.mark.anyio
async def test_cancelled_follower_hands_over_within_its_process(
    backends: MakeBackend,
) -> None:
    """When a process's task following another process is cancelled, the
    next task of its process follows instead."""
    here, there = Dedupe(shared=backends()), Dedupe(shared=backends())
    upstream = AsyncUpstream()

    async with aclient(here, upstream) as mine, aclient(there, upstream) as theirs:
        leader = asyncio.create_task(mine.get(URL))
        await until(lambda: upstream.requests)
        quitter = asyncio.create_task(theirs.get(URL))
        await until(following(there))
        stayer = asyncio.create_task(theirs.get(URL))
        await until(following(there, 2))
        quitter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await quitter
        await until(following(there))
        upstream.release.set()
        _, copy = await asyncio.gather(leader, stayer)

    assert len(upstream.requests) == 1
    assert copy.text == "devices"
    assert copy.extensions[DEDUPLICATED] is True
    assert there.statistics() == DedupeStatistics(0, 1, 0, 0)


def test_dead_leader_is_taken_over(
    redis_url: str, namespace: str, raw: redis.Redis
) -> None:
    """When the leading process is killed, a caller in another process sends
    the request once the dead leader's claim runs out."""
    with subprocess.Popen(
        [sys.executable, __file__, redis_url, namespace],
        stdout=subprocess.PIPE,
        text=True,
    ) as dead:
        try:
            assert dead.stdout is not None
            assert dead.stdout.readline().strip() == "leading"
        finally:
            dead.kill()
    claims = list(raw.scan_iter(f"{namespace}:*:dc"))

    backend = RedisBackend.from_url(redis_url, namespace=namespace)
    there = Dedupe(shared=backend)
    upstream = Upstream()
    upstream.release.set()
    with client(there, upstream) as theirs:
        response = theirs.get(URL)
    backend.close()

    assert len(claims) == 1
    assert response.text == "devices"
    assert response.extensions[DEDUPLICATED] is False
    assert there.statistics() == DedupeStatistics(1, 0, 0, 0)


def test_oversized_body_is_never_stored(
    backends: MakeBackend, raw: redis.Redis, namespace: str
) -> None:
    """A body over max_body is not stored; callers elsewhere send their own."""
    here = Dedupe(shared=backends(), max_body=5)
    there = Dedupe(shared=backends(), max_body=5)

    def streamed(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(200, content=iter([b"devi", b"ces"]))

    upstream = Upstream(streamed)

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        leader = start(lambda: mine.get(URL))
        eventually(lambda: len(upstream.requests) == 1)
        follower = start(lambda: theirs.get(URL))
        eventually(following(there))
        upstream.release.set()
        responses = finish(leader, follower)
        result = stored(raw, namespace, "dr")

    assert [r.text for r in responses] == ["devices"] * 2
    assert len(upstream.requests) == 2
    assert (result[b"k"], result[b"b"]) == (b"d", b"")


def test_credentials_are_never_shared_nor_stored(
    backends: MakeBackend, raw: redis.Redis, namespace: str
) -> None:
    """Processes with different Authorization send one request each, and no
    credential appears in Redis."""
    here = Dedupe(shared=backends(), window=60)
    there = Dedupe(shared=backends(), window=60)
    upstream = Upstream()
    upstream.release.set()
    secrets = ("Bearer alpha-secret", "Bearer omega-secret")

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        mine.get(URL, headers={"Authorization": secrets[0]})
        other = theirs.get(URL, headers={"Authorization": secrets[1]})
        again = theirs.get(URL, headers={"Authorization": secrets[0]})
        dump = b"".join(
            key + b"".join(k + v for k, v in raw.hgetall(key).items())
            for key in raw.scan_iter(f"{namespace}:*")
        )

    assert sorted(r.headers["Authorization"] for r in upstream.requests) == list(
        secrets
    )
    assert other.extensions[DEDUPLICATED] is False
    assert again.extensions[DEDUPLICATED] is True
    assert b"secret" not in dump


def test_redis_down_falls_back_to_each_process(
    spawn_redis: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis stopped, requests succeed and still merge within a process,
    each process warning once; merging across processes resumes when Redis
    is back."""
    server = spawn_redis()
    made = [RedisBackend.from_url(server.url, retry_interval=0) for _ in range(2)]
    here, there = (Dedupe(shared=backend) for backend in made)
    upstream = Upstream()
    caplog.set_level(logging.INFO, logger="throttlekit.dedupe")

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        server.stop()
        leader = start(lambda: mine.get(URL))
        eventually(lambda: len(upstream.requests) == 1)
        local = start(lambda: mine.get(URL))
        eventually(lambda: now(here) == (1, 1))
        alone = start(lambda: theirs.get(URL))
        eventually(lambda: len(upstream.requests) == 2)
        upstream.release.set()
        down = finish(leader, local, alone)

        server.start()
        upstream.release.clear()
        leader = start(lambda: mine.get(URL))
        eventually(lambda: len(upstream.requests) == 3)
        follower = start(lambda: theirs.get(URL))
        eventually(following(there))
        upstream.release.set()
        back = finish(leader, follower)
    for backend in made:
        backend.close()

    assert [r.text for r in down + back] == ["devices"] * 5
    assert [r.extensions[DEDUPLICATED] for r in down] == [False, True, False]
    assert back[1].extensions[DEDUPLICATED] is True
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per process
    assert all("within each process only" in w for w in warnings)


def test_hung_redis_never_hangs_a_request(spawn_redis: Callable[[], Any]) -> None:
    """A Redis that stops answering costs a request the client's timeout,
    then it is sent directly."""
    server = spawn_redis()
    backend = RedisBackend.from_url(server.url, timeout=0.1)
    policy = Dedupe(shared=backend)
    upstream = Upstream()
    upstream.release.set()

    server.pause()
    try:
        with client(policy, upstream) as mine:
            response = mine.get(URL)
    finally:
        server.resume()
        backend.close()

    assert response.text == "devices"
    assert policy.statistics() == DedupeStatistics(1, 0, 0, 0)


def test_backend_without_a_sync_client_merges_blocking_callers_locally(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Blocking callers of a backend with only async clients merge within
    their process, and one WARNING says so."""
    backend = RedisBackend(async_client=lambda: redis.asyncio.Redis.from_url(redis_url))
    policy = Dedupe(shared=backend)
    upstream = Upstream()
    upstream.release.set()

    caplog.set_level(logging.WARNING, logger="throttlekit.dedupe")
    with client(policy, upstream) as mine:
        responses = [mine.get(URL), mine.get(URL)]

    assert [r.text for r in responses] == ["devices"] * 2
    assert policy.statistics() == DedupeStatistics(2, 0, 0, 0)
    assert caplog.messages == [
        "the RedisBackend has no sync client; Dedupe merges sync requests "
        "within this process only"
    ]


def test_redis_cluster_merges_across_processes(redis_cluster_url: str) -> None:
    """On Redis Cluster, the claim and result of a request share one slot."""
    made = [
        RedisBackend.from_url(redis_cluster_url, cluster=True, namespace="dd")
        for _ in range(2)
    ]
    here, there = (Dedupe(shared=backend) for backend in made)
    upstream = Upstream()

    with client(here, upstream) as mine, client(there, upstream) as theirs:
        leader = start(lambda: mine.get(URL + "?cluster"))
        eventually(lambda: len(upstream.requests) == 1)
        follower = start(lambda: theirs.get(URL + "?cluster"))
        eventually(following(there))
        upstream.release.set()
        responses = finish(leader, follower)
    for backend in made:
        backend.close()

    assert [r.text for r in responses] == ["devices"] * 2
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"window": 1.0}, TypeError, "shared="),
        ({"wait": 1.0}, TypeError, "shared="),
        ({"shared": tk.MemoryBackend()}, TypeError, "shared must be"),
        ({"shared": "backend", "registry": MemoryRegistry()}, TypeError, "not both"),
        ({"shared": "backend", "window": -1}, ValueError, "window"),
        ({"shared": "backend", "window": math.inf}, ValueError, "window"),
        ({"shared": "backend", "wait": 0}, ValueError, "wait"),
        ({"shared": "backend", "wait": "1s"}, TypeError, "wait"),
    ],
    ids=[
        "window-alone",
        "wait-alone",
        "memory-backend",
        "registry-too",
        "window-negative",
        "window-infinite",
        "wait-zero",
        "wait-text",
    ],
)
def test_bad_shared_arguments_are_refused(
    backends: MakeBackend,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    """Invalid sharing arguments raise at construction, naming the parameter."""
    if kwargs.get("shared") == "backend":
        kwargs = {**kwargs, "shared": backends()}
    with pytest.raises(error, match=match):
        Dedupe(**kwargs)


def _lead_forever(redis_url: str, namespace: str) -> None:
    """Lead ``URL`` with a 1 s claim and never finish: the test kills this
    process while it holds the claim."""
    backend = RedisBackend.from_url(redis_url, namespace=namespace)
    policy = Dedupe(shared=backend, wait=1.0)

    def hang(request: httpx.Request) -> httpx.Response:
        print("leading", flush=True)
        threading.Event().wait()
        raise AssertionError("unreachable")

    with client(policy, hang) as forever:
        forever.get(URL)


if __name__ == "__main__":
    _lead_forever(sys.argv[1], sys.argv[2])
