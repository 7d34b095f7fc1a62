"""What one `RedisBackend` decision costs, next to a bare PING and to other
Redis rate limiters, measured side by side in one run.

Run it on request, never in the test suite::

    .venv/bin/python benchmarks/bench_redis.py            # own redis-server
    .venv/bin/python benchmarks/bench_redis.py --url redis://127.0.0.1:6380/0

Without ``--url`` it starts a throwaway ``redis-server`` on a free loopback
port, with persistence off, and stops it at the end.

Sync rows are timed in small chunks taken in turn (a chunk of PINGs, a chunk
of decisions, ...), so a machine whose speed drifts from one second to the
next slows every row alike; ratios are to the PING of the same round. Async
rows run one after another, each round, and their ratio is decisions per
second against the sequential sync decision of the same round. Every figure
is the median over rounds.

Needs ``redis``, ``limits`` and ``pyrate-limiter``.
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
from contextlib import ExitStack, contextmanager

import limits
import limits.storage
import limits.strategies
import pyrate_limiter
import redis
import redis.asyncio

import throttlekit as tk
from throttlekit.backends.redis import RedisBackend

# Limits the benchmark never reaches: every decision admits at once, as most
# decisions of a paced client do, so no row pays for refusals.
RATE = "100000/second"
TK_LIMITS = tk.parse_rate(RATE)
CALLERS = 100
CHUNK = 100
WARMUP = 300

Call = Callable[[], object]
Setup = Callable[[str, ExitStack], Call]


def ping(url: str, stack: ExitStack) -> Call:
    """A PING with redis-py: the floor for one round trip."""
    client = stack.enter_context(redis.Redis.from_url(url, socket_timeout=0.5))
    return client.ping


def throttlekit_reserve(url: str, stack: ExitStack) -> Call:
    """One `RedisBackend.reserve`."""
    backend = RedisBackend.from_url(url, namespace="bench")
    stack.callback(backend.close)
    key = uuid.uuid4().hex
    return lambda: backend.reserve(key, TK_LIMITS, 1, None)


def noop_script(url: str, stack: ExitStack) -> Call:
    """An EVALSHA of a script that does nothing, sent a decision's
    arguments: the floor for any decision made by a script."""
    client = stack.enter_context(redis.Redis.from_url(url, socket_timeout=0.5))
    sha = client.script_load("return ARGV[1]")
    args = (b"100000.0/1.0/100000.0 10000000000", b"-1 4611686018427387904 10")
    return lambda: client.evalsha(sha, 1, "bench:{noop}:r", *args)


def limits_moving(url: str, stack: ExitStack) -> Call:
    """A hit of `limits`' moving window on Redis storage."""
    return _limits(url, limits.strategies.MovingWindowRateLimiter)


def limits_fixed(url: str, stack: ExitStack) -> Call:
    """A hit of `limits`' fixed window on Redis storage."""
    return _limits(url, limits.strategies.FixedWindowRateLimiter)


def pyrate(url: str, stack: ExitStack) -> Call:
    """A non-blocking `try_acquire` of pyrate-limiter's Redis bucket."""
    client = stack.enter_context(redis.Redis.from_url(url, socket_timeout=0.5))
    rate = pyrate_limiter.Rate(100_000, pyrate_limiter.Duration.SECOND)
    bucket = pyrate_limiter.RedisBucket.init([rate], client, uuid.uuid4().hex)
    limiter = pyrate_limiter.Limiter(bucket)
    stack.callback(limiter.close)
    return lambda: limiter.try_acquire("bench", blocking=False)


def _limits(url: str, strategy: type[limits.strategies.RateLimiter]) -> Call:
    limiter = strategy(limits.storage.RedisStorage(url))
    item = limits.parse(RATE)
    key = uuid.uuid4().hex
    return lambda: limiter.hit(item, key)


SYNC_ROWS: list[tuple[str, Setup]] = [
    ("PING (redis-py)", ping),
    ("throttlekit RedisBackend.reserve", throttlekit_reserve),
    ("EVALSHA of a no-op script, same arguments", noop_script),
    ("limits moving window (RedisStorage)", limits_moving),
    ("limits fixed window (RedisStorage)", limits_fixed),
    ("pyrate-limiter RedisBucket", pyrate),
]


def measure_sync(url: str, ops: int) -> dict[str, float]:
    """Return seconds per operation of every sync row, chunks in turn."""
    with ExitStack() as stack:
        calls = {name: setup(url, stack) for name, setup in SYNC_ROWS}
        for call in calls.values():
            _repeat(call, WARMUP)
        spent = dict.fromkeys(calls, 0.0)
        for _ in range(ops // CHUNK):
            for name, call in calls.items():
                start = time.perf_counter()
                _repeat(call, CHUNK)
                spent[name] += time.perf_counter() - start
    return {name: total / (ops // CHUNK * CHUNK) for name, total in spent.items()}


def _repeat(call: Call, times: int) -> None:
    for _ in range(times):
        call()


def measure_async(url: str, ops: int, callers: int, buckets: int) -> float:
    """Return seconds per `areserve` with ``callers`` concurrent tasks over
    ``buckets`` buckets, each task reserving in a loop."""
    backend = RedisBackend.from_url(url, namespace="bench")
    keys = [uuid.uuid4().hex for _ in range(buckets)]

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
        return await run(max(1, ops // callers))

    try:
        return asyncio.run(measure())
    finally:
        backend.close()


def measure_async_ping(url: str, ops: int, callers: int) -> float:
    """Return seconds per PING with ``callers`` concurrent tasks."""

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


ASYNC_ROWS: list[tuple[str, Callable[[str, int], float]]] = [
    ("throttlekit areserve, 1 caller", lambda u, n: measure_async(u, n, 1, 1)),
    (
        f"throttlekit areserve, {CALLERS} callers, 1 bucket",
        lambda u, n: measure_async(u, n, CALLERS, 1),
    ),
    (
        f"throttlekit areserve, {CALLERS} callers, {CALLERS} buckets",
        lambda u, n: measure_async(u, n, CALLERS, CALLERS),
    ),
    (
        f"PING (redis.asyncio), {CALLERS} callers",
        lambda u, n: measure_async_ping(u, n, CALLERS),
    ),
]


def run(url: str, rounds: int, ops: int) -> None:
    """Measure every row ``rounds`` times and print the table."""
    seconds: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for _ in range(rounds):
        sync = measure_sync(url, ops)
        ping_s, decision = sync[SYNC_ROWS[0][0]], sync[SYNC_ROWS[1][0]]
        for name, value in sync.items():
            seconds.setdefault(name, []).append(value)
            ratios.setdefault(name, []).append(value / ping_s)
        for name, bench in ASYNC_ROWS:
            value = bench(url, ops)
            seconds.setdefault(name, []).append(value)
            ratios.setdefault(name, []).append(decision / value)

    sync_names = {name for name, _ in SYNC_ROWS}
    print(f"{rounds} rounds of {ops} operations per row; medians.\n")
    print("| Operation | µs per op | ops/s | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in seconds.items():
        per_op = statistics.median(values)
        ratio = statistics.median(ratios[name])
        unit = "x PING" if name in sync_names else "x sync decisions/s"
        print(
            f"| {name} | {per_op * 1e6:.1f} | {1 / per_op:,.0f} | {ratio:.2f}{unit} |"
        )


@contextmanager
def throwaway_server() -> Iterator[str]:
    """Start a redis-server on a free loopback port; yield its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server not found: apt-get install redis-server")
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
