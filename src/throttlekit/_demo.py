"""``throttlekit demo``: retry-on-429 against throttlekit, on a local API.

The demo starts the rate-limited test API (`throttlekit.testing`) on
127.0.0.1 and runs one workload twice against one organization, one run after
the other on fresh server state:

- **naive**: a plain httpx client; on 429 a worker sleeps for the server's
  ``Retry-After`` and tries again, the common pattern;
- **throttlekit**: the same workers through a `ThrottledTransport` with a
  per-organization `RateLimit`, which paces calls so the server need not
  refuse any.

It then prints, for each client, the calls made, the 429 responses the server
counted, the wall time and the efficiency: the ideal time over the wall time,
where a client that knew the server's bucket exactly would need
``max(0, calls - burst) / rate`` seconds.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import httpx

from . import keys
from ._transport import ThrottledTransport
from .backends.memory import MemoryBackend
from .policies import RateLimit
from .testing import MerakiProfile, RateLimitedAPI

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

__all__ = ["DemoConfig", "RunResult", "add_parser", "run"]

Client = Literal["naive", "throttlekit"]
CLIENTS: tuple[Client, ...] = ("naive", "throttlekit")

_INSTALL_HINT = (
    "throttlekit demo needs rich and uvicorn: pip install 'throttlekit[demo]'"
)
# A worker gives up on a call after this many 429s in a row.
_MAX_ATTEMPTS = 100
# Cap on a server's Retry-After, seconds, so a bad header cannot stall the demo.
_MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class DemoConfig:
    """What the demo runs.

    Attributes:
        rate: The server's requests per second per organization.
        burst: The server's burst per organization.
        calls: Successful calls each client makes.
        concurrency: Worker threads per client.
        org: The organization id the calls go to.
        headroom: Tokens of the server's burst the throttlekit client leaves
            unused, to absorb network jitter.
        latency: Seconds the server waits before answering each call.
        clients: The clients to run, in order.
    """

    rate: int = 10
    burst: int = 10
    calls: int = 150
    concurrency: int = 16
    org: str = "123456"
    headroom: int = 2
    latency: float = 0.0
    clients: tuple[Client, ...] = CLIENTS

    @property
    def client_burst(self) -> int:
        """The burst of the throttlekit client: the server's minus headroom."""
        return max(1, self.burst - self.headroom)

    @property
    def ideal(self) -> float:
        """Seconds a client pacing exactly at the server's bucket needs."""
        return max(0, self.calls - self.burst) / self.rate

    @property
    def path(self) -> str:
        """The API path every call requests."""
        return f"/api/v1/organizations/{self.org}/networks"


@dataclass(frozen=True)
class RunResult:
    """How one client did, as the server counted it.

    Attributes:
        client: ``"naive"`` or ``"throttlekit"``.
        calls: Successful calls made.
        requests: Requests the server answered, refused ones included.
        rejected: 429 responses the server gave.
        wall: Seconds from the first request to the last response.
    """

    client: str
    calls: int
    requests: int
    rejected: int
    wall: float

    def efficiency(self, ideal: float) -> float | None:
        """Return ``ideal / wall``; ``None`` when the ideal time is zero."""
        if ideal <= 0:
            return None
        return ideal / self.wall if self.wall > 0 else 1.0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand to ``commands``."""
    defaults = DemoConfig()
    parser = commands.add_parser(
        "demo",
        help="compare retry-on-429 with throttlekit against a local API",
        description=(
            "Start a Meraki-like rate-limited API on 127.0.0.1 and make the "
            "same calls twice, one run after the other: with a plain httpx "
            "client that sleeps Retry-After on 429 ('naive'), then through "
            "throttlekit's ThrottledTransport. Prints the 429 responses the "
            "server counted, the wall time, and the efficiency: the ideal "
            "time max(0, calls - burst) / rate over the wall time."
        ),
    )
    option = parser.add_argument
    option(
        "--rate",
        type=_positive_int,
        default=defaults.rate,
        help="server requests per second per organization (default: %(default)s)",
    )
    option(
        "--burst",
        type=_positive_int,
        default=None,
        help="server burst per organization (default: equal to --rate)",
    )
    option(
        "--calls",
        type=_positive_int,
        default=defaults.calls,
        help="successful calls each client makes (default: %(default)s)",
    )
    option(
        "--concurrency",
        type=_positive_int,
        default=defaults.concurrency,
        help="worker threads per client (default: %(default)s)",
    )
    option(
        "--org",
        type=_org_id,
        default=defaults.org,
        help="organization id the calls go to (default: %(default)s)",
    )
    option(
        "--headroom",
        type=_non_negative_int,
        default=defaults.headroom,
        help="tokens of the server's burst the throttlekit client leaves "
        "unused to absorb network jitter (default: %(default)s)",
    )
    option(
        "--latency",
        type=_seconds,
        default=defaults.latency,
        help="seconds the server waits before each answer (default: %(default)s)",
    )
    option(
        "--only",
        choices=CLIENTS,
        default=None,
        help="run one client only (default: both, naive first)",
    )
    parser.set_defaults(handler=_command)


def run(config: DemoConfig, console: Console | None = None) -> list[RunResult]:
    """Run the demo's clients one after the other and return their results.

    Args:
        config: What to run.
        console: Where progress is shown. ``None`` (default): standard error.

    Raises:
        ImportError: rich or uvicorn is not installed.
    """
    progress = _progress(console)
    profile = MerakiProfile(org_rate=config.rate, org_burst=config.burst)

    results = []
    with RateLimitedAPI(profile, latency=config.latency) as api, progress:
        for name in config.clients:
            # Fresh server state for each run: full buckets, zero counts.
            api.reset()
            with _client(name, config, api.url) as client:
                results.append(_run(name, client, config, api, progress))
    return results


def render(config: DemoConfig, results: list[RunResult], console: Console) -> None:
    """Print the results table and what it means."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=(
            f"{config.calls} calls to organization {config.org}: "
            f"{config.rate}/s, burst {config.burst}, {config.concurrency} threads"
        ),
        box=box.SIMPLE_HEAD,
    )
    for header in ("client", "calls", "requests", "429 responses", "wall time"):
        table.add_column(header, justify="left" if header == "client" else "right")
    table.add_column("efficiency", justify="right")

    for result in results:
        efficiency = result.efficiency(config.ideal)
        table.add_row(
            result.client,
            str(result.calls),
            str(result.requests),
            str(result.rejected),
            f"{result.wall:.1f} s",
            "-" if efficiency is None else f"{efficiency:.2f}",
        )

    console.print(table)
    headroom = config.burst - config.client_burst
    console.print(
        f"ideal time = max(0, calls - burst) / rate = {config.ideal:.1f} s; "
        "429 responses as counted by the server.\n"
        f'throttlekit: RateLimit("{config.rate}/second", '
        f'burst={config.client_burst}, key=keys.path_param("organizations")), '
        f"{headroom} below the server's burst to absorb up to "
        f"{headroom / config.rate:.2f} s of network jitter.",
        highlight=False,
    )


def _command(args: argparse.Namespace) -> int:
    config = DemoConfig(
        rate=args.rate,
        burst=args.burst if args.burst is not None else args.rate,
        calls=args.calls,
        concurrency=args.concurrency,
        org=args.org,
        headroom=args.headroom,
        latency=args.latency,
        clients=(args.only,) if args.only else CLIENTS,
    )
    try:
        results = run(config)
        from rich.console import Console
    except (ImportError, RuntimeError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130

    render(config, results, Console())
    return 0


def _client(name: Client, config: DemoConfig, url: str) -> httpx.Client:
    # Both clients ignore proxy settings from the environment: the server
    # is on loopback.
    if name == "naive":
        return httpx.Client(base_url=url, trust_env=False)

    # The server's bucket and this one have the same rate, so a request
    # delayed on its way (a thread scheduled late, a new connection) can
    # reach the server after the next one's token was due and be refused.
    # A client burst a little below the server's keeps that many tokens in
    # the server's bucket as a margin: jitter up to headroom / rate seconds
    # is absorbed, at the cost of headroom / rate seconds once per run.
    policy = RateLimit(
        f"{config.rate}/second",
        burst=config.client_burst,
        key=keys.path_param("organizations"),
    )
    transport = ThrottledTransport(policy, backend=MemoryBackend())
    return httpx.Client(transport=transport, base_url=url, trust_env=False)


def _run(
    name: str,
    client: httpx.Client,
    config: DemoConfig,
    api: RateLimitedAPI,
    progress: Progress,
) -> RunResult:
    task = progress.add_task(name, total=config.calls, rejected=0)
    on_rejected = _counter(lambda n: progress.update(task, rejected=n))

    start = time.monotonic()
    with ThreadPoolExecutor(config.concurrency) as pool:
        futures = [
            pool.submit(_call_until_ok, client, config.path, on_rejected)
            for _ in range(config.calls)
        ]
        _wait_all(futures, lambda: progress.advance(task))
    wall = time.monotonic() - start

    stats = api.stats()
    requests = sum(stats.organizations.get(config.org, {}).values())
    return RunResult(name, config.calls, requests, stats.count(429, config.org), wall)


def _call_until_ok(
    client: httpx.Client, path: str, on_rejected: Callable[[], None]
) -> None:
    """Make one call; on 429 sleep ``Retry-After`` and try again."""
    for _ in range(_MAX_ATTEMPTS):
        response = client.get(path)
        if response.status_code != 429:
            response.raise_for_status()
            return
        on_rejected()
        time.sleep(_retry_after(response))
    raise RuntimeError(f"{path}: still refused after {_MAX_ATTEMPTS} attempts")


def _retry_after(response: httpx.Response) -> float:
    # RFC 9110 section 10.2.3 also allows an HTTP date; the test server
    # sends seconds, and anything unreadable falls back to one second.
    try:
        delay = float(response.headers.get("retry-after", "1"))
    except ValueError:
        delay = 1.0
    if not math.isfinite(delay):
        delay = 1.0
    return min(max(delay, 0.0), _MAX_RETRY_AFTER)


def _wait_all(futures: list[Future[None]], on_done: Callable[[], None]) -> None:
    try:
        for future in as_completed(futures):
            future.result()
            on_done()
    except BaseException:
        for future in futures:
            future.cancel()
        raise


def _counter(report: Callable[[int], None]) -> Callable[[], None]:
    lock = threading.Lock()
    count = 0

    def increment() -> None:
        nonlocal count
        with lock:
            count += 1
            report(count)

    return increment


def _progress(console: Console | None) -> Progress:
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc

    return Progress(
        TextColumn("{task.description:<11}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("calls, {task.fields[rejected]} x 429"),
        TimeElapsedColumn(),
        console=console if console is not None else Console(stderr=True),
    )


def _number(
    convert: Callable[[str], float], low: float, what: str
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not (value >= low and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, 1, "an integer >= 1")
_non_negative_int = _number(int, 0, "an integer >= 0")
_seconds = _number(float, 0, "seconds >= 0")


def _org_id(text: str) -> str:
    if not text or "/" in text:
        raise argparse.ArgumentTypeError(f"expected one path segment, got {text!r}")
    return text
