"""`Reach`: whether a shared service answers, and when to try it again."""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["Reach"]


class Reach:
    """Track a service that may go away, and warn once each way.

    While the service is down, at most one call per ``retry_interval`` tries
    it again; the first one it answers brings it back for every call.

    Args:
        retry_interval: Seconds between tries while the service is down.
        logger: Where the two warnings go.
        gone: What callers do meanwhile, for the warning when it goes away.
        back: What applies again, for the message when it is back.
        back_level: The level of that message; WARNING by default.
    """

    def __init__(
        self,
        retry_interval: float,
        logger: logging.Logger,
        *,
        gone: str,
        back: str,
        back_level: int = logging.WARNING,
    ) -> None:
        self.retry_interval = retry_interval
        self.down = False
        self._logger = logger
        self._gone = gone
        self._back = back
        self._back_level = back_level
        self._next_try = 0.0
        self._lock = threading.Lock()

    def usable(self) -> bool:
        """Return whether this call should try the service."""
        if not self.down:
            return True
        with self._lock:
            now = time.monotonic()
            if now < self._next_try:
                return False
            self._next_try = now + self.retry_interval
            return True

    def failed(self, exc: BaseException) -> None:
        """Record a failed call; warn once when the service goes away."""
        with self._lock:
            self._next_try = time.monotonic() + self.retry_interval
            if self.down:
                return
            self.down = True
        self._logger.warning(
            "Redis is unreachable (%r); %s until it is back", exc, self._gone
        )

    def answered(self) -> None:
        """Record a call the service answered; say once that it is back."""
        if not self.down:
            return
        with self._lock:
            if not self.down:
                return
            self.down = False
        self._logger.log(self._back_level, "Redis is back; %s", self._back)
