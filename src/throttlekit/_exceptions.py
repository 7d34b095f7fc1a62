"""Exceptions raised by throttlekit.

The tree::

    ThrottlekitError
    ├── RateLimited            (also an httpx.TransportError)
    ├── CapacityExceeded       (also a ValueError)
    ├── BackendError
    └── ConfigurationError     (also a ValueError)

`RateLimited` subclasses `httpx.TransportError` so that code which already
catches httpx's request errors keeps working when a transport refuses to wait.
"""

from __future__ import annotations

import httpx

__all__ = [
    "BackendError",
    "CapacityExceeded",
    "ConfigurationError",
    "RateLimited",
    "ThrottlekitError",
]


class ThrottlekitError(Exception):
    """Base class of every error throttlekit raises on its own account."""


class RateLimited(ThrottlekitError, httpx.TransportError):
    """A call would have to wait longer than the caller allows.

    Nothing was sent and no budget was spent.

    Attributes:
        key: The budget that refused, for example ``"rate:10/1s|org:123"``.
        delay: Seconds the call would have had to wait; may be ``inf``.
    """

    def __init__(self, key: str, delay: float, *, reason: str = "") -> None:
        self.key = key
        self.delay = delay
        self.reason = reason
        detail = f" ({reason})" if reason else ""
        super().__init__(f"rate limited on {key!r}: would wait {delay:.3f}s{detail}")


class CapacityExceeded(ThrottlekitError, ValueError):
    """A call costs more than its budget can ever hold at once.

    Waiting would never help, so this is raised immediately.
    """

    def __init__(self, key: str, cost: float, capacity: float) -> None:
        self.key = key
        self.cost = cost
        self.capacity = capacity
        super().__init__(
            f"cost {cost:g} exceeds the burst capacity {capacity:g} of {key!r}"
        )


class BackendError(ThrottlekitError):
    """The backend holding shared state failed; the cause is chained."""


class ConfigurationError(ThrottlekitError, ValueError):
    """A setting is invalid; the message names the parameter."""
