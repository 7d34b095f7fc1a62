"""What one `RedisBackend` decision costs, next to a bare PING and to other
Redis rate limiters, measured side by side in one run.

Run it on request, never in the test suite::

    .venv/bin/python benchmarks/bench_redis.py            # own redis-server
    .venv/bin/python benchmarks/bench_redis.py --url redis://127.0.0.1:6380/0

Without ``--url`` it starts a throwaway ``redis-server`` on a free loopback
port, with persistence off, and stops it at the end. Every row is measured
once per round, rounds interleaved, and reported as the median over rounds,
so a machine's drifting speed hits every row alike. Ratios are to the PING
of the same round (sync rows) or to the sequential sync decision of the same
round (async rows).

Needs the ``bench`` extras: ``redis``, ``limits`` and ``pyrate-limiter``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import limits
import limits.storage
import limits.strategies
import pyrate_limiter
import redis

import throttlekit as tk
from throttlekit.backends.redis import RedisBackend

# Limits the benchmark never reaches: every decision admits at once, as most
# decisions of a paced client do, so no row pays for refusals.
RATE = "100000/second"
TK_LIMITS = tk.parse_rate(RATE)
CALLERS = 100
WARMUP = 300

Bench = Callable[[str, int], float]


def bench_ping(url: str, ops: int) -> float:
    """Seconds per PING with redis-py, the floor for one round trip."""
    client = redis.Redis.from_url(url, socket_timeout=0.5)
    try:
        return _per_op(client.ping, ops)
    finally:
        client.close()


def bench_throttlekit(url: str, ops: int) -> float:
    """Seconds per `RedisBackend.reserve`."""
    backend = RedisBackend.from_url(url, namespace="bench")
    key = uuid.uuid4().hex
    try:
        return _per_op(lambda: backend.reserve(key, TK_LIMITS, 1, None), ops)
    finally:
        backend.close()


def bench_limits_moving(url: str, ops: int) -> float:
    """Seconds per hit of `limits`' moving window on Redis storage."""
    return _limits(url, ops, limits.strategies.MovingWindowRateLimiter)


def bench_limits_fixed(url: str, ops: int) -> float:
    """Seconds per hit of `limits`' fixed window on Redis storage."""
    return _limits(url, ops, limits.strategies.FixedWindowRateLimiter)


def bench_pyrate(url: str, ops: int) -> float:
    """Seconds per non-blocking `try_acquire` of pyrate-limiter's Redis
    bucket."""
    client = redis.Redis.from_url(url, socket_timeout=0.5)
    rate = pyrate_limiter.Rate(100_000, pyrate_limiter.Duration.SECOND)
    bucket = pyrate_limiter.RedisBucket.init([rate], client, uuid.uuid4().hex)
    limiter = pyrate_limiter.Limiter(bucket)
    try:
        return _per_op(lambda: limiter.try_acquire("bench", blocking=False), ops)
    finally:
        limiter.close()
        client.close()


def _limits(url: str, ops: int, strategy: type[limits.strategies.RateLimiter]) -> float:
    storage = limits.storage.RedisStorage(url)
    limiter = strategy(storage)
    item = limits.parse(RATE)
    key = uuid.uuid4().hex
    return _per_op(lambda: limiter.hit(item, key), ops)


def _per_op(call: Callable[[], object], ops: int) -> float:
    for _ in range(WARMUP):
        call()
    start = time.perf_counter()
    for _ in range(ops):
        call()
    return (time.perf_counter() - start) / ops


def bench_async(url: str, ops: int, callers: int, buckets: int) -> float:
    """Seconds per `areserve` with ``callers`` concurrent tasks spread over
    ``buckets`` buckets, each task reserving in a loop."""
    backend = RedisBackend.from_url(url, namespace="bench")
    keys = [uuid.uuid4().hex for _ in range(buckets)]
    rounds = max(1, ops // callers)

    async def caller(key: str, times: int) -> None:
        for _ in range(times):
            await backend.areserve(key, TK_LIMITS, 1, None)

    async def run(times: int) -> float:
        start = time.perf_counter()
        await asyncio.gather(
            *(caller(keys[n % buckets], times) for n in range(callers))
        )
        return (time.perf_counter() - start) / (times * callers)

    async def measure() -> float:
        await run(max(1, WARMUP // callers))
        return await run(rounds)

    try:
        return asyncio.run(measure())
    finally:
        backend.close()


def bench_async_ping(url: str, ops: int, callers: int) -> float:
    """Seconds per PING with ``callers`` concurrent tasks on redis.asyncio."""

    async def measure() -> float:
        client = redis.asyncio.Redis.from_url(url, socket_timeout=0.5)
        times = max(1, ops // callers)

        async def caller() -> None:
            for _ in range(times):
                await client.ping()

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - start
        await client.aclose()
        return elapsed / (times * callers)

    return asyncio.run(measure())


SYNC_ROWS: list[tuple[str, Bench]] = [
    ("PING (redis-py)", bench_ping),
    ("throttlekit RedisBackend.reserve", bench_throttlekit),
    ("limits moving window (RedisStorage)", bench_limits_moving),
    ("limits fixed window (RedisStorage)", bench_limits_fixed),
    ("pyrate-limiter RedisBucket", bench_pyrate),
]
ASYNC_ROWS: list[tuple[str, Bench]] = [
    ("throttlekit areserve, 1 caller", lambda u, n: bench_async(u, n, 1, 1)),
    (
        f"throttlekit areserve, {CALLERS} callers, 1 bucket",
        lambda u, n: bench_async(u, n, CALLERS, 1),
    ),
    (
        f"throttlekit areserve, {CALLERS} callers, {CALLERS} buckets",
        lambda u, n: bench_async(u, n, CALLERS, CALLERS),
    ),
    (
        f"PING (redis.asyncio), {CALLERS} callers",
        lambda u, n: bench_async_ping(u, n, CALLERS),
    ),
]


def run(url: str, rounds: int, ops: int) -> None:
    """Measure every row ``rounds`` times, interleaved, and print the table."""
    seconds: dict[str, list[float]] = {name: [] for name, _ in SYNC_ROWS + ASYNC_ROWS}
    ratios: dict[str, list[float]] = {name: [] for name in seconds}
    for _ in range(rounds):
        measured = {name: bench(url, ops) for name, bench in SYNC_ROWS + ASYNC_ROWS}
        ping = measured[SYNC_ROWS[0][0]]
        sync = measured[SYNC_ROWS[1][0]]
        for name, value in measured.items():
            seconds[name].append(value)
            # Sync rows: cost relative to a PING. Async rows: throughput
            # relative to the sequential sync decision.
            is_sync = any(name == row for row, _ in SYNC_ROWS)
            ratios[name].append(value / ping if is_sync else sync / value)

    print(f"{rounds} rounds of {ops} operations; medians.\n")
    print("| Operation | µs per op | ops/s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name in seconds:
        per_op = statistics.median(seconds[name])
        ratio = statistics.median(ratios[name])
        is_sync = any(name == row for row, _ in SYNC_ROWS)
        label = f"{ratio:.2f}x PING" if is_sync else f"{ratio:.2f}x sync decisions/s"
        print(f"| {name} | {per_op * 1e6:.1f} | {1 / per_op:,.0f} | {label} |")


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a redis-server on a free loopback port; yield its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit(
            "redis-server not found; install it (apt-get install redis-server)"
        )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        command = [executable, "--port", str(port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", directory]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        try:
            _wait_ready(port)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_ready(port: int) -> None:
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a Redis to use instead of a throwaway one")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=5000)
    args = parser.parse_args()
    if args.url:
        run(args.url, args.rounds, args.ops)
        return
    with throwaway_server() as url:
        run(url, args.rounds, args.ops)


if __name__ == "__main__":
    main()
