"""Run one workload from several processes of several threads each.

The integration tests use this to show what a fleet sharing one Redis does
against a real server: every process builds its own client from a named
recipe, the processes start together, and each thread takes calls from one
shared counter until the workload is done.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

import throttlekit as tk

Recipe = Callable[[tk.Backend], list[Any]]


def headers_only(backend: tk.Backend) -> list[Any]:
    """No rate on the client: pace from the server's headers, retry 429s."""
    return [tk.Retry(attempts=20), tk.HeaderPacing()]


def unknown_limit(backend: tk.Backend) -> list[Any]:
    """No rate on the client and no headers from the server: learn the rate,
    from a ceiling of 100/s (Meraki's documented per-client limit)."""
    adaptive = tk.AdaptiveRate(100.0)
    return [tk.Retry(attempts=20), tk.HeaderPacing(adaptive=adaptive)]


def retry_budget(backend: tk.Backend) -> list[Any]:
    """Retry failures at once, within a fleet-wide budget: every first
    attempt earns a tenth of a retry, and ten are saved up to begin with."""
    backoff = tk.Backoff(initial=0.01, cap=0.05)
    budget = tk.RetryBudget(BUDGET_RATIO, cap=BUDGET_CAP)
    return [tk.Retry(attempts=4, backoff=backoff, budget=budget)]


#: The retry budget of the ``retry_budget`` recipe.
BUDGET_RATIO, BUDGET_CAP = 0.1, 10.0

RECIPES: dict[str, Recipe] = {
    "headers_only": headers_only,
    "retry_budget": retry_budget,
    "unknown_limit": unknown_limit,
}


@dataclass(frozen=True)
class Outcome:
    """What a fleet run did.

    Attributes:
        wall: Seconds from the common start until the last call returned.
        statuses: Final responses by status, as the callers saw them.
        errors: Calls that ended in an exception, by type name.
    """

    wall: float
    statuses: dict[int, int]
    errors: dict[str, int]


def run_fleet(
    recipe: str,
    url: str,
    redis_url: str,
    *,
    calls: int,
    processes: int = 4,
    threads: int = 8,
) -> Outcome:
    """Make ``calls`` GETs of ``url`` from ``processes`` x ``threads``,
    each process building its policies with ``RECIPES[recipe]``."""
    context = multiprocessing.get_context("spawn")
    left = context.Value("i", calls)
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(
            target=_work, args=(recipe, url, redis_url, threads, left, start, results)
        )
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()

    # Let every process import and connect before the clock starts.
    time.sleep(1.5)
    began = time.monotonic()
    start.set()
    reports = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(30)
    return _merge(reports, began)


def _work(
    recipe: str,
    url: str,
    redis_url: str,
    threads: int,
    left: Any,
    start: Any,
    results: Any,
) -> None:
    backend = tk.RedisBackend.from_url(redis_url, namespace="fleet")
    transport = tk.ThrottledTransport(*RECIPES[recipe](backend), backend=backend)
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    lock = threading.Lock()

    def take() -> bool:
        with left.get_lock():
            if left.value <= 0:
                return False
            left.value -= 1
            return True

    def loop(client: httpx.Client) -> None:
        while take():
            try:
                status = client.get(url).status_code
            except Exception as exc:
                with lock:
                    errors[type(exc).__name__] += 1
            else:
                with lock:
                    statuses[status] += 1

    with httpx.Client(transport=transport, trust_env=False) as client:
        start.wait()
        pool = [threading.Thread(target=loop, args=(client,)) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        finished = time.monotonic()
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
