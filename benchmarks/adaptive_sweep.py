"""How the adaptive rate fares when the client does not know the server's
limit, across server rates, in virtual time.

A model, not a measurement: it runs the same throttlekit code a fleet runs
(`Retry`, `HeaderPacing` with an `AdaptiveRate` under a ceiling,
`AsyncThrottledTransport`, `MemoryBackend`) against a simulated server, on
an asyncio event loop whose clock is virtual. The server is a token bucket
like nginx's ``limit_req``: it admits a call when its theoretical arrival
time is at most ``burst / rate`` seconds ahead of now, and otherwise answers
429 with ``Retry-After: 1``. 32 concurrent callers share one transport, as
the 4 processes x 8 threads of bench_peers.py share one backend; each round
trip takes half to one and a half times ``--latency``, 3 ms on average by
default.

The loop's selector advances the clock by its timeout instead of sleeping,
so a 30-second job takes a fraction of a second, and a seed gives the same
result on every run. For each server rate it reports:

- efficiency, the ideal time over the wall time, where the ideal is
  ``(calls - burst - 1) / rate``: from idle the bucket admits the call in
  hand and ``burst`` more at once, then one every ``1 / rate`` seconds;
  the median over the seeds;
- the 429s the server answered, and their share of all the requests it
  answered; the most over the seeds;
- the rate the client had learned when the last call ended; the median.

Each job lasts about 12 seconds (12 calls per unit of rate, at least 150),
except at 10/s and 50/s, where it makes bench_peers.py's nginx call counts
(300 and 600) so the rows line up with it. The figures against a real
server (nginx, real processes, real time) are in bench_peers.py.

Run it on request, never in the test suite; it writes nothing unless asked::

    .venv/bin/python benchmarks/adaptive_sweep.py
    .venv/bin/python benchmarks/adaptive_sweep.py --rates 10 50 --seeds 5
    .venv/bin/python benchmarks/adaptive_sweep.py --out /tmp/sweep.md
"""

from __future__ import annotations

import argparse
import asyncio
import random
import selectors
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

import throttlekit as tk

URL = "http://api.test/x"
# The pacing line of every call to URL, under HeaderPacing's default key.
LINE = "host:api.test"
# Attempts per call, the first included: generous, so every call ends in a
# 200 and the wall time counts all of them.
ATTEMPTS = 20
# Calls per unit of rate, so that each job lasts about this many seconds.
JOB_SECONDS = 12
MIN_CALLS = 150
# bench_peers.py's nginx scenarios: server rate -> calls.
PEERS_CALLS = {10.0: 300, 50.0: 600}


class VirtualClock:
    """The simulation's time, in seconds; moved only by the selector."""

    def __init__(self) -> None:
        self.now = 0.0


class VirtualSelector(selectors.DefaultSelector):
    """A selector that advances a virtual clock instead of sleeping."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock

    def select(
        self, timeout: float | None = None
    ) -> list[tuple[selectors.SelectorKey, int]]:
        # Nothing here waits on real I/O, so a loop with nothing scheduled
        # would wait forever: the simulation is stuck, say so.
        if timeout is None:
            raise RuntimeError("nothing scheduled: the simulation is stuck")

        self.clock.now += max(0.0, timeout)
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: its sleeps take no real time."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        super().__init__(selector=VirtualSelector(self.clock))

    def time(self) -> float:
        return self.clock.now


@dataclass
class TokenBucketServer:
    """A server limited like nginx's ``limit_req``: GCRA with a burst.

    Attributes:
        rate: Calls admitted per second, sustained.
        burst: Calls admitted at once beyond the one in hand, from idle.
        latency: Mean round trip, seconds.
        clock: The loop's clock.
        rng: Source of the round trips' spread.
        tat: Theoretical arrival time of the next call.
        admitted: Calls answered 200.
        refused: Calls answered 429.
    """

    rate: float
    burst: int
    latency: float
    clock: Callable[[], float]
    rng: random.Random
    tat: float = 0.0
    admitted: int = 0
    refused: int = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one call after half a round trip each way."""
        await self._travel()
        interval = 1.0 / self.rate
        now = self.clock()
        tat = max(self.tat, now)

        # A small tolerance, so a call exactly on its turn is admitted.
        if tat - now <= self.burst * interval + 1e-9:
            self.tat = tat + interval
            self.admitted += 1
            response = httpx.Response(200, json={})
        else:
            self.refused += 1
            response = httpx.Response(429, headers={"Retry-After": "1"}, json={})

        await self._travel()
        return response

    async def _travel(self) -> None:
        await asyncio.sleep(self.latency * (0.5 + self.rng.random()) / 2)


@dataclass(frozen=True)
class Run:
    """One job's outcome.

    Attributes:
        efficiency: Ideal time over wall time.
        refused: 429s the server answered.
        requests: Requests the server answered, 429s included.
        learned: The learned rate at the end, calls per second.
        failed: Calls whose final answer was not a 200.
    """

    efficiency: float
    refused: int
    requests: int
    learned: float
    failed: int


@dataclass(frozen=True)
class Row:
    """One server rate's line of the table, over every seed."""

    rate: float
    calls: int
    efficiency: float
    refused: int
    share: float
    learned: float
    failed: int


def simulate(
    rate: float,
    calls: int,
    *,
    burst: int,
    ceiling: float,
    workers: int,
    latency: float,
    seed: int,
) -> Run:
    """Run one fleet job against a fresh server, in virtual time."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(
            _job(loop, rate, calls, burst, ceiling, workers, latency, seed)
        )
    finally:
        # The loop was never installed as the current one, so closing it
        # leaves asyncio's global state as it was.
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _job(
    loop: VirtualTimeLoop,
    rate: float,
    calls: int,
    burst: int,
    ceiling: float,
    workers: int,
    latency: float,
    seed: int,
) -> Run:
    rng = random.Random(seed)
    server = TokenBucketServer(rate, burst, latency, loop.time, rng)
    backend = tk.MemoryBackend(clock=loop.time)
    pacing = tk.HeaderPacing(adaptive=tk.AdaptiveRate(ceiling))
    # The jitter that spreads resumption after a pause, from the seeded
    # source rather than the global one, so a seed repeats the run.
    pacing._random = rng.random
    transport = tk.AsyncThrottledTransport(
        tk.Retry(attempts=ATTEMPTS),
        pacing,
        transport=httpx.MockTransport(server.handle),
        backend=backend,
        clock=loop.time,
    )

    left = [calls]
    failed = [0]

    async def worker(client: httpx.AsyncClient) -> None:
        while left[0] > 0:
            left[0] -= 1
            response = await client.get(URL)
            if response.status_code != 200:
                failed[0] += 1

    async with httpx.AsyncClient(transport=transport) as client:
        start = loop.time()
        await asyncio.gather(*(worker(client) for _ in range(workers)))
        wall = loop.time() - start

    learned = pacing.statistics(LINE, backend).rate
    if learned is None:
        raise RuntimeError(f"no learned rate on {LINE!r}: is pacing adaptive?")
    return Run(
        efficiency=(calls - burst - 1) / rate / wall,
        refused=server.refused,
        requests=server.admitted + server.refused,
        learned=learned,
        failed=failed[0],
    )


def calls_for(rate: float, scale: float, burst: int) -> int:
    """Return the calls of the job at ``rate``: bench_peers.py's count
    where it runs that rate, else about ``JOB_SECONDS`` seconds of calls."""
    base = PEERS_CALLS.get(rate, max(MIN_CALLS, round(JOB_SECONDS * rate)))

    # At least two calls beyond the burst, so the ideal time is positive.
    return max(burst + 2, round(base * scale))


def sweep(args: argparse.Namespace) -> list[Row]:
    """Simulate every rate with every seed and summarize each rate."""
    rows = []
    for rate in args.rates:
        calls = calls_for(rate, args.scale, args.burst)
        runs = [
            simulate(
                rate,
                calls,
                burst=args.burst,
                ceiling=args.ceiling,
                workers=args.workers,
                latency=args.latency,
                seed=seed,
            )
            for seed in range(args.seeds)
        ]

        worst = max(runs, key=lambda run: run.refused)
        rows.append(
            Row(
                rate=rate,
                calls=calls,
                efficiency=statistics.median(run.efficiency for run in runs),
                refused=worst.refused,
                share=worst.refused / worst.requests,
                learned=statistics.median(run.learned for run in runs),
                failed=sum(run.failed for run in runs),
            )
        )
    return rows


def table(rows: Sequence[Row], args: argparse.Namespace) -> str:
    """Return the results as markdown, with the settings above them."""
    lines = [
        "# adaptive_sweep.py (virtual time, a model)",
        "",
        f"HeaderPacing(adaptive=AdaptiveRate({args.ceiling:g})), limit unknown;"
        f" {args.workers} callers, burst {args.burst}, round trip"
        f" {args.latency * 1000:g} ms on average; {args.seeds} seed(s):"
        " median efficiency and learned rate, most 429s.",
        "",
        "| Server rate | Calls | Efficiency | 429s (server) | 429 share"
        " | Learned rate |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.rate:g}/s | {row.calls:,} | {row.efficiency:.2f}"
            f" | {row.refused:,} | {row.share:.1%} | {row.learned:.1f}/s |"
        )

    failed = [row for row in rows if row.failed]
    if failed:
        lines.append("")
    for row in failed:
        lines.append(
            f"At {row.rate:g}/s, {row.failed} call(s) ended without a 200"
            f" after {ATTEMPTS} attempts."
        )
    return "\n".join(lines) + "\n"


def positive(text: str) -> float:
    """Parse a positive number, for argparse."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def count(text: str) -> int:
    """Parse a whole number of at least 1, for argparse."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        nargs="+",
        type=positive,
        default=[5.0, 10.0, 20.0, 30.0, 50.0, 80.0],
        help="server rates, calls per second",
    )
    parser.add_argument(
        "--scale", type=positive, default=1.0, help="multiply every call count"
    )
    parser.add_argument(
        "--burst", type=int, default=10, help="server burst beyond the call in hand"
    )
    parser.add_argument(
        "--ceiling",
        type=positive,
        default=100.0,
        help="the adaptive rate's ceiling, calls per second",
    )
    parser.add_argument("--workers", type=count, default=32, help="callers")
    parser.add_argument(
        "--seeds",
        type=count,
        default=3,
        help="runs per rate, seeds 0 to N-1",
    )
    parser.add_argument(
        "--latency",
        type=positive,
        default=0.003,
        help="mean round trip, seconds",
    )
    parser.add_argument(
        "--out", type=Path, help="also write the table here; default: print only"
    )
    args = parser.parse_args()
    if args.burst < 0:
        parser.error(f"--burst must be at least 0, got {args.burst}")

    text = table(sweep(args), args)
    print(text, end="")
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
