"""The clients bench_peers.py compares, and the fleet that runs one of them.

Each client is built once per process and shared by that process's
threads, as a worker would share its one client or SDK object. A client is
a function of a `Target` returning ``(call, close)``: ``call()`` makes one
API call, retried the way that client retries, and returns the status of
its final answer.

Peers retry on 429 as their documentation suggests, with a generous but
bounded number of attempts (`MAX_ATTEMPTS`) and time (`CALL_DEADLINE`), so
every call ends and, in practice, succeeds.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx_retries
import limits
import limits.storage
import limits.strategies
import tenacity

import throttlekit as tk

# The throttlekit recipes for a limit the client does not know are the ones
# the integration tests hold it to, imported so this benchmark always runs
# their current tuning.
sys.path.insert(
    0, str(Path(__file__).resolve().parent.parent / "tests" / "integration")
)

import fleet

#: Attempts per call, the first included, for every client that retries.
MAX_ATTEMPTS = 100
#: Seconds one call may take in all, its waits and retries included.
CALL_DEADLINE = 120.0
#: Seconds one fleet run may take before its threads stop taking calls.
RUN_DEADLINE = 300.0
# A Retry-After missing or unreadable counts as this many seconds.
_DEFAULT_RETRY_AFTER = 1.0

Call = Callable[[], int]
Close = Callable[[], None]


@dataclass(frozen=True)
class Target:
    """What a client calls, and what it may be told about the limit.

    Attributes:
        base: The server's origin, ``http://127.0.0.1:<port>``.
        org: The organization every call of this run names; a fresh one per
            run, so each run starts with a full bucket and its 429s can be
            counted apart.
        limit: The server's limit in `limits` notation, for the clients
            configured with it ("10/second", "100 per 5 second").
        burst: The burst of throttlekit's configured `RateLimit`.
        sdk_rate: The Meraki SDK's per-organization rate (``smart_flow_org_rate``),
            or None for the SDK's default.
        redis_url: The Redis every process shares.
        scratch: A folder for files the clients write (the SDK's cache).
    """

    base: str
    org: str
    limit: str
    burst: float
    sdk_rate: float | None
    redis_url: str
    scratch: str

    @property
    def url(self) -> str:
        return f"{self.base}/api/v1/organizations/{self.org}/networks"

    @property
    def namespace(self) -> str:
        return f"bench-peers:{self.org}"


def retry_after(response: httpx.Response) -> float:
    """Return the seconds a 429 asks for, or a second when it says none."""
    try:
        return min(float(response.headers["Retry-After"]), CALL_DEADLINE)
    except (KeyError, ValueError):
        return _DEFAULT_RETRY_AFTER


def plain(target: Target) -> tuple[Call, Close]:
    """httpx with the usual loop: on 429, sleep Retry-After and try again."""
    client = httpx.Client(trust_env=False)

    def call() -> int:
        deadline = time.monotonic() + CALL_DEADLINE
        for _ in range(MAX_ATTEMPTS - 1):
            response = client.get(target.url)
            if response.status_code != 429 or time.monotonic() > deadline:
                return response.status_code
            time.sleep(retry_after(response))
        return client.get(target.url).status_code

    return call, client.close


class _WaitRetryAfter(tenacity.wait.wait_base):
    """Wait what the 429's Retry-After says; without one, back off
    exponentially with jitter."""

    def __init__(self) -> None:
        self.fallback = tenacity.wait_random_exponential(multiplier=0.5, max=30)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        response = None if outcome is None or outcome.failed else outcome.result()
        if isinstance(response, httpx.Response) and "Retry-After" in response.headers:
            return retry_after(response)
        return float(self.fallback(retry_state))


def with_tenacity(target: Target) -> tuple[Call, Close]:
    """tenacity retrying while the answer is 429, waiting its Retry-After."""
    client = httpx.Client(trust_env=False)

    @tenacity.retry(
        retry=tenacity.retry_if_result(lambda r: r.status_code == 429),
        wait=_WaitRetryAfter(),
        stop=(
            tenacity.stop_after_attempt(MAX_ATTEMPTS)
            | tenacity.stop_after_delay(CALL_DEADLINE)
        ),
        retry_error_callback=lambda state: state.outcome.result(),
    )
    def get() -> httpx.Response:
        return client.get(target.url)

    return lambda: get().status_code, client.close


def with_httpx_retries(target: Target) -> tuple[Call, Close]:
    """httpx-retries' `RetryTransport`, 429 retried, Retry-After respected."""
    retry = httpx_retries.Retry(
        total=MAX_ATTEMPTS,
        status_forcelist=[429],
        backoff_factor=0.5,
        respect_retry_after_header=True,
        total_timeout=CALL_DEADLINE,
    )
    transport = httpx_retries.RetryTransport(retry=retry)
    client = httpx.Client(transport=transport, trust_env=False)
    return lambda: client.get(target.url).status_code, client.close


def meraki_sdk(target: Target) -> tuple[Call, Close]:
    """The official Meraki SDK calling `getOrganizationNetworks`, with its
    own limiter ("smart flow": a token bucket per organization, in each
    process) and its own 429 waits; as shipped, but for the limiter's rate
    (``target.sdk_rate``) and the attempts (`MAX_ATTEMPTS`)."""
    import meraki

    # The SDK's httpx client reads proxy settings from the environment; the
    # benchmark's servers are on loopback and must be reached directly.
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    options: dict[str, Any] = {
        "maximum_retries": MAX_ATTEMPTS,
        "smart_flow_cache_path": os.path.join(target.scratch, f"sdk-{os.getpid()}"),
    }
    if target.sdk_rate is not None:
        options["smart_flow_org_rate"] = target.sdk_rate
    dashboard = meraki.DashboardAPI(
        "0" * 40,
        base_url=f"{target.base}/api/v1",
        suppress_logging=True,
        **options,
    )

    def call() -> int:
        try:
            dashboard.organizations.getOrganizationNetworks(target.org)
        except meraki.APIError as exc:
            return int(exc.status)
        return 200

    return call, dashboard._session.close


def with_limits(target: Target) -> tuple[Call, Close]:
    """`limits`' moving window on Redis in front of httpx: wait until a hit
    is allowed, then call; on 429, sleep Retry-After and take a hit again."""
    storage = limits.storage.RedisStorage(target.redis_url)
    limiter = limits.strategies.MovingWindowRateLimiter(storage)
    item = limits.parse(target.limit)
    client = httpx.Client(trust_env=False)

    def acquire(deadline: float) -> None:
        while not limiter.hit(item, target.namespace):
            if time.monotonic() > deadline:
                return
            reset = limiter.get_window_stats(item, target.namespace).reset_time
            time.sleep(min(max(reset - time.time(), 0.005), 1.0))

    def call() -> int:
        deadline = time.monotonic() + CALL_DEADLINE
        for _ in range(MAX_ATTEMPTS - 1):
            acquire(deadline)
            response = client.get(target.url)
            if response.status_code != 429 or time.monotonic() > deadline:
                return response.status_code
            time.sleep(retry_after(response))
        acquire(deadline)
        return client.get(target.url).status_code

    return call, client.close


def throttlekit_configured(target: Target) -> tuple[Call, Close]:
    """throttlekit told the limit: `Retry`, `HeaderPacing` and a `RateLimit`
    per organization on Redis, in the order docs/concepts.md gives."""
    per_org = tk.keys.path_param("organizations")
    policies = [
        tk.Retry(attempts=6, budget=tk.RetryBudget()),
        tk.HeaderPacing(key=per_org),
        tk.RateLimit(target.limit, burst=target.burst, key=per_org),
    ]
    return _throttlekit(target, policies)


def throttlekit_unknown(target: Target) -> tuple[Call, Close]:
    """throttlekit not told the limit, against a server that says nothing
    but 429: the integration tests' ``unknown_limit`` recipe."""
    return _throttlekit(target, fleet.unknown_limit)


def throttlekit_headers(target: Target) -> tuple[Call, Close]:
    """throttlekit not told the limit, pacing from the server's headers: the
    integration tests' ``headers_only`` recipe."""
    return _throttlekit(target, fleet.headers_only)


def _throttlekit(
    target: Target, policies: list[Any] | Callable[[tk.Backend], list[Any]]
) -> tuple[Call, Close]:
    backend = tk.RedisBackend.from_url(target.redis_url, namespace=target.namespace)
    chain = policies(backend) if callable(policies) else policies
    transport = tk.ThrottledTransport(*chain, backend=backend, max_wait=CALL_DEADLINE)
    client = httpx.Client(transport=transport, trust_env=False)

    def close() -> None:
        client.close()
        backend.close()

    return lambda: client.get(target.url).status_code, close


def learned_rate(target: Target) -> float | None:
    """Return the rate the ``unknown_limit`` recipe ended the run with, as
    every process sees it in Redis, or None when it cannot say."""
    backend = tk.RedisBackend.from_url(target.redis_url, namespace=target.namespace)
    try:
        pacing = fleet.unknown_limit(backend)[-1]
        rate = pacing.statistics(httpx.Request("GET", target.url), backend).rate
    except (AttributeError, TypeError, ValueError):
        # A diagnostic only: the recipe's shape may change under it.
        return None
    finally:
        backend.close()
    return None if rate is None else float(rate)


CLIENTS: dict[str, Callable[[Target], tuple[Call, Close]]] = {
    "plain": plain,
    "tenacity": with_tenacity,
    "httpx-retries": with_httpx_retries,
    "meraki-sdk": meraki_sdk,
    "limits": with_limits,
    "throttlekit": throttlekit_configured,
    "throttlekit-unknown": throttlekit_unknown,
    "throttlekit-headers": throttlekit_headers,
}


@dataclass(frozen=True)
class Outcome:
    """What one fleet run did, as its callers saw it.

    Attributes:
        wall: Seconds from the common start until the last call returned.
        statuses: Final answers by status.
        errors: Calls that ended in an exception, by type name.
    """

    wall: float
    statuses: dict[int, int]
    errors: dict[str, int]


def run_fleet(
    client: str, target: Target, *, calls: int, processes: int, threads: int
) -> Outcome:
    """Make ``calls`` calls with ``client`` from ``processes`` x ``threads``,
    timed from the moment every process has built its client."""
    context = multiprocessing.get_context("spawn")
    left = context.Value("i", calls)
    ready, results = context.Queue(), context.Queue()
    start = context.Event()
    args = (client, target, threads, left, ready, start, results)
    workers = [context.Process(target=_work, args=args) for _ in range(processes)]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            ready.get(timeout=120)
        began = time.monotonic()
        start.set()
        reports = [results.get(timeout=RUN_DEADLINE + 60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.terminate()
    return _merge(reports, began)


def _work(
    client: str,
    target: Target,
    threads: int,
    left: Any,
    ready: Any,
    start: Any,
    results: Any,
) -> None:
    call, close = CLIENTS[client](target)
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    ready.put(os.getpid())
    start.wait(120)
    deadline = time.monotonic() + RUN_DEADLINE

    def take() -> bool:
        with left.get_lock():
            if left.value <= 0 or time.monotonic() > deadline:
                return False
            left.value -= 1
            return True

    def loop() -> None:
        while take():
            try:
                status = call()
            except Exception as exc:
                with lock:
                    errors[type(exc).__name__] += 1
            else:
                with lock:
                    statuses[status] += 1

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    finished = time.monotonic()
    close()
    results.put((finished, dict(statuses), dict(errors)))


def _merge(
    reports: list[tuple[float, dict[int, int], dict[str, int]]], began: float
) -> Outcome:
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for _, seen, failed in reports:
        statuses.update(seen)
        errors.update(failed)
    wall = max(finished for finished, _, _ in reports) - began
    return Outcome(wall, dict(statuses), dict(errors))
