"""`FakeClock`: time that moves only when something sleeps."""

from __future__ import annotations

import asyncio
import threading

__all__ = ["FakeClock"]


class FakeClock:
    """A clock for tests: sleeping advances it instead of waiting.

    Args:
        start: The initial time, seconds.

    Example:
        >>> import throttlekit as tk
        >>> from throttlekit.testing import FakeClock
        >>> clock = FakeClock()
        >>> transport = tk.ThrottledTransport(
        ...     tk.RateLimit("1/second"),
        ...     backend=tk.MemoryBackend(clock=clock.now),
        ...     sleep=clock.sleep,
        ... )

    Note:
        With several threads or tasks sleeping at once, each sleep advances
        the clock by its own length, one after another; use it for one
        caller at a time, or where that order is what the test means.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> float:
        """Return the current fake time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance time instead of blocking."""
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))

    async def asleep(self, seconds: float) -> None:
        """Async `sleep`: advances time and yields to the event loop once."""
        self.sleep(seconds)
        await asyncio.sleep(0)
