"""Tests for the Dedupe policy, through real threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

import throttlekit as tk
from throttlekit.policies.dedupe import (
    DEDUPLICATED,
    Dedupe,
    DedupeStatistics,
    MemoryRegistry,
    Ticket,
)
from throttlekit.testing import FakeClock

URL = "https://api.example.test/v1/organizations/1/devices"
IDLE = (0, 0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Watched(MemoryRegistry):
    """A registry a test can wait on until callers have joined."""

    def __init__(self) -> None:
        super().__init__()
        self.joins = 0
        self._changed = threading.Condition()

    def claim(self, key: str) -> Ticket:
        return self._count(super().claim(key))

    async def aclaim(self, key: str) -> Ticket:
        return self._count(await super().aclaim(key))

    def _count(self, ticket: Ticket) -> Ticket:
        if not ticket.leader:
            with self._changed:
                self.joins += 1
                self._changed.notify_all()
        return ticket

    def wait_joins(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.joins >= count, timeout=30)


class Upstream:
    """A scripted upstream: every request waits for `release`, then is answered."""

    def __init__(self, answer: Callable[[httpx.Request, int], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []
        self.release = threading.Event()
        self._changed = threading.Condition()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._changed:
            self.requests.append(request)
            number = len(self.requests)
            self._changed.notify_all()
        assert self.release.wait(30)
        return self.answer(request, number)

    def wait_requests(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.requests) >= count, 30)


class AsyncUpstream:
    """The asyncio twin of `Upstream`, for callers on one event loop."""

    def __init__(self, answer: Callable[[httpx.Request, int], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        number = len(self.requests)
        self.entered.set()
        await self.release.wait()
        return self.answer(request, number)


def ok(request: httpx.Request, number: int) -> httpx.Response:
    return httpx.Response(200, headers={"X-Upstream": str(number)}, content=b"devices")


def sync_client(policy: Dedupe, handler: Callable[..., Any]) -> httpx.Client:
    transport = tk.ThrottledTransport(policy, transport=httpx.MockTransport(handler))
    return httpx.Client(transport=transport)


def async_client(policy: Dedupe, handler: Callable[..., Any]) -> httpx.AsyncClient:
    inner = httpx.MockTransport(handler)
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


def lead_then_join(
    upstream: Upstream,
    registry: Watched,
    leader: Callable[[], Any],
    joiners: list[Callable[[], Any]],
) -> tuple[Any, list[Any]]:
    """Start the leader, then the joiners once it is upstream; return results."""
    thread, box = start(leader)
    upstream.wait_requests(1)
    started = [start(call) for call in joiners]
    registry.wait_joins(len(joiners))

    upstream.release.set()
    thread.join()
    for other, _ in started:
        other.join()
    return box[0], [result[0] for _, result in started]


def test_hundred_threads_send_one_request() -> None:
    """100 threads asking for the same URL at once cause exactly one upstream call."""
    registry = Watched()
    policy = Dedupe(registry=registry)
    upstream = Upstream(ok)

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, lambda: client.get(URL), [lambda: client.get(URL)] * 99
        )

    responses = [first, *rest]
    assert len(upstream.requests) == 1
    assert [r.status_code for r in responses] == [200] * 100
    assert {r.content for r in responses} == {b"devices"}
    assert {r.headers["X-Upstream"] for r in responses} == {"1"}
    assert len({id(r) for r in responses}) == 100
    assert first.extensions[DEDUPLICATED] is False
    assert [r.extensions[DEDUPLICATED] for r in rest] == [True] * 99
    assert policy.statistics() == DedupeStatistics(1, 99, 0, 0)


@pytest.mark.anyio
async def test_hundred_tasks_send_one_request() -> None:
    """100 asyncio tasks asking for the same URL at once cause one upstream call."""
    registry = Watched()
    policy = Dedupe(registry=registry)
    upstream = AsyncUpstream(ok)

    async with async_client(policy, upstream) as client:
        leader = asyncio.create_task(client.get(URL))
        await upstream.entered.wait()
        joiners = [asyncio.create_task(client.get(URL)) for _ in range(99)]
        await asyncio.to_thread(registry.wait_joins, 99)
        upstream.release.set()
        responses = await asyncio.gather(leader, *joiners)

    assert len(upstream.requests) == 1
    assert [r.status_code for r in responses] == [200] * 100
    assert {r.content for r in responses} == {b"devices"}
    assert sum(r.extensions[DEDUPLICATED] for r in responses) == 99
    assert policy.statistics() == DedupeStatistics(1, 99, 0, 0)


def test_each_authorization_gets_its_own_request() -> None:
    """Callers with different Authorization values never share: one call per value."""
    registry = Watched()
    policy = Dedupe(registry=registry)

    def echo(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(200, content=request.headers["Authorization"].encode())

    upstream = Upstream(echo)
    tokens = [f"Bearer token-{i}" for i in range(5)] * 4

    with sync_client(policy, upstream) as client:
        started = [
            start(lambda t=t: client.get(URL, headers={"Authorization": t}))
            for t in tokens
        ]
        upstream.wait_requests(5)
        registry.wait_joins(15)
        upstream.release.set()
        for thread, _ in started:
            thread.join()

    sent = sorted(r.headers["Authorization"] for r in upstream.requests)
    assert sent == sorted(set(tokens))
    assert [box[0].text for _, box in started] == tokens
    assert policy.statistics() == DedupeStatistics(5, 15, 0, 0)


def test_leader_error_reaches_every_caller() -> None:
    """An upstream error reaches the leader and every joined caller as that error."""
    registry = Watched()
    policy = Dedupe(registry=registry)

    def refuse(request: httpx.Request, number: int) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    upstream = Upstream(refuse)

    def get(caller: int) -> Callable[[], httpx.Response]:
        return lambda: client.get(URL, headers={"X-Caller": str(caller)})

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, get(0), [get(i) for i in range(1, 100)]
        )

    errors = [first, *rest]
    assert len(upstream.requests) == 1
    assert all(isinstance(e, httpx.ConnectError) for e in errors)
    assert {str(e) for e in errors} == {"connection refused"}
    assert [e.request.headers["X-Caller"] for e in errors] == [
        str(i) for i in range(100)
    ]
    assert len({id(e) for e in errors}) == 100
    assert policy.statistics() == DedupeStatistics(1, 99, 0, 0)


@pytest.mark.anyio
async def test_leader_error_reaches_every_task() -> None:
    """An upstream error reaches every asyncio task that joined, as an error."""
    registry = Watched()
    policy = Dedupe(registry=registry)

    def refuse(request: httpx.Request, number: int) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    upstream = AsyncUpstream(refuse)

    async with async_client(policy, upstream) as client:
        leader = asyncio.create_task(client.get(URL))
        await upstream.entered.wait()
        joiners = [asyncio.create_task(client.get(URL)) for _ in range(9)]
        await asyncio.to_thread(registry.wait_joins, 9)
        upstream.release.set()
        results = await asyncio.gather(leader, *joiners, return_exceptions=True)

    assert len(upstream.requests) == 1
    assert [type(r) for r in results] == [httpx.ReadError] * 10
    assert policy.statistics() == DedupeStatistics(1, 9, 0, 0)


def test_error_while_reading_the_body_reaches_every_caller() -> None:
    """A body that breaks off while the leader reads it fails every caller."""
    registry = Watched()
    policy = Dedupe(registry=registry)

    def broken() -> Iterator[bytes]:
        yield b"dev"
        raise httpx.ReadError("connection reset")

    upstream = Upstream(lambda request, number: httpx.Response(200, content=broken()))

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, lambda: client.get(URL), [lambda: client.get(URL)] * 3
        )

    assert len(upstream.requests) == 1
    assert [type(r) for r in [first, *rest]] == [httpx.ReadError] * 4
    assert policy.statistics() == DedupeStatistics(1, 3, 0, 0)


@pytest.mark.anyio
async def test_cancelled_leader_is_taken_over() -> None:
    """When the leading task is cancelled, one joined task sends again; all complete."""
    registry = Watched()
    policy = Dedupe(registry=registry)
    upstream = AsyncUpstream(ok)

    async with async_client(policy, upstream) as client:
        leader = asyncio.create_task(client.get(URL))
        await upstream.entered.wait()
        joiners = [asyncio.create_task(client.get(URL)) for _ in range(9)]
        await asyncio.to_thread(registry.wait_joins, 9)

        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        upstream.release.set()
        responses = await asyncio.gather(*joiners)

    assert len(upstream.requests) == 2
    assert {r.headers["X-Upstream"] for r in responses} == {"2"}
    assert sorted(r.extensions[DEDUPLICATED] for r in responses) == [False] + [True] * 8
    assert policy.statistics() == DedupeStatistics(2, 8, 0, 0)


@pytest.mark.anyio
async def test_cancelled_joiner_affects_nobody() -> None:
    """A joined task that is cancelled stops waiting; the others get their answer."""
    registry = Watched()
    policy = Dedupe(registry=registry)
    upstream = AsyncUpstream(ok)

    async with async_client(policy, upstream) as client:
        leader = asyncio.create_task(client.get(URL))
        await upstream.entered.wait()
        quitter = asyncio.create_task(client.get(URL))
        stayer = asyncio.create_task(client.get(URL))
        await asyncio.to_thread(registry.wait_joins, 2)

        quitter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await quitter
        assert policy.statistics() == DedupeStatistics(1, 0, 1, 1)
        upstream.release.set()
        responses = await asyncio.gather(leader, stayer)

    assert len(upstream.requests) == 1
    assert [r.text for r in responses] == ["devices", "devices"]
    assert policy.statistics() == DedupeStatistics(1, 1, 0, 0)


@pytest.mark.anyio
async def test_claim_passes_on_when_its_new_holder_is_cancelled() -> None:
    """A joined task cancelled just as the claim passes to it hands it on."""
    registry = Watched()
    policy = Dedupe(registry=registry)
    upstream = AsyncUpstream(ok)

    async with async_client(policy, upstream) as client:
        leader = asyncio.create_task(client.get(URL))
        await upstream.entered.wait()
        heir = asyncio.create_task(client.get(URL))
        others = [asyncio.create_task(client.get(URL)) for _ in range(3)]
        await asyncio.to_thread(registry.wait_joins, 4)

        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        heir.cancel()
        with pytest.raises(asyncio.CancelledError):
            await heir
        upstream.release.set()
        responses = await asyncio.gather(*others)

    assert len(upstream.requests) == 2
    assert [r.headers["X-Upstream"] for r in responses] == ["2"] * 3
    assert policy.statistics() == DedupeStatistics(2, 2, 0, 0)


def test_leader_refused_by_its_own_bound_is_taken_over() -> None:
    """A leader refused by its own max_wait hands the request to a joined caller."""
    registry = Watched()
    policy = Dedupe(registry=registry)

    def refuse_first(request: httpx.Request, number: int) -> httpx.Response:
        if number == 1:
            raise tk.RateLimited("rate:10/1s~10|all", 3.0)
        return ok(request, number)

    upstream = Upstream(refuse_first)

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, lambda: client.get(URL), [lambda: client.get(URL)] * 4
        )

    assert isinstance(first, tk.RateLimited)
    assert len(upstream.requests) == 2
    assert [r.headers["X-Upstream"] for r in rest] == ["2"] * 4
    assert policy.statistics() == DedupeStatistics(2, 3, 0, 0)


def test_leader_timeout_is_taken_over_by_callers_with_other_timeouts() -> None:
    """A leader's timeout fails callers with its timeouts; others send again."""
    registry = Watched()
    policy = Dedupe(registry=registry)

    def time_out_first(request: httpx.Request, number: int) -> httpx.Response:
        if number == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return ok(request, number)

    upstream = Upstream(time_out_first)

    with sync_client(policy, upstream) as client:
        first, (same, longer) = lead_then_join(
            upstream,
            registry,
            lambda: client.get(URL, timeout=1.0),
            [
                lambda: client.get(URL, timeout=1.0),
                lambda: client.get(URL, timeout=9.0),
            ],
        )

    assert isinstance(first, httpx.ReadTimeout)
    assert isinstance(same, httpx.ReadTimeout)
    assert longer.status_code == 200
    assert len(upstream.requests) == 2
    assert policy.statistics() == DedupeStatistics(2, 1, 0, 0)


def test_response_setting_a_cookie_is_not_shared() -> None:
    """A response with Set-Cookie goes to its caller only; the others send their own."""
    registry = Watched()
    policy = Dedupe(registry=registry)

    def login(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(200, headers={"Set-Cookie": f"s={number}"})

    upstream = Upstream(login)

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, lambda: client.get(URL), [lambda: client.get(URL)] * 3
        )

    cookies = sorted(r.headers["Set-Cookie"] for r in [first, *rest])
    assert cookies == ["s=1", "s=2", "s=3", "s=4"]
    assert all(r.extensions[DEDUPLICATED] is False for r in [first, *rest])
    assert policy.statistics() == DedupeStatistics(4, 0, 0, 0)


def chunks(count: int) -> Iterator[bytes]:
    for i in range(count):
        yield bytes([65 + i]) * 10


async def achunks(count: int) -> AsyncIterator[bytes]:
    for chunk in chunks(count):
        yield chunk


def test_body_over_the_cap_goes_whole_to_the_leader_only() -> None:
    """A body outgrowing max_body reaches the leader intact; others send their own."""
    registry = Watched()
    policy = Dedupe(max_body=25, registry=registry)
    upstream = Upstream(lambda request, number: httpx.Response(200, content=chunks(10)))

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, lambda: client.get(URL), [lambda: client.get(URL)] * 2
        )

    expected = b"".join(chunks(10))
    assert [r.content for r in [first, *rest]] == [expected] * 3
    assert len(upstream.requests) == 3
    assert policy.statistics() == DedupeStatistics(3, 0, 0, 0)


@pytest.mark.anyio
async def test_body_over_the_cap_goes_whole_to_the_leading_task() -> None:
    """The async leader also keeps an oversized body intact while others send again."""
    registry = Watched()
    policy = Dedupe(max_body=25, registry=registry)
    upstream = AsyncUpstream(
        lambda request, number: httpx.Response(200, content=achunks(10))
    )

    async with async_client(policy, upstream) as client:
        leader = asyncio.create_task(client.get(URL))
        await upstream.entered.wait()
        joiner = asyncio.create_task(client.get(URL))
        await asyncio.to_thread(registry.wait_joins, 1)
        upstream.release.set()
        responses = await asyncio.gather(leader, joiner)

    assert [r.content for r in responses] == [b"".join(chunks(10))] * 2
    assert len(upstream.requests) == 2
    assert policy.statistics() == DedupeStatistics(2, 0, 0, 0)


def test_announced_length_over_the_cap_is_not_shared() -> None:
    """A Content-Length above max_body is refused before any byte is read."""
    registry = Watched()
    policy = Dedupe(max_body=5, registry=registry)
    upstream = Upstream(lambda request, number: httpx.Response(200, content=b"devices"))

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, lambda: client.get(URL), [lambda: client.get(URL)]
        )

    assert [r.text for r in [first, *rest]] == ["devices", "devices"]
    assert policy.statistics() == DedupeStatistics(2, 0, 0, 0)


def test_body_at_the_cap_is_shared() -> None:
    """A body exactly max_body bytes long is shared."""
    registry = Watched()
    policy = Dedupe(max_body=30, registry=registry)
    upstream = Upstream(lambda request, number: httpx.Response(200, content=chunks(3)))

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, lambda: client.get(URL), [lambda: client.get(URL)]
        )

    assert [r.content for r in [first, *rest]] == [
        b"A" * 10 + b"B" * 10 + b"C" * 10
    ] * 2
    assert policy.statistics() == DedupeStatistics(1, 1, 0, 0)


def test_lone_leader_response_is_left_streaming() -> None:
    """With nobody joined, the leader's body is not read ahead of its caller."""
    policy = Dedupe(max_body=5)
    reads: list[bytes] = []

    def body() -> Iterator[bytes]:
        for chunk in chunks(3):
            reads.append(chunk)
            yield chunk

    handler = lambda request: httpx.Response(200, content=body())  # noqa: E731
    transport = tk.ThrottledTransport(policy, transport=httpx.MockTransport(handler))
    response = transport.handle_request(httpx.Request("GET", URL))

    assert reads == []
    assert response.read() == b"A" * 10 + b"B" * 10 + b"C" * 10
    assert response.extensions[DEDUPLICATED] is False
    assert policy.statistics() == DedupeStatistics(1, 0, 0, 0)


def test_shared_body_stays_encoded_for_each_caller() -> None:
    """A gzip body is shared raw, and every caller decodes it on its own."""
    registry = Watched()
    policy = Dedupe(registry=registry)
    packed = gzip.compress(b'{"devices": []}')

    def gzipped(request: httpx.Request, number: int) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=packed)

    upstream = Upstream(gzipped)

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, lambda: client.get(URL), [lambda: client.get(URL)] * 2
        )

    assert [r.json() for r in [first, *rest]] == [{"devices": []}] * 3
    assert [r.headers["Content-Encoding"] for r in rest] == ["gzip", "gzip"]
    assert policy.statistics() == DedupeStatistics(1, 2, 0, 0)


def test_joined_response_varying_on_a_different_header_is_not_shared() -> None:
    """A response that varies on a header is shared only where that header matches."""
    registry = Watched()
    policy = Dedupe(registry=registry)

    def tenant(request: httpx.Request, number: int) -> httpx.Response:
        body = request.headers["X-Tenant"].encode()
        return httpx.Response(200, headers={"Vary": "X-Tenant"}, content=body)

    upstream = Upstream(tenant)

    def get(name: str) -> Callable[[], httpx.Response]:
        return lambda: client.get(URL, headers={"X-Tenant": name})

    with sync_client(policy, upstream) as client:
        first, (same, other) = lead_then_join(
            upstream, registry, get("a"), [get("a"), get("b")]
        )

    assert [first.text, same.text, other.text] == ["a", "a", "b"]
    assert same.extensions[DEDUPLICATED] is True
    assert other.extensions[DEDUPLICATED] is False
    assert policy.statistics() == DedupeStatistics(2, 1, 0, 0)


def test_configured_identity_header_separates_callers() -> None:
    """A header named in identity_headers keeps callers with different values apart."""
    registry = Watched()
    policy = Dedupe(identity_headers=["X-Tenant"], registry=registry)
    upstream = Upstream(ok)

    with sync_client(policy, upstream) as client:
        started = [
            start(lambda t=t: client.get(URL, headers={"x-tenant": t})) for t in "ab"
        ]
        upstream.wait_requests(2)
        upstream.release.set()
        for thread, _ in started:
            thread.join()

    assert len(upstream.requests) == 2
    assert policy.statistics() == DedupeStatistics(2, 0, 0, 0)


def test_post_is_never_merged_by_default() -> None:
    """POST requests pass through, each sent upstream."""
    registry = Watched()
    policy = Dedupe(registry=registry)
    upstream = Upstream(ok)

    with sync_client(policy, upstream) as client:
        started = [start(lambda: client.post(URL, content=b"{}")) for _ in range(3)]
        upstream.wait_requests(3)
        upstream.release.set()
        for thread, _ in started:
            thread.join()

    assert [box[0].extensions[DEDUPLICATED] for _, box in started] == [False] * 3
    assert registry.joins == 0
    assert policy.statistics() == DedupeStatistics(3, 0, 0, 0)


def test_configured_methods_merge_by_body() -> None:
    """With POST allowed, equal bodies merge and a different body does not."""
    registry = Watched()
    policy = Dedupe(methods=["get", "post"], registry=registry)
    upstream = Upstream(ok)

    with sync_client(policy, upstream) as client:
        started = [start(lambda b=b: client.post(URL, content=b)) for b in (b"a", b"b")]
        upstream.wait_requests(2)
        started.append(start(lambda: client.post(URL, content=b"a")))
        registry.wait_joins(1)
        upstream.release.set()
        for thread, _ in started:
            thread.join()

    merged = [box[0].extensions[DEDUPLICATED] for _, box in started]
    assert merged == [False, False, True]
    assert len(upstream.requests) == 2
    assert policy.statistics() == DedupeStatistics(2, 1, 0, 0)


def test_unread_request_stream_is_not_merged() -> None:
    """A request whose body is an unread stream passes through."""
    policy = Dedupe(methods=["POST"])
    transport = tk.ThrottledTransport(
        policy, transport=httpx.MockTransport(lambda request: ok(request, 1))
    )
    request = httpx.Request("POST", URL, content=iter([b"a", b"b"]))

    response = transport.handle_request(request)

    assert response.status_code == 200
    assert policy.registry.pending() == IDLE
    assert policy.statistics() == DedupeStatistics(1, 0, 0, 0)


def test_sync_and_async_callers_on_other_loops_share_one_request() -> None:
    """A blocking leader answers asyncio callers running on their own event loops."""
    registry = Watched()
    policy = Dedupe(registry=registry)
    upstream = Upstream(ok)

    async def fetch() -> httpx.Response:
        async with async_client(policy, upstream) as client:
            return await client.get(URL)

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream,
            registry,
            lambda: client.get(URL),
            [lambda: asyncio.run(fetch())] * 3,
        )

    assert [r.text for r in [first, *rest]] == ["devices"] * 4
    assert [r.extensions[DEDUPLICATED] for r in rest] == [True] * 3
    assert policy.statistics() == DedupeStatistics(1, 3, 0, 0)


@pytest.mark.anyio
async def test_blocking_call_on_the_leader_thread_sends_alone() -> None:
    """A blocking call on the leading task's own thread sends instead of hanging."""
    policy = Dedupe()
    inner = sync_client(policy, lambda request: httpx.Response(200, content=b"inner"))

    async def outer(request: httpx.Request) -> httpx.Response:
        nested = inner.get(URL)
        return httpx.Response(200, content=b"outer " + nested.content)

    async with async_client(policy, outer) as client:
        response = await client.get(URL)
    inner.close()

    assert response.text == "outer inner"
    assert policy.statistics() == DedupeStatistics(2, 0, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"methods": "GET"}, TypeError),
        ({"methods": []}, ValueError),
        ({"methods": ["GET", ""]}, ValueError),
        ({"identity_headers": "X-Tenant"}, TypeError),
        ({"identity_headers": [None]}, ValueError),
        ({"max_body": -1}, ValueError),
        ({"max_body": 1.5}, TypeError),
        ({"max_body": True}, TypeError),
    ],
    ids=[
        "methods-str",
        "methods-empty",
        "methods-blank",
        "headers-str",
        "headers-none",
        "max-body-negative",
        "max-body-float",
        "max-body-bool",
    ],
)
def test_bad_arguments_are_refused(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """Invalid arguments raise at construction, naming the parameter."""
    with pytest.raises(error, match=next(iter(kwargs))):
        Dedupe(**kwargs)


def test_head_requests_are_merged() -> None:
    """HEAD requests merge like GET ones, whatever length their headers announce."""
    registry = Watched()
    policy = Dedupe(max_body=10, registry=registry)
    upstream = Upstream(
        lambda request, number: httpx.Response(200, headers={"Content-Length": "99"})
    )

    with sync_client(policy, upstream) as client:
        first, rest = lead_then_join(
            upstream, registry, lambda: client.head(URL), [lambda: client.head(URL)]
        )

    assert [r.headers["Content-Length"] for r in [first, *rest]] == ["99", "99"]
    assert policy.statistics() == DedupeStatistics(1, 1, 0, 0)


def test_joined_calls_spend_no_budget() -> None:
    """Placed before RateLimit, only the leader spends budget for merged calls."""
    registry = Watched()
    clock = FakeClock()
    upstream = Upstream(ok)
    transport = tk.ThrottledTransport(
        Dedupe(registry=registry),
        tk.RateLimit("1/second", burst=1),
        transport=httpx.MockTransport(upstream),
        backend=tk.MemoryBackend(clock=clock.now),
        sleep=clock.sleep,
    )

    with httpx.Client(transport=transport) as client:
        lead_then_join(
            upstream, registry, lambda: client.get(URL), [lambda: client.get(URL)] * 9
        )
        later = client.get(URL)

    assert later.extensions["throttlekit.waited"] == 1.0
    assert clock.slept == [1.0]


def test_decisions_are_logged_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """Decisions are logged at DEBUG with method, host and path, never secrets."""
    policy = Dedupe()
    transport = tk.ThrottledTransport(
        policy, transport=httpx.MockTransport(lambda request: ok(request, 1))
    )
    request = httpx.Request(
        "GET", URL + "?api_key=hunter2", headers={"Authorization": "Bearer hunter2"}
    )

    with caplog.at_level("DEBUG", logger="throttlekit.dedupe"):
        transport.handle_request(request)

    assert caplog.messages == [
        "leading GET api.example.test/v1/organizations/1/devices"
    ]
    assert "hunter2" not in caplog.text


def test_dedupe_is_exported() -> None:
    """Dedupe is importable from throttlekit.policies."""
    from throttlekit.policies import Dedupe as Exported

    assert Exported is Dedupe
